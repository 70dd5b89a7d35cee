"""Maintenance detectors on synthetic series whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.dtc import decode
from microfleet.intelligence.maintenance import (
    Verdict,
    aux_battery,
    cells,
    detect_all,
    threshold_factor,
    tyres,
)
from microfleet.intelligence.maintenance.series import CarSeries, theil_sen

T0 = 1_767_484_800_000  # a UTC midnight
STEP_MS = 600_000  # a parked car's 10 min


def parked(days: float, **signals: np.ndarray) -> CarSeries:
    """A parked car (ignition off, speed 0) sending every 10 min, with the given signals."""
    ts = T0 + np.arange(int(days * 144)) * STEP_MS
    base = CarSeries.empty("car-1", ts)
    fields = {"speed_kmh": np.zeros(ts.size), "ignition_on": np.zeros(ts.size)} | signals
    return CarSeries(**{**{k: getattr(base, k) for k in base.__dataclass_fields__}, **fields})


def days_of(s: CarSeries) -> np.ndarray:
    return (s.ts_ms - T0) / 86_400_000


def test_theil_sen_ignores_an_outlier() -> None:
    t = np.arange(10.0)
    y = 2.0 * t + 1.0
    y[3] = 100.0
    assert theil_sen(t, y) == pytest.approx(2.0)


def test_temperature_correction_is_ideal_gas_on_absolute_pressure() -> None:
    # 250 kPa gauge at 40 °C is (351.325 x 293.15 / 313.15) - 101.325 = 227.56 kPa at 20 °C
    got = tyres.corrected_kpa(np.array([250.0]), np.array([40.0]))
    assert got[0] == pytest.approx(351.325 * 293.15 / 313.15 - 101.325)
    assert tyres.corrected_kpa(np.array([250.0]), np.array([20.0]))[0] == pytest.approx(250.0)


def _tyres(days: float, leak_kpa_day: float, start_day: float, temp: np.ndarray) -> np.ndarray:
    n = int(days * 144)
    d = np.arange(n) / 144
    gauge_20 = np.full((n, 4), 250.0)
    gauge_20[:, 0] -= np.clip(d - start_day, 0, None) * leak_kpa_day
    # every wheel sees the day's temperature: absolute pressure scales with absolute temperature
    return (gauge_20 + 101.325) * ((temp + 273.15) / 293.15)[:, None] - 101.325


def test_a_slow_leak_is_flagged_with_its_rate_and_time_to_the_warning() -> None:
    n = 10 * 144
    temp = 15 + 8 * np.sin(np.arange(n) / 144 * 2 * np.pi)  # a day's swing moves all four by ~±7 kPa
    s = parked(10, tyre_pressure_kpa=_tyres(10, 8.0, 6.0, temp), ambient_temp_c=temp)
    tr = tyres.trace(s)
    first = np.flatnonzero(tr.flagged[:, 0])
    assert first.size and 6.0 < (first[0] + 1) / 4 < 8.0  # flagged within two days of the start
    assert not tr.flagged[:, 1:].any()  # the other wheels: no leak
    (res,) = tyres.detect(s)
    assert res.verdict is Verdict.SUSPECTED and res.condition == "tyre:fl"
    assert res.evidence["slope_kpa_per_day"] == pytest.approx(-8.0, abs=0.5)
    # 250 x 0.75 = 187.5 kPa; at 8 kPa/day from the level now
    level = float(res.evidence["pressure_kpa_at_20c"])
    assert res.evidence["days_to_warning"] == pytest.approx((level - 187.5) / 8.0, abs=0.6)


def test_the_weather_alone_raises_no_tyre_alert() -> None:
    n = 20 * 144
    temp = 10 + 10 * np.sin(np.arange(n) / 144 * 2 * np.pi) + np.linspace(0, -15, n)  # a cold snap
    s = parked(20, tyre_pressure_kpa=_tyres(20, 0.0, 0.0, temp), ambient_temp_c=temp)
    assert not tyres.trace(s).flagged.any()
    assert tyres.detect(s)[0].verdict is Verdict.OK


def test_no_tpms_means_no_tyre_detector_and_says_so() -> None:
    (res,) = tyres.detect(parked(10))
    assert res.verdict is Verdict.NO_SIGNAL
    assert res.reason == "no tyre detector: the car sends no tyre pressure (no TPMS)"


def test_too_little_history_says_how_many_more_days() -> None:
    s = parked(1.01, tyre_pressure_kpa=np.full((145, 4), 250.0))  # exactly one day
    (res,) = tyres.detect(s)
    assert res.verdict is Verdict.LEARNING
    assert res.reason.startswith("learning: 2 more days needed")
    assert res.learning_days_needed == 2


def test_12v_decay_is_flagged_a_week_before_flat() -> None:
    d = np.arange(20 * 144) / 144
    v = np.round(12.65 - np.clip(d - 10, 0, None) * 0.05, 2)  # 0.05 V/day from day 10: flat at day 27
    s = parked(20, aux_battery_v=v)
    tr = aux_battery.trace(s)
    first = (np.flatnonzero(tr.flagged)[0] + 1) / 4
    assert 10.0 < first < 12.5
    (res,) = aux_battery.detect(s)
    assert res.verdict is Verdict.SUSPECTED
    # (12.15 - 11.8) / 0.05 = 7 days from day 20
    assert res.evidence["days_to_flat"] == pytest.approx(7.0, abs=1.0)


def test_a_steady_12v_battery_is_ok_and_readings_while_charging_are_not_rest() -> None:
    d = np.arange(10 * 144) / 144
    v = np.where((d % 1) < 0.1, 14.2, 12.65)  # awake an hour or two a day: DC-DC at 14.2 V
    s = parked(10, aux_battery_v=v)
    assert not aux_battery.rest_mask(s)[(d % 1) < 0.1].any()
    assert aux_battery.detect(s)[0].verdict is Verdict.OK


def test_a_few_rest_readings_at_a_buckets_end_are_not_a_falling_battery() -> None:
    # awake (14.2 V) for the first 1 h 45 min of each 6 h bucket of day 6, so only the readings of the last
    # quarter hour are settled rest (4 h after); those few read 0.06 V low (noise one reading keeps)
    d = np.arange(12 * 144) / 144
    in_bucket = (d * 4) % 1
    day6 = (d >= 6) & (d < 7)
    v = np.full(d.size, 12.65)
    v[day6] = np.where(in_bucket[day6] < 0.29, 14.2, 12.59)
    s = parked(12, aux_battery_v=v)
    tr = aux_battery.trace(s)
    assert not tr.flagged.any()
    few = np.flatnonzero(day6 & aux_battery.rest_mask(s))
    assert few.size and np.isnan(tr.rest_v[24:28]).sum() == 0  # the buckets carry the last full rest level
    assert np.allclose(tr.rest_v[24:28], 12.65)


def test_a_growing_cell_spread_is_a_weak_cell_and_load_is_not() -> None:
    n = 20 * 144
    d = np.arange(n) / 144
    current = np.where(np.arange(n) % 6 == 0, 60.0, 0.5)  # spikes of load widen the spread: ignored
    spread = 0.010 + 0.0004 * current + np.clip(d - 12, 0, None) * 0.004  # 4 mV/day from day 12
    s = parked(20, cell_voltage_min_v=3.3 - spread, cell_voltage_max_v=np.full(n, 3.3),
               pack_current_a=current, soc_pct=np.full(n, 60.0))  # fmt: skip
    tr = cells.trace(s)
    assert not tr.flagged[: 12 * 4].any()
    (res,) = cells.detect(s)
    assert res.verdict is Verdict.SUSPECTED
    assert res.evidence["slope_mv_per_day"] == pytest.approx(4.0, abs=0.5)


def test_capacity_outlier_against_its_models_fleet() -> None:
    est = {f"c{i}": ("mini", 96.0 + (i % 3) * 0.5) for i in range(10)} | {"weak": ("mini", 88.0)}
    est |= {"q1": ("qq", 90.0)}
    out = cells.capacity_outliers(est)
    assert out["weak"].verdict is Verdict.SUSPECTED
    assert out["c1"].verdict is Verdict.OK
    assert out["q1"].verdict is Verdict.LEARNING and "needs 5" in out["q1"].reason


def test_false_alarm_marks_raise_thresholds_up_to_twice() -> None:
    assert threshold_factor(0) == 1.0
    assert threshold_factor(1) == pytest.approx(1.25)
    assert threshold_factor(10) == 2.0


def test_codes_are_decoded_with_their_source() -> None:
    assert decode("p0562").title == "System Voltage Low"
    unknown = decode("P1234")
    assert "manufacturer-specific" in unknown.title and unknown.severity == "info"


def test_detect_all_reports_each_detector_and_a_code() -> None:
    s = parked(5, aux_battery_v=np.full(720, 12.6))
    s.dtc_codes[700] = ("P0A2F",)
    names = {r.detector: r for r in detect_all(s)}
    assert names["tyre"].verdict is Verdict.NO_SIGNAL
    assert names["12v_battery"].verdict is Verdict.OK
    assert names["dtc"].condition == "code:P0A2F"
    assert names["motor_thermal"].verdict is Verdict.SUSPECTED
    assert names["brakes"].verdict is Verdict.NO_SIGNAL


def test_the_forest_scores_a_car_far_from_its_usual_above_the_ordinary_wobble() -> None:
    from microfleet.errors import ConfigurationError
    from microfleet.intelligence.maintenance.learned import FEATURES, ResidualForest

    rng = np.random.default_rng(0)
    ordinary = rng.normal(0.0, 1.0, (2000, len(FEATURES)))
    with pytest.raises(ConfigurationError):
        ResidualForest().score(ordinary)
    forest = ResidualForest(n_estimators=50, seed=1).fit(ordinary)
    odd = np.zeros((1, len(FEATURES)))
    odd[0, 4:6] = 12.0  # a weak cell: its spread 12 MADs over the car's usual and growing as fast
    assert forest.score(odd)[0] > np.quantile(forest.score(ordinary), 0.99)


def test_gps_glitches_three_in_a_month_point_at_the_receiver() -> None:
    n = 30 * 144
    lat, lon, hdop = np.full(n, 31.23), np.full(n, 121.47), np.full(n, 1.0)
    for day in (3, 12, 25):  # a fix 2 km off with a poor HDOP, three times
        i = day * 144
        lat[i], hdop[i] = 31.25, 12.0
    s = parked(30, lat_deg=lat, lon_deg=lon, gps_hdop=hdop)
    (res,) = detect_all_gps(s)
    assert res.verdict is Verdict.SUSPECTED and res.evidence["glitch_episodes_30d"] == 3
    lat[25 * 144], hdop[25 * 144] = 31.23, 1.0
    (two,) = detect_all_gps(parked(30, lat_deg=lat, lon_deg=lon, gps_hdop=hdop))
    assert two.verdict is Verdict.OK


def detect_all_gps(s: CarSeries) -> list:
    from microfleet.intelligence.maintenance.diagnostics import gps

    return gps(s)
