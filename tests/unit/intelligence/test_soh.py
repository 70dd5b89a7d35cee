"""State of health from charge sessions: gating, the robust trend, the band, the fleet's fade."""

from __future__ import annotations

import numpy as np

from microfleet.intelligence.soh import (
    MIN_SESSIONS,
    CarFade,
    capacity_samples,
    estimate_soh,
    fleet_fade,
    resistance_from_steps,
)
from tests.unit.intelligence.battery_history import DAY_MS, T0_MS, charge

NEW_KWH = 25.0


def _sessions(n: int, days: float, fade_pct_per_year: float, rng: np.random.Generator) -> list:
    out = []
    for k in range(n):
        day = k * days / max(n - 1, 1)
        soh = 0.95 + fade_pct_per_year / 100 * day / 365.25
        d_soc = float(rng.uniform(25, 70))
        # SoC is sent in 0.5 % steps: each end is off by up to a step
        start = float(rng.uniform(10, 30))
        energy = NEW_KWH * soh * d_soc / 100
        out.append(charge(day, np.floor(start * 2) / 2, np.floor((start + d_soc) * 2) / 2, energy))
    return out


def test_capacity_gates_small_soc_changes_and_soc_only_energy() -> None:
    charges = [
        charge(0, 40, 55, 3.0),  # 15 points: too coarse
        charge(1, 20, 80, 14.0, source="soc"),  # energy from SoC x capacity would be circular
        charge(2, 20, 80, 14.0),
    ]
    samples = capacity_samples(charges, [None] * 3, chemistry="NMC")
    assert [s.capacity_kwh for s in samples] == [14.0 / 60 * 100]


def test_lfp_sessions_on_the_plateau_are_not_anchored() -> None:
    charges = [charge(0, 40, 100, 10.0), charge(1, 15, 100, 10.0)]
    samples = capacity_samples(charges, [None, None], chemistry="LFP")
    assert [s.anchored for s in samples] == [False, True]


def test_too_few_sessions_say_how_many_more_are_needed() -> None:
    charges = [charge(k, 20, 80, 14.0) for k in range(MIN_SESSIONS - 2)]
    est = estimate_soh(capacity_samples(charges, [None] * len(charges), chemistry="NMC"), NEW_KWH, T0_MS)
    assert est.soh_pct is None
    assert est.sessions_needed == 2


def test_capacity_within_a_percent_after_ten_partial_sessions_and_robust_to_one_spoilt() -> None:
    rng = np.random.default_rng(3)
    charges = _sessions(10, 20, 0.0, rng)
    charges[4] = charge(8, 30, 60, 12.0)  # a BMS jump: 40 kWh "capacity"
    samples = capacity_samples(charges, [None] * 10, chemistry="NMC")
    est = estimate_soh(samples, NEW_KWH, T0_MS + 20 * DAY_MS)
    assert est.soh_pct is not None and abs(est.soh_pct - 95.0) < 1.0
    assert est.band_low_pct is not None and est.band_high_pct is not None
    assert est.band_low_pct < est.soh_pct < est.band_high_pct


def test_fade_trend_and_the_80_percent_forecast() -> None:
    rng = np.random.default_rng(5)
    charges = _sessions(40, 180, -3.0, rng)
    now = T0_MS + 180 * DAY_MS
    est = estimate_soh(capacity_samples(charges, [None] * 40, chemistry="NMC"), NEW_KWH, now)
    assert est.fade_pct_per_year is not None and abs(est.fade_pct_per_year + 3.0) < 0.8
    assert est.eol_ts_ms is not None
    years = (est.eol_ts_ms - now) / (365.25 * DAY_MS)
    assert 3.5 < years < 7.0  # (95 - 1.5 - 80) / 3 = 4.5 years


def test_no_fade_no_forecast() -> None:
    charges = [charge(k * 10, 20, 80, 14.0 + 0.01 * k) for k in range(12)]
    est = estimate_soh(capacity_samples(charges, [None] * 12, chemistry="NMC"), NEW_KWH, T0_MS + 120 * DAY_MS)
    assert est.fade_pct_per_year is not None and est.fade_pct_per_year >= 0
    assert est.eol_ts_ms is None


def test_temperature_slope_is_learned_and_capacity_given_at_25c() -> None:
    temps = [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 2.0, 28.0]
    # capacity reads 0.3 %/K low in the cold
    charges = [charge(k, 20, 80, NEW_KWH * 0.9 * 0.6 * (1 + 0.003 * (t - 25))) for k, t in enumerate(temps)]
    est = estimate_soh(capacity_samples(charges, temps, chemistry="NMC"), NEW_KWH, T0_MS + 10 * DAY_MS)
    assert est.temp_slope_pct_per_k is not None and abs(est.temp_slope_pct_per_k - 0.27) < 0.05
    assert est.soh_pct is not None and abs(est.soh_pct - 90.0) < 0.2


def test_resistance_from_current_steps() -> None:
    ts = np.arange(0, 20_000, 1000, dtype=np.int64)
    current = np.where((ts // 4000) % 2 == 1, 60.0, 5.0)
    voltage = 100.0 - 0.08 * current
    r, steps = resistance_from_steps(ts, current, voltage)
    assert r is not None and abs(r - 0.08) < 1e-9
    assert steps == 4


def test_fleet_fade_finds_the_fast_fader_and_tells_dc_heavy_apart() -> None:
    cars = [CarFade(f"ac{k}", "m", -2.0 + 0.1 * (k % 3), 0.1, 0.0) for k in range(8)]
    cars += [CarFade(f"dc{k}", "m", -2.6, 0.1, 0.8) for k in range(3)]
    cars.append(CarFade("bad", "m", -9.0, 0.5, 0.0))
    (fleet,) = fleet_fade(cars)
    assert fleet.fast_faders == ("bad",)
    assert fleet.dc_heavy_pct_per_year == -2.6
    assert fleet.ac_mostly_pct_per_year is not None and fleet.ac_mostly_pct_per_year > -2.1
