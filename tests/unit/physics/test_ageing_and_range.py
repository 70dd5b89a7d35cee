"""Ageing laws and the cycle-range simulation."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.errors import PhysicsInputError
from microfleet.physics import VehicleParams, cycle_consumption_wh_per_km, cycle_range_km
from microfleet.physics.ageing import (
    calendar_fade_pct,
    cycle_fade_pct,
    resistance_growth_frac,
    state_of_health_pct,
)
from microfleet.physics.cycles import load_cycle


def test_calendar_fade_grows_with_sqrt_time_temperature_and_soc():
    one_year = calendar_fade_pct(365, 25, 50)
    assert float(one_year) == pytest.approx(3.5)
    assert float(calendar_fade_pct(4 * 365, 25, 50)) == pytest.approx(2 * float(one_year))
    assert calendar_fade_pct(365, 35, 50) > one_year
    assert calendar_fade_pct(365, 25, 100) > one_year


def test_cycle_fade_follows_wang_2011_at_half_c():
    # 1,000 full cycles of a 2.2 Ah cell at 25 °C: Wang et al. report roughly 8-10 % loss.
    fade = float(cycle_fade_pct(2000.0, 25.0, 0.5))
    assert 6.0 < fade < 12.0
    assert cycle_fade_pct(2000.0, 45.0, 0.5) > fade


def test_soh_and_resistance_growth():
    soh = state_of_health_pct(3.0, 7.0)
    assert float(soh) == pytest.approx(90.0)
    assert float(resistance_growth_frac(soh)) == pytest.approx(0.15)
    with pytest.raises(PhysicsInputError):
        calendar_fade_pct(-1, 25, 50)


def test_range_is_consistent_with_consumption_and_shrinks_in_the_cold():
    cat = load_catalogue()
    params = VehicleParams.from_specs([cat.get("wuling-hongguang-mini-ev-gen1-9kwh")], siblings=cat.all())
    cycle = load_cycle("cltc_p")
    warm = cycle_range_km(params, cycle, ambient_temp_c=23.0)
    cold = cycle_range_km(params, cycle, ambient_temp_c=-10.0, hvac_on=True)
    wh_per_km = cycle_consumption_wh_per_km(params, cycle)
    # Range × consumption ≈ usable energy (the ECM adds its own losses and stops at cut-off).
    implied_kwh = warm.range_km * wh_per_km / 1000
    assert implied_kwh[0] == pytest.approx(params.usable_kwh[0], rel=0.06)
    assert cold.range_km[0] < 0.8 * warm.range_km[0]
    assert np.all(warm.trace_shortfall_kwh_per_cycle < 0.05)
