from __future__ import annotations

from pathlib import Path

import pytest

from microfleet.errors import ConfigurationError
from microfleet.sim.models import MODELS
from microfleet.sim.scenario import LinkFaults, Scenario, load_scenario

KNOWN = frozenset(MODELS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vehicles": -3}, "vehicles must be at least 1"),
        ({"vehicles": 0}, "vehicles must be at least 1"),
        ({"days": 0}, "days must be at least 1"),
        ({"city": "atlantis"}, "unknown city 'atlantis'"),
        ({"climate_city": "Oslo"}, "unknown climate city"),
        ({"models": ("tesla-model-s",)}, "unknown vehicle model(s) tesla-model-s"),
        ({"sharing_share": 1.5}, "sharing_share"),
        ({"link": LinkFaults(drop_p=2.0)}, "link.drop_p"),
    ],
)
def test_bad_scenarios_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Scenario().with_overrides(**changes).validate(KNOWN)


def test_default_scenario_is_valid() -> None:
    assert Scenario().validate(KNOWN).vehicles == 10


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
