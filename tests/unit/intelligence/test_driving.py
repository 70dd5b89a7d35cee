"""Harsh events, cornering, speeding, the Tesla-formula score and energy attribution on hand-made drives."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.intelligence.driver_energy import DriveEnergy, attribute, count_stops, traction_kwh
from microfleet.intelligence.driving import (
    G_MPS2,
    DriveSamples,
    HarshThresholds,
    SafetyFactors,
    harsh_events,
    lateral_accel_mps2,
    predicted_collision_frequency,
    safety_factors,
    safety_score,
)
from microfleet.intelligence.speeding import RoadSegments, SpeedLimitMap, speeding

T0_MS = 1_767_000_000_000
LAT0, LON0 = 31.23, 121.47
M_PER_DEG = 111_195.0


def _straight(speed_mps: np.ndarray, gap_s: float = 1.0) -> DriveSamples:
    """A drive due north from (LAT0, LON0) at these speeds, one sample every ``gap_s``."""
    n = speed_mps.size
    dist = np.cumsum(speed_mps) * gap_s
    ts = T0_MS + np.round(np.arange(n) * gap_s * 1000).astype(np.int64)
    heading = np.where(speed_mps > 0, 0.0, np.nan)
    return DriveSamples(ts, speed_mps * 3.6, LAT0 + dist / M_PER_DEG, np.full(n, LON0), heading)


def _trace() -> np.ndarray:
    """Standstill 5 s, 0→10 m/s in 3 s (0.34 g), cruise 20 s, 10→0 in 3 s (0.34 g), 5 s, 0→10 in 10 s."""
    return np.concatenate([
        np.zeros(5), np.linspace(10 / 3, 10, 3), np.full(20, 10.0), np.linspace(20 / 3, 0, 3), np.zeros(5),
        np.linspace(1, 10, 10), np.full(10, 10.0),
    ])  # fmt: skip


def test_one_harsh_acceleration_and_one_harsh_braking_at_their_seconds() -> None:
    events = harsh_events(_trace_samples := _straight(_trace()))
    kinds = [(e.kind, (e.start_ts_ms - T0_MS) // 1000) for e in events]
    # central differences: (v[k+1] - v[k-1]) / 2 s first exceeds the threshold at the ramps' first samples
    assert kinds == [("acceleration", 5), ("braking", 28)], kinds
    assert all(0.3 < e.peak_g < 0.36 for e in events)
    assert len(_trace_samples.ts_ms) == _trace().size


def test_gentle_driving_has_no_harsh_event_even_with_sensor_noise() -> None:
    rng = np.random.default_rng(3)
    speed = np.concatenate([np.linspace(0, 14, 15), np.full(60, 14.0), np.linspace(14, 0, 15)])  # ~0.1 g
    noisy = np.round(np.clip(speed * 3.6 + rng.normal(0, 0.3, speed.size), 0, None), 1) / 3.6
    assert harsh_events(_straight(noisy)) == []


def test_a_five_second_cadence_hides_nothing_it_cannot_see() -> None:
    """At 5 s between samples no acceleration is computed at all (gap > 2 s), so no event is claimed."""
    samples = _straight(_trace()[::5], gap_s=5.0)
    assert harsh_events(samples) == []
    assert safety_factors(samples, 1.0).assessed_s == 0.0


def _circle(speed_mps: float, radius_m: float, seconds: int, heading: bool) -> DriveSamples:
    t = np.arange(seconds, dtype=np.float64)
    angle = speed_mps * t / radius_m  # counter-clockwise from east
    x, y = radius_m * np.cos(angle), radius_m * np.sin(angle)
    lat = LAT0 + y / M_PER_DEG
    lon = LON0 + x / (M_PER_DEG * np.cos(np.radians(LAT0)))
    course = (np.degrees(-angle) % 360.0) if heading else np.full(seconds, np.nan)  # north = 0, clockwise
    ts = T0_MS + (t * 1000).astype(np.int64)
    return DriveSamples(ts, np.full(seconds, speed_mps * 3.6), lat, lon, course)


@pytest.mark.parametrize("heading", [True, False], ids=["course-over-ground", "fixes-only"])
def test_lateral_acceleration_on_a_known_circle_is_v_squared_over_r(heading: bool) -> None:
    samples = _circle(15.0, 50.0, 40, heading)
    lateral = lateral_accel_mps2(samples, HarshThresholds())
    inner = lateral[5:-5]
    assert np.all(np.isfinite(inner))
    assert np.median(inner) == pytest.approx(15.0**2 / 50.0, rel=0.05)  # 4.5 m/s², 0.46 g


def test_cornering_event_above_point_four_g_only() -> None:
    fast = harsh_events(_circle(15.0, 50.0, 40, True))  # 0.46 g
    slow = harsh_events(_circle(12.0, 50.0, 40, True))  # 0.29 g
    assert [e.kind for e in fast] == ["cornering"]
    assert fast[0].peak_g == pytest.approx(4.5 / G_MPS2, rel=0.05)
    assert slow == []


def _roads() -> RoadSegments:
    """A signed road due north (30 km/h) and an unsigned one parallel to it, 200 m to the east."""
    east = 200.0 / (M_PER_DEG * np.cos(np.radians(LAT0)))
    return RoadSegments(
        lat_a_deg=np.array([LAT0 - 0.01, LAT0 - 0.01]),
        lon_a_deg=np.array([LON0, LON0 + east]),
        lat_b_deg=np.array([LAT0 + 0.05, LAT0 + 0.05]),
        lon_b_deg=np.array([LON0, LON0 + east]),
        maxspeed_kmh=np.array([30.0, np.nan]),
        design_speed_kmh=np.array([50.0, 30.0]),
    )


def test_speeding_against_a_known_limit() -> None:
    limits = SpeedLimitMap(_roads())
    speed = np.concatenate([np.full(60, 40 / 3.6), np.full(60, 30 / 3.6)])  # 60 s at 40, 60 s at 30 km/h
    report = speeding(_straight(speed), limits)
    # 120 samples a second apart span 119 s; each stands for half the interval to each neighbour
    assert report.limited_s == pytest.approx(119.0)
    assert report.speeding_s == pytest.approx(59.5)  # the 60 s at 40 km/h; 30 km/h is within the tolerance
    assert report.max_excess_kmh == pytest.approx(10.0)


def test_a_fix_on_an_unsigned_road_or_far_from_roads_has_no_limit() -> None:
    limits = SpeedLimitMap(_roads())
    east = 200.0 / (M_PER_DEG * np.cos(np.radians(LAT0)))
    got = limits.limits_kmh(np.array([LAT0, LAT0, LAT0]), np.array([LON0, LON0 + east, LON0 + east / 2]))
    assert got[0] == 30.0
    assert np.isnan(got[1]) and np.isnan(got[2])
    assert limits.allowed_kmh(np.array([LAT0]), np.array([LON0 + east]))[0] == 30.0  # the design speed


def test_tesla_v1_score_by_hand() -> None:
    """HB 2 %, AT 5 %: PCF = 0.682854 × 1.127294² × 1.019630⁵ = 0.956347; score 115.382324 − 22.526504 PCF."""
    assert predicted_collision_frequency(2.0, 5.0) == pytest.approx(0.956347, abs=1e-6)
    factors = SafetyFactors(2.0, 100.0, 5.0, 100.0, 300.0, 10.0)
    assert factors.hard_braking_pct == 2.0 and factors.aggressive_turning_pct == 5.0
    assert safety_score(factors) == pytest.approx(93.839, abs=1e-3)
    assert safety_score(SafetyFactors(0.0, 0.0, 0.0, 0.0, 60.0, 1.0)) == 100.0


def test_hard_braking_share_counts_seconds_over_point_three_g_among_braking_over_point_one() -> None:
    factors = safety_factors(_straight(_trace()), 0.5)
    # braking: 3 s at 0.34 g give ~3 s over 0.3 g; the slope window adds a second or two over 0.1 g
    assert 1.0 <= factors.hard_braking_s <= factors.braking_s <= 6.0
    assert safety_score(factors) < 100.0


def _drive(driver: str, model: str, factor: float, temp: float, km: float) -> DriveEnergy:
    base = 0.08 * (1.1 if model == "big" else 1.0) * (1 + 0.01 * max(15.0 - temp, 0.0))
    return DriveEnergy(driver, model, km, base * factor * km, temp, 40.0, 2, 12)


def test_attribution_recovers_driver_factors_across_cars_and_weather() -> None:
    rng = np.random.default_rng(1)
    truth = {"gentle": 0.9, "median": 1.0, "heavy": 1.2}
    drives = []
    for name, factor in truth.items():
        for k in range(30):
            # the heavy driver drives the big car in the cold more often: raw kWh/km would overstate them
            model = "big" if (name == "heavy") == (k % 3 != 0) else "small"
            temp = float(rng.uniform(0, 10) if name == "heavy" else rng.uniform(5, 25))
            drives.append(
                _drive(name, model, factor * float(rng.normal(1, 0.02)), temp, float(rng.uniform(3, 9)))
            )
    found = {d.driver: d for d in attribute(drives)}
    assert found["median"].energy_factor == pytest.approx(1.0, abs=0.01)
    assert found["heavy"].energy_factor == pytest.approx(1.2, rel=0.03)
    assert found["gentle"].energy_factor == pytest.approx(0.9, rel=0.03)
    assert found["heavy"].excess_kwh > 0 and found["gentle"].excess_kwh == 0.0


def test_a_driver_with_few_drives_is_learning() -> None:
    drives = [_drive("a", "small", 1.0, 20, 5) for _ in range(10)] + [_drive("b", "small", 1.3, 20, 5)] * 2
    found = {d.driver: d for d in attribute(drives)}
    assert found["b"].energy_factor is None and found["b"].drives == 2


def test_traction_energy_leaves_out_the_standstill_draw_and_stops_are_counted() -> None:
    speed_kmh = np.array([0, 0, 20, 40, 40, 0, 0, 0, 0, 0, 0, 30, 0], dtype=np.float64)
    ts = T0_MS + np.arange(speed_kmh.size, dtype=np.int64) * 1000
    power = np.where(speed_kmh > 0, 10.5, 0.5)  # 0.5 kW of climate and electronics throughout
    assert traction_kwh(power, speed_kmh, ts) == pytest.approx(4 * 10.0 / 3600.0)
    assert count_stops(speed_kmh, ts) == 1


def test_a_one_sample_blip_is_not_an_event_but_a_one_second_one_is() -> None:
    """A speed jump of 4.5 m/s for one sample gives one central difference over 0.2 g; an event needs two."""
    blip = np.full(30, 10.0)
    blip[15] = 10.0 + 4.5  # (v[16] - v[14]) / 2 s is 0; only k = 14 and 16 see +-2.25 m/s² (one sample each)
    assert harsh_events(_straight(blip)) == []
    # a 2 s ramp peaks at one sample only; over 3 s at 2.5 m/s², two samples reach it: one event
    two_s = np.concatenate([np.full(15, 10.0), [12.5, 15.0], np.full(13, 15.0)])
    three_s = np.concatenate([np.full(15, 10.0), [12.5, 15.0, 17.5], np.full(12, 17.5)])
    assert harsh_events(_straight(two_s)) == []
    assert [e.kind for e in harsh_events(_straight(three_s))] == ["acceleration"]
