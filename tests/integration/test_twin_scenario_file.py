"""Scenario files as a person writes them: read, validated, refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from microfleet.errors import ConfigurationError
from microfleet.sim.models import MODELS
from microfleet.sim.scenario import load_scenario

KNOWN = frozenset(MODELS)


def test_scenario_file_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'vehicles = 5\ndays = 2\nclimate_city = "Amsterdam"\ntemp_offset_c = -8\n'
        'models = ["citroen-ami"]\n[link]\ndrop_p = 0.1\n[fault_rates]\ntyre_slow_leak = 3\n'
    )
    s = load_scenario(good).validate(KNOWN)
    assert (s.vehicles, s.days, s.climate_city, s.temp_offset_c) == (5, 2, "Amsterdam", -8.0)
    assert s.link.drop_p == 0.1
    assert s.fault_rates.tyre_slow_leak == 3.0
    bad = tmp_path / "bad.toml"
    bad.write_text("vehicles = 5\ncars = 3\n")
    with pytest.raises(ConfigurationError, match="unknown key"):
        load_scenario(bad)
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('vehicles = "many"\n')
    with pytest.raises(ConfigurationError, match="vehicles must be of type int"):
        load_scenario(wrong_type)
