"""The parked cabin's climate step: it reaches its target within the unit's power; off, it drifts outside."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.physics import hvac

UNIT = {
    "cabin_ua_w_per_k": 50.0,
    "heat_capacity_j_per_k": hvac.cabin_heat_capacity_j_per_k(50.0),
    "heat_max_kw": 1.5,
    "cool_max_kw": 1.0,
    "has_heat_pump": False,
}


def _run(
    cabin_c: float, ambient_c: float, target_c: float | None, steps: int, dt_s: float
) -> tuple[float, float]:
    kwh = 0.0
    for _ in range(steps):
        cabin_c, kw = hvac.cabin_climate_step(cabin_c, ambient_c, target_c, dt_s, **UNIT)  # type: ignore[arg-type]
        kwh += kw * dt_s / 3600
    return cabin_c, kwh


def test_heating_reaches_the_target_and_then_holds_it_at_the_loss_rate() -> None:
    cabin, kwh = _run(0.0, 0.0, 21.0, 360, 10.0)  # an hour
    assert cabin == pytest.approx(21.0, abs=0.1)
    _, kw = hvac.cabin_climate_step(21.0, 0.0, 21.0, 10.0, **UNIT)  # type: ignore[arg-type]
    assert kw == pytest.approx(50.0 * 21.0 / 1000.0, rel=1e-6)  # UA x gap, COP 1
    assert 1.0 < kwh < 1.5  # holding 1.05 kW for the hour, plus the warm-up


def test_cooling_and_off() -> None:
    assert _run(40.0, 35.0, 22.0, 360, 10.0)[0] < 30.0  # 1 kW of A/C at COP 2.5 cannot hold 22 °C at 35 °C
    cabin, kwh = _run(30.0, 10.0, None, 360, 10.0)
    assert kwh == 0.0 and 10.0 < cabin < 12.0  # drifts to ambient, time constant ~22 min


@given(st.floats(-30, 60), st.floats(-30, 45), st.one_of(st.none(), st.floats(5, 35)), st.floats(0.1, 3600))
def test_a_step_never_overshoots_and_stays_within_the_units_power(
    cabin: float, ambient: float, target: float | None, dt_s: float
) -> None:
    after, kw = hvac.cabin_climate_step(cabin, ambient, target, dt_s, **UNIT)  # type: ignore[arg-type]
    assert 0.0 <= kw <= 1.5
    if target is None:  # off: somewhere between where it was and the outside
        assert min(cabin, ambient) - 1e-6 <= after <= max(cabin, ambient) + 1e-6
        assert kw == 0.0
    elif cabin <= target and ambient <= target:  # heating never overshoots (nor cooling, below)
        assert after <= target + 1e-6
    elif cabin >= target and ambient >= target:
        assert after >= target - 1e-6
