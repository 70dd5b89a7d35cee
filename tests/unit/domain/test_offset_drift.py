"""The current sensor's zero offset drifts with pack temperature: learned asleep, taken off each record.

A Hall sensor's offset changes with temperature (LEM DHAB S/24: "thermal offset drift"). The car below
sleeps while its pack cools (asleep the true current is 0, so the sensor reads its offset), then drives
with a warm pack; its BMS counters integrate the sensed current, offset included. Read at the asleep
spell's median temperature, the offset is wrong by slope x the temperature difference for the whole drive.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from microfleet.domain.derivation import (
    DerivationOptions,
    ResumePoint,
    asleep_sums,
    derive_history,
    drift_slope,
)
from microfleet.domain.pack_energy import counter_energy
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

T0_MS = 1_767_225_600_000
OFFSET_AT_25C_A = 0.3
SLOPE_A_PER_K = 0.02
VOLT = 340.0
DRIVE_A = 44.0  # 15 kW for 20 min: 4.99 kWh
DRIVE_TEMP_C = 25.0


def offset_a(temp_c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return OFFSET_AT_25C_A + SLOPE_A_PER_K * (temp_c - 25.0)


def cooling_car(days: int = 3, seed: int = 0) -> tuple[TelemetryColumns, list[float]]:
    """Each day: asleep 8 h while the pack cools 12 -> 0 °C, a 20 min drive at 25 °C, asleep again.

    Returns the columns and each drive's true energy (kWh).
    """
    rng = np.random.default_rng(seed)
    ts: list[int] = []
    temp: list[float] = []
    true_a: list[float] = []
    gear: list[int] = []
    speed: list[float] = []
    lat: list[float] = []
    y = 48.0

    def asleep(t_s: int, dur_s: int) -> None:
        steps = range(t_s, t_s + dur_s, 300)
        for k, t in enumerate(steps):
            ts.append(T0_MS + t * 1000)
            temp.append(float(round(12.0 - 12.0 * k / len(steps))))  # the BMS reports whole degrees
            true_a.append(0.0)
            gear.append(GEAR_CODES["P"])
            speed.append(0.0)
            lat.append(y)

    def drive(t_s: int) -> None:
        nonlocal y
        for t in range(t_s, t_s + 1200, 5):
            y += 50 / 111_195
            ts.append(T0_MS + t * 1000)
            temp.append(DRIVE_TEMP_C)
            true_a.append(DRIVE_A)
            gear.append(GEAR_CODES["D"])
            speed.append(36.0)
            lat.append(y)

    for d in range(days):
        day = d * 86_400
        asleep(day, 8 * 3600)
        drive(day + 8 * 3600)
        asleep(day + 8 * 3600 + 1200, 15 * 3600)
    t_ms = np.array(ts, dtype=np.int64)
    temp_c = np.array(temp)
    current = np.array(true_a)
    sensed = current + offset_a(temp_c)
    # the BMS integrates sensed V x I; the current holds from one reading to the next
    p_kw = VOLT * np.where(current > 0, sensed, 0.0) / 1000
    dt_h = np.diff(t_ms) / 3_600_000
    used = 1000.0 + np.r_[0.0, np.cumsum(p_kw[:-1] * dt_h)]
    # asleep the contactors are open: the BMS counts nothing, the sensor still reads its offset
    noisy = np.round(sensed + rng.normal(0.0, 0.05, sensed.size), 1)  # 0.1 A resolution
    arrays: dict[str, npt.ArrayLike] = {
        "ts_ms": t_ms,
        "lat_deg": np.array(lat),
        "lon_deg": np.full(t_ms.size, 2.0),
        "gear_code": np.array(gear),
        "speed_kmh": np.array(speed),
        "pack_current_a": noisy,
        "pack_voltage_v": np.full(t_ms.size, VOLT),
        "pack_temp_c": temp_c,
        "ignition_on": (np.array(speed) > 0).astype(np.float64),
        "energy_used_kwh": np.round(used, 3),
        "energy_recovered_kwh": np.full(t_ms.size, 100.0),
    }
    true_kwh = [VOLT * DRIVE_A * 1200 / 3.6e6] * days  # 4.99 kWh each
    return TelemetryColumns.from_arrays("car", arrays), true_kwh


def test_the_slope_of_asleep_current_on_temperature_is_the_drift() -> None:
    rng = np.random.default_rng(3)
    temp = rng.integers(0, 13, 400).astype(np.float64)
    current = np.round(offset_a(temp) + rng.normal(0, 0.05, temp.size), 1)
    assert drift_slope(asleep_sums(current, temp)) == pytest.approx(SLOPE_A_PER_K, abs=0.002)


def test_no_slope_from_readings_within_a_degree_or_from_noise() -> None:
    rng = np.random.default_rng(4)
    narrow = rng.integers(5, 7, 400).astype(np.float64)  # 5 or 6 °C: sd 0.5 K, under 3 K / 3
    current = np.round(offset_a(narrow) + rng.normal(0, 0.05, narrow.size), 1)
    assert drift_slope(asleep_sums(current, narrow)) == 0.0
    wide = rng.integers(0, 13, 40).astype(np.float64)
    noise = rng.normal(0.2, 0.5, wide.size)  # no drift, noise far above what 40 readings resolve
    slope = np.polyfit(wide, noise, 1)[0]
    assert abs(slope) > 0  # a least-squares slope exists ...
    assert drift_slope(asleep_sums(noise, wide)) == 0.0  # ... and is refused as noise


def test_a_per_record_offset_adds_what_each_record_carried() -> None:
    n = 121  # 10 min at 5 s, 100 V
    arrays: dict[str, npt.ArrayLike] = {
        "ts_ms": T0_MS + np.arange(n) * 5000,
        "pack_voltage_v": np.full(n, 100.0),
        "pack_current_a": np.full(n, 20.0),
        "energy_used_kwh": 1000 + np.arange(n) * 0.003,
        "energy_recovered_kwh": np.full(n, 50.0),
    }
    w = TelemetryColumns.from_arrays("car", arrays)
    flat = counter_energy(w, 0.3)
    same = counter_energy(w, np.full(n, 0.3))
    rising = counter_energy(w, np.linspace(0.0, 0.6, n))  # mean 0.3 A: the same 5 Wh
    late = counter_energy(w, np.r_[np.zeros(60), np.full(n - 60, 0.6)])  # 0.6 A for half: 5 Wh
    assert flat is not None and same is not None and rising is not None and late is not None
    assert same.offset_kwh == pytest.approx(flat.offset_kwh) == pytest.approx(0.005)
    assert rising.offset_kwh == pytest.approx(0.005)
    assert late.offset_kwh == pytest.approx(0.005, rel=0.02)


def test_drive_energy_with_the_drift_taken_off_is_within_its_counter_step() -> None:
    cols, true_kwh = cooling_car()
    on = derive_history(cols)
    off = derive_history(cols, options=replace(DerivationOptions(), offset_drift=False))
    assert len(on.drives) == len(off.drives) == len(true_kwh)
    for d_on, d_off, truth in zip(on.drives[1:], off.drives[1:], true_kwh[1:], strict=True):
        assert d_on.energy_used_kwh is not None and d_off.energy_used_kwh is not None
        # the spell's median temperature is ~6 °C: 0.38 A too little offset taken off at 25 °C, 43 Wh
        assert d_off.energy_used_kwh - truth == pytest.approx(0.043, abs=0.006)
        assert d_on.energy_used_kwh == pytest.approx(truth, abs=0.005)


def test_resume_points_carry_the_asleep_sums_and_a_window_derives_the_same_energy() -> None:
    cols, _ = cooling_car(days=4)
    whole = derive_history(cols)
    points: list[ResumePoint] = [s.resume for s in whole.spans[1:] if s.resume is not None]
    assert len(points) >= 4
    counts = [p.state.asleep_n for p in points]
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0
    for point in points:
        a = int(np.searchsorted(cols.ts_ms, point.from_ms))
        window = derive_history(cols.slice(a, len(cols)), point.state, gps_ref=point.gps_ref)
        later = [d for d in whole.drives if d.start_ts_ms >= point.from_ms]
        assert window.drives == later
        # the sums are those of every asleep (parked) record before the point, nothing else
        before = (cols.ts_ms < point.from_ms) & (cols.speed_kmh == 0)
        assert point.state.asleep_n == before.sum()
        assert point.state.asleep_t == pytest.approx(cols.pack_temp_c[before].sum())
        assert point.state.asleep_ti == pytest.approx((cols.pack_temp_c * cols.pack_current_a)[before].sum())
