"""Pack energy from the BMS's cumulative counters, and when the counters cannot be used."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from microfleet.domain.pack_energy import counter_energy
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0 = 1_700_000_000_000
N = 121  # 10 minutes at 5 s
# Sampled power says 2 kW throughout (100 V x 20 A) = 0.3333 kWh; the counters say 0.36 kWh (what the car
# integrated between samples): which one a result follows tells which source it used.
SAMPLED_KWH = 2.0 * 600 / 3600
COUNTED_KWH = 0.36
STEP_KWH = COUNTED_KWH / (N - 1)


def window(
    used: npt.NDArray[np.float64] | None,
    recovered: npt.NDArray[np.float64] | None = None,
    *,
    power: bool = True,
) -> TelemetryColumns:
    """A 10 min window at 5 s with optional counters and optional sampled power."""
    i = np.arange(N)
    arrays: dict[str, object] = {"ts_ms": T0 + i * 5000, "gear_code": np.full(N, GEAR_CODES["D"])}
    if power:
        arrays |= {"pack_voltage_v": np.full(N, 100.0), "pack_current_a": np.full(N, 20.0)}
    if used is not None:
        arrays["energy_used_kwh"] = used
        arrays["energy_recovered_kwh"] = np.full(N, 50.0) if recovered is None else recovered
    return TelemetryColumns.from_arrays("car-1", arrays)  # type: ignore[arg-type]


def ramp(start: float = 1000.0) -> npt.NDArray[np.float64]:
    return start + np.arange(N) * STEP_KWH


def with_nan(values: npt.NDArray[np.float64], rows: slice) -> npt.NDArray[np.float64]:
    out = values.copy()
    out[rows] = np.nan
    return out


def reset_at(k: int) -> npt.NDArray[np.float64]:
    """The counter restarts from zero at record ``k`` (a BMS or telematics reset)."""
    used = ramp()
    used[k:] = np.arange(N - k) * STEP_KWH
    return used


# 10 Wh readings (floored) of a counter passing 655.36 kWh mid-window
WRAPPING = np.round(np.floor((655.36 - 0.18 + np.arange(N) * STEP_KWH) / 0.01 + 1e-9) * 0.01, 6)


@dataclass(frozen=True)
class Case:
    name: str
    cols: TelemetryColumns
    used_kwh: float | None  # None: the counters cannot be used
    share: float = 1.0


CASES = [
    Case("counters on every record", window(ramp()), COUNTED_KWH),
    Case("a car that never sends counters", window(None), None),
    Case("counters but no power", window(ramp(), power=False), COUNTED_KWH),
    # the pair across the reset is a gap in the counter, filled from sampled power (one 5 s interval)
    Case("a reset mid-window", window(reset_at(60)), COUNTED_KWH - STEP_KWH + 2.0 * 5 / 3600, 119 / 120),
    # without power the 5 s across the reset are unknown: under 5 % of the window, left out, not invented
    Case("a reset, no power", window(reset_at(60), power=False), COUNTED_KWH - STEP_KWH, 119 / 120),
    # a 16-bit counter of 10 Wh steps rolls over at 655.36 kWh: a wrap, not a reset, so it is all counted
    Case(
        "a 16-bit counter wrapping mid-window",
        window(np.mod(WRAPPING, 655.36), power=False),
        WRAPPING[-1] - WRAPPING[0],
    ),
    # a flapping counter (5 kWh, 0, 5 kWh, ...): every pair falls or rises faster than any pack delivers
    Case("a counter flapping between values", window(np.where(np.arange(N) % 2, 0.0, 5.0)), None),
    # the first two minutes come from sampled power, the rest from the counters
    Case("counters from minute 2", window(with_nan(ramp(), slice(0, 24))), 2.0 * 120 / 3600 + 0.288, 0.8),
    Case("counters from minute 2, no power", window(with_nan(ramp(), slice(0, 24)), power=False), None),
    Case("counters on the first third only", window(with_nan(ramp(), slice(40, None))), None),
    Case("a single reading", window(with_nan(ramp(), slice(1, None))), None),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_counter_energy(case: Case) -> None:
    counted = counter_energy(case.cols)
    if case.used_kwh is None:
        assert counted is None
        return
    assert counted is not None
    assert counted.used_kwh == pytest.approx(case.used_kwh, rel=1e-9)
    assert counted.recovered_kwh == pytest.approx(0.0, abs=1e-12)
    assert counted.counted_share == pytest.approx(case.share)


def test_a_coarse_counter_is_anchored_on_its_first_and_last_step() -> None:
    # 10 Wh readings, floored, of a pack delivering the sampled 2 kW: 2.8 Wh per 5 s, so the counter stays
    # put at most readings; started 9.3 Wh into a step, its plain difference is 6 Wh short of the truth
    true_kwh = 2.0 * (N - 1) * 5 / 3600
    readings = np.floor((0.0093 + np.arange(N) * 2.0 * 5 / 3600) / 0.01 + 1e-9) * 0.01
    plain = counter_energy(window(readings, power=False))
    anchored = counter_energy(window(readings))
    assert plain is not None and anchored is not None
    assert abs(plain.used_kwh - true_kwh) > 0.005
    assert anchored.used_kwh == pytest.approx(true_kwh, abs=0.0015)


def test_regeneration_and_charging_go_to_the_recovered_counter() -> None:
    recovered = 50.0 + np.arange(N) * 0.001
    counted = counter_energy(window(ramp(), recovered))
    assert counted is not None
    assert counted.recovered_kwh == pytest.approx(0.120)
    assert counted.used_kwh - counted.recovered_kwh == pytest.approx(COUNTED_KWH - 0.120)


def test_the_current_sensor_offset_is_what_it_added_over_the_counted_stretches() -> None:
    # 0.3 A of offset at 100 V for 10 minutes: 30 W x 1/6 h = 5 Wh counted that never left the pack
    counted = counter_energy(window(ramp()), current_offset_a=0.3)
    assert counted is not None
    assert counted.offset_kwh == pytest.approx(0.005)
    only_half = counter_energy(window(with_nan(ramp(), slice(0, 60))), current_offset_a=0.3)
    assert only_half is not None
    assert only_half.offset_kwh == pytest.approx(0.0025, rel=0.02)
