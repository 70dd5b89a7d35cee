"""The realistic sensor model: each error the twin injects is within its stated band, and the truth is not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from microfleet.errors import ConfigurationError
from microfleet.sim.engine import Twin
from microfleet.sim.fleet import NOMINAL_TYRE_KPA
from microfleet.sim.models import MODELS
from microfleet.sim.run import DayOutput, run_days, static_truth
from microfleet.sim.samples import day_samples
from microfleet.sim.scenario import FaultRates, Scenario, load_scenario
from microfleet.sim.sensor_errors import (
    GPS_UERE_M,
    OBSERVABLE_SLOPE_MV_PER_PCT,
    SURFACE_CHARGE_TAU_H,
    SURFACE_CHARGE_V,
    ocv_slope_mv_per_pct,
    schedule_resets,
)
from microfleet.sim.sensor_profiles import (
    CELL_VOLTAGE_BIAS_MV,
    CLOCK_DRIFT_PPM,
    COUNTER_RESETS_PER_YEAR,
    CURRENT_GAIN_ERROR_PCT,
    CURRENT_OFFSET_TEMPCO_A_PER_K,
    SIGNAL_PROFILES,
    TYRE_TOPUP_EVERY_DAYS,
    CarSensors,
)
from microfleet.sim.sensors import TYRE_KPA_PER_K, sense

NO_FAULTS = FaultRates(0, 0, 0, 0, 0, 0)
ALL_MODELS = (
    "wuling-hongguang-mini-ev-gen1-14kwh",
    "chery-qq-ice-cream-14kwh",
    "dacia-spring-65-2024",
    "citroen-ami",
)
SCENARIO = Scenario(vehicles=24, days=4, seed=3, models=ALL_MODELS, fault_rates=NO_FAULTS)
QQ_WRAP_KWH = SIGNAL_PROFILES["chery-qq-ice-cream-14kwh"].counter_wrap_kwh


def _run(scenario: Scenario, twin: Twin | None = None) -> tuple[Twin, list[DayOutput]]:
    twin = twin or Twin(scenario)
    return twin, list(run_days(twin))


def _realistic_twin() -> Twin:
    twin = Twin(SCENARIO.with_overrides(sensor_model="realistic"))
    # two QQ cars' counters start just below their 16-bit wrap, so the run must roll them over
    qq = [v.index for v in twin.fleet if v.model.model_id == "chery-qq-ice-cream-14kwh"][:2]
    twin.sensors.counter_used0_kwh[qq] = QQ_WRAP_KWH - 0.3
    # and the Springs' counters reset about daily (the stated rate is 6 a year: too rare to see here)
    spring = [v.index for v in twin.fleet if v.model.model_id == "dacia-spring-65-2024"]
    twin.sensors.counter_resets_per_year[spring] = 365.0
    return twin


@pytest.fixture(scope="module")
def realistic() -> tuple[Twin, list[DayOutput]]:
    return _run(SCENARIO, _realistic_twin())


@pytest.fixture(scope="module")
def joined(realistic: tuple[Twin, list[DayOutput]]) -> pd.DataFrame:
    """Every sent record beside the truth of its sample (clean link: sent once, at the sample's true time)."""
    twin, days = realistic
    tel = pa.concat_tables([d.telemetry.append_column("send_ms", pa.array(d.send_ms)) for d in days])
    truth = pa.concat_tables([d.truth["samples"] for d in days]).to_pandas()
    out = tel.to_pandas().merge(
        truth, left_on=["vehicle_id", "send_ms"], right_on=["vehicle_id", "ts_ms"], suffixes=("", "_true")
    )
    assert len(out) == tel.num_rows == len(truth)
    model = {v.vehicle_id: v.model.model_id for v in twin.fleet}
    out["model"] = out["vehicle_id"].map(model)
    out["car"] = out["vehicle_id"].map({v.vehicle_id: v.index for v in twin.fleet})
    return out.sort_values(["car", "send_ms"], kind="stable").reset_index(drop=True)


def test_the_sensor_model_is_chosen_in_the_scenario_file_and_refused_when_unknown(tmp_path: Path) -> None:
    assert Scenario().sensor_model == "realistic"
    path = tmp_path / "s.toml"
    path.write_text('vehicles = 3\nsensor_model = "ideal"\n')
    assert load_scenario(path).validate(frozenset(MODELS)).sensor_model == "ideal"
    with pytest.raises(ConfigurationError, match="unknown sensor model 'perfect'"):
        Scenario(sensor_model="perfect").validate(frozenset(MODELS))


def test_every_catalogue_model_has_a_signal_profile() -> None:
    assert set(SIGNAL_PROFILES) == set(MODELS)


def test_realistic_sensors_leave_the_truth_untouched(realistic: tuple[Twin, list[DayOutput]]) -> None:
    _, ideal = _run(SCENARIO)
    _, days = realistic
    for a, b in zip(ideal, days, strict=True):
        for name in ("samples", "trips"):
            assert a.truth[name].equals(b.truth[name])
        assert not a.telemetry.equals(b.telemetry)
    _, again = _run(SCENARIO, _realistic_twin())
    for a, b in zip(days, again, strict=True):
        assert a.telemetry.equals(b.telemetry) and a.truth["sensor_events"].equals(b.truth["sensor_events"])


def test_per_car_draws_stay_in_their_bands(realistic: tuple[Twin, list[DayOutput]]) -> None:
    fleet = realistic[0].fleet * 20
    cars = CarSensors.draw(fleet, "realistic", np.random.default_rng(1))
    gain_pct = np.abs(cars.current_gain - 1.0) * 100.0
    assert gain_pct.min() >= CURRENT_GAIN_ERROR_PCT[0] and gain_pct.max() <= CURRENT_GAIN_ERROR_PCT[1]
    assert (cars.current_gain > 1).any() and (cars.current_gain < 1).any()
    drift = np.abs(cars.offset_a_per_k)
    assert drift.min() >= CURRENT_OFFSET_TEMPCO_A_PER_K[0] and drift.max() <= CURRENT_OFFSET_TEMPCO_A_PER_K[1]
    assert np.abs(cars.clock_drift_ppm).max() <= CLOCK_DRIFT_PPM
    ideal = CarSensors.draw(fleet, "ideal", np.random.default_rng(1))
    assert not ideal.realistic and np.all(ideal.current_gain == 1.0) and np.all(ideal.offset_a_per_k == 0.0)


def test_the_sensed_current_has_the_cars_gain_and_temperature_drifting_offset() -> None:
    twin = Twin(Scenario(vehicles=6, seed=2, models=ALL_MODELS, sensor_model="realistic"))
    s = day_samples(twin, twin.simulate_day(0))
    cols = sense(twin, s, np.random.default_rng(0), (np.zeros(s.t_s.size), np.zeros(s.t_s.size)))
    cars, fitted = twin.sensors, 0
    for v in range(len(twin.fleet)):
        rows = s.vehicle == v
        if np.ptp(s.pack_current_a[rows]) < 50.0:
            continue  # a car that hardly drove: its gain cannot be told from its offset
        design = np.column_stack([s.pack_current_a[rows], np.ones(rows.sum()), s.pack_temp_c[rows] - 25.0])
        (gain, offset, per_k), *_ = np.linalg.lstsq(
            design, np.asarray(cols["pack_current_a"])[rows], rcond=None
        )
        assert gain == pytest.approx(cars.current_gain[v], abs=1e-3)
        assert offset == pytest.approx(cars.current_offset_a[v], abs=0.05)
        assert per_k == pytest.approx(cars.offset_a_per_k[v], abs=3e-3)
        fitted += 1
    assert fitted >= 3


def test_counter_resets_come_at_the_stated_rate() -> None:
    rng = np.random.default_rng(4)
    counts = [schedule_resets(np.full(500, COUNTER_RESETS_PER_YEAR), day, rng)[0].size for day in range(40)]
    expected = COUNTER_RESETS_PER_YEAR / 365.0 * 500 * 40
    assert sum(counts) == pytest.approx(expected, abs=4 * np.sqrt(expected))
    _, t_s = schedule_resets(np.full(500, 365.0), 7, np.random.default_rng(0))
    assert t_s.size > 400
    assert np.all((t_s >= 7 * 86400.0) & (t_s < 8 * 86400.0))


def test_counters_integrate_the_sensed_current_reset_and_wrap(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    twin, days = realistic
    events = pa.concat_tables([d.truth["sensor_events"] for d in days]).to_pandas()
    resets = events[events["kind"] == "counter_reset"]
    wrapped = 0
    for car, rows in joined.groupby("car"):
        used = rows["energy_used_kwh"].to_numpy()
        profile = SIGNAL_PROFILES[twin.fleet[int(car)].model.model_id]
        if not profile.pack_electrics:
            assert np.isnan(used).all() and rows["pack_current_a"].isna().all()
            continue
        assert np.all((used >= 0) & (used < profile.counter_wrap_kwh))
        step = np.diff(used)
        car_resets = resets[resets["vehicle_id"] == rows["vehicle_id"].iloc[0]]
        # the counter only goes back at a reset (to 0) or where it rolls over at its wrap
        back = np.flatnonzero(step < 0)
        at_reset = np.isin(rows["send_ms"].to_numpy()[back + 1], car_resets["ts_ms"].to_numpy())
        rolled = used[back] > profile.counter_wrap_kwh - 1.0
        assert np.all(at_reset | rolled)
        wrapped += int(rolled.sum())
    assert wrapped >= 2  # the two QQ cars started just below the wrap


def test_a_reset_shows_as_a_counter_starting_again_from_zero(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    _, days = realistic
    resets = pa.concat_tables([d.truth["sensor_events"] for d in days]).to_pandas()
    resets = resets[resets["kind"] == "counter_reset"]
    assert len(resets) >= 5
    for r in resets.itertuples():
        car = joined[joined["vehicle_id"] == r.vehicle_id]  # send_ms: the sample's true time here
        before = car[car["send_ms"] < r.ts_ms]["energy_used_kwh"]
        after = car[car["send_ms"] >= r.ts_ms]["energy_used_kwh"].iloc[0]
        assert after == 0.0  # a fresh count from the reset's sample on
        if r.ts_ms == resets[resets["vehicle_id"] == r.vehicle_id]["ts_ms"].min() and not before.empty:
            assert before.iloc[-1] > 50.0  # the car's first reset: its lifetime reading before it


def test_bms_soc_snaps_to_the_truth_where_the_ocv_is_steep_and_drifts_on_the_lfp_plateau(
    joined: pd.DataFrame,
) -> None:
    lfp = joined[joined["model"] != "dacia-spring-65-2024"]
    step = lfp["model"].map({m: p.soc_step_pct for m, p in SIGNAL_PROFILES.items()})
    err = lfp["soc_pct"] - lfp["true_soc_pct"]
    slope = ocv_slope_mv_per_pct(lfp["true_soc_pct"].to_numpy(), np.ones(len(lfp), dtype=bool))
    steep = slope >= OBSERVABLE_SLOPE_MV_PER_PCT
    # steep: the cell-voltage error (±3 mV bias, 0.5 mV noise at 4 sigma) over the slope, and one step down
    bound = (CELL_VOLTAGE_BIAS_MV + 2.0) / slope[steep] + step[steep]
    assert np.all(np.abs(err[steep]) <= bound)
    assert steep.sum() > 1000
    plateau = np.abs(err[~steep])
    assert plateau.quantile(0.95) > 2.0 * np.abs(err[steep]).quantile(0.95)
    # each car's SoC comes in its profile's steps
    assert np.allclose(np.round(lfp["soc_pct"] / step), lfp["soc_pct"] / step, atol=1e-6)


def test_profiles_decide_which_flags_a_car_sends(joined: pd.DataFrame) -> None:
    for model, rows in joined.groupby("model"):
        profile = SIGNAL_PROFILES[str(model)]
        assert rows["gear"].isna().all() == (not profile.gear)
        assert rows["ignition_on"].isna().all() == (not profile.ignition)
        assert rows["pack_voltage_v"].isna().all() == (not profile.pack_electrics)
        sent = rows["gear"].dropna()
        assert set(sent) <= {"D", "P", profile.stop_gear}


def test_flags_lag_the_true_state_by_at_most_the_cars_lag(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    twin, _ = realistic
    checked = 0
    for car, rows in joined.groupby("car"):
        lag = int(twin.sensors.flag_lag_max[int(car)])
        driving = (rows["state"] == "drive").to_numpy()
        ignition = rows["ignition_on"].to_numpy()
        # "off" only if the car was not driving at this sample or one of its `lag` predecessors
        for i in np.flatnonzero(ignition == False).tolist():  # noqa: E712 - object column with None
            assert not driving[max(0, i - lag) : i + 1].all()
            checked += 1
        # a drive's samples past the lag never read "off"
        start = np.flatnonzero(driving & ~np.r_[False, driving[:-1]])
        for a in start.tolist():
            b = a
            while b + 1 < driving.size and driving[b + 1]:
                b += 1
            assert not np.any(ignition[a + lag : b + 1] == False)  # noqa: E712
        # the charger flag arrives late, never early: "unplugged" while charging only within the lag
        charging = (rows["state"] == "charge").to_numpy()
        charger = rows["charger_connected"].to_numpy()
        for i in np.flatnonzero(charging & (charger == False)).tolist():  # noqa: E712
            assert not charging[max(0, i - lag) : i + 1].all()
            checked += 1
    assert checked > 1000


def test_gear_leaves_d_only_at_long_stops_and_the_climate_keeps_ignition_on_parked(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    twin, _ = realistic
    shifted = joined[(joined["state"] == "drive") & joined["gear"].isin(["N"])]
    assert len(shifted) > 20
    for r in shifted.itertuples():
        lag = int(twin.sensors.flag_lag_max[r.car])
        window = joined.iloc[max(0, r.Index - lag) : r.Index + 1]
        assert (window["true_speed_kmh"] < 0.5).any()
    # parked with ignition on, past the flag's lag after the drive: the driver sits on with the climate on
    on = np.flatnonzero(((joined["state"] == "park") & (joined["ignition_on"] == True)).to_numpy())  # noqa: E712
    parked = (joined["state"] == "park").to_numpy()
    hvac = joined["hvac_on"].to_numpy()
    climate = 0
    for i in on.tolist():
        lag = int(twin.sensors.flag_lag_max[joined["car"].iat[i]])
        if parked[max(0, i - lag) : i + 1].all():
            assert hvac[max(0, i - lag) : i + 1].any()
            climate += 1
    assert climate > 10


def test_gps_errs_more_in_dense_streets_drops_in_tunnels_and_hdop_follows(joined: pd.DataFrame) -> None:
    fix = joined.dropna(subset=["lat_deg"])
    north = (fix["lat_deg"] - fix["true_lat_deg"]) * 111_195.0
    east = (fix["lon_deg"] - fix["true_lon_deg"]) * 111_195.0 * np.cos(np.radians(fix["true_lat_deg"]))
    err_m = np.hypot(north, east)
    # HDOP x UERE bounds the multipath and re-acquisition error; the open-sky noise (3 m/axis) is on top
    assert np.all(err_m <= fix["gps_hdop"] * GPS_UERE_M + 0.05 * GPS_UERE_M + 20.0)
    assert err_m.quantile(0.99) > 3 * err_m.median()
    no_fix = joined[joined["lat_deg"].isna()]
    assert len(no_fix) > 10 and (no_fix["state"] == "drive").all() and no_fix["gps_hdop"].isna().all()


def test_device_clocks_jitter_drift_and_step_but_never_repeat_a_timestamp(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    twin, days = realistic
    err_ms = joined["ts_ms"] - joined["send_ms"]
    steps = pa.concat_tables([d.truth["sensor_events"] for d in days]).to_pandas()
    steps = steps[steps["kind"] == "clock_step"]
    drift_ms = CLOCK_DRIFT_PPM * 1e-3 * 86_400 * 2  # at most two days unset (the settings are random)
    stepped = joined["vehicle_id"].isin(steps["vehicle_id"])
    assert np.all(np.abs(err_ms[~stepped]) <= 3 * 300 + drift_ms)
    assert np.abs(err_ms).median() < 1000
    assert np.all(np.abs(err_ms) <= 30_000 + 3 * 300 + drift_ms)
    assert not joined.duplicated(["vehicle_id", "ts_ms"]).any()
    assert static_truth(twin, 0)["vehicles"].column("sensor_model").to_pylist() == ["realistic"] * 24


def test_tyre_readings_carry_each_sensors_offset_and_permeation_and_sometimes_go_missing(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    cars = realistic[0].sensors
    missing = joined["tyre_pressure_kpa"].isna()
    assert 0.015 < missing.mean() < 0.05
    rows = joined[~missing]
    car = rows["car"].to_numpy()
    tyres = np.stack(rows["tyre_pressure_kpa"].to_numpy())
    driving = (rows["state"] == "drive").to_numpy()
    # the twin's temperature model (Gay-Lussac, +8 K while driving), from the reported ambient
    nominal = NOMINAL_TYRE_KPA + TYRE_KPA_PER_K * (rows["ambient_temp_c"].to_numpy() + 8.0 * driving - 20.0)
    days = (rows["send_ms"].to_numpy() - realistic[1][0].send_ms.min()) / 86_400_000
    since_topup = np.mod(days - cars.tyre_topup_day[car], TYRE_TOPUP_EVERY_DAYS)[:, None]
    expected = (
        nominal[:, None] + cars.tpms_offset_kpa[car] - cars.tyre_permeation_kpa_per_day[car] * since_topup
    )
    residual = tyres - expected  # 1 kPa noise, 1 kPa steps, the ambient's 0.5 °C steps
    assert abs(float(np.mean(residual))) < 0.3 and float(np.std(residual)) < 1.5
    assert float(np.std(cars.tpms_offset_kpa)) > 1.5  # the offsets are there to find, not zero


def test_the_12v_battery_rests_at_its_own_level_with_surface_charge_fading_after_the_car_sleeps(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    cars = realistic[0].sensors
    fresh, settled = [], []
    for c, rows in joined.groupby("car"):
        aux = rows["aux_battery_v"].to_numpy()
        t_h = rows["send_ms"].to_numpy() / 3_600_000
        awake = aux > 13.5  # the DC-DC converter's 14.2 V
        last = np.maximum.accumulate(np.where(awake, t_h, -np.inf))
        hours = t_h - last
        rest = ~awake & np.isfinite(hours)
        expected = cars.aux_rest_v[int(c)] + SURFACE_CHARGE_V * np.exp(-hours / SURFACE_CHARGE_TAU_H)
        assert np.all(np.abs(aux[rest] - expected[rest]) < 0.12)  # 0.02 V noise, 10 min cadence, 0.01 V steps
        fresh.extend((aux - cars.aux_rest_v[int(c)])[rest & (hours < 0.5)].tolist())
        settled.extend((aux - cars.aux_rest_v[int(c)])[rest & (hours > 8)].tolist())
    assert np.median(fresh) > 0.15 and abs(float(np.median(settled))) < 0.03
    assert np.ptp(cars.aux_rest_v) > 0.1


def test_a_packs_cell_spread_is_its_own_and_widens_under_load(
    realistic: tuple[Twin, list[DayOutput]], joined: pd.DataFrame
) -> None:
    cars = realistic[0].sensors
    pack = joined.dropna(subset=["cell_voltage_max_v"])
    spread_mv = (pack["cell_voltage_max_v"] - pack["cell_voltage_min_v"]) * 1000.0
    resting = (pack["state"] == "park") & (pack["pack_current_a"].abs() < 1.0) & (pack["true_soc_pct"] > 30)
    per_car = spread_mv[resting].groupby(pack["car"][resting]).median()
    assert len(per_car) >= 5
    assert np.all(np.abs(per_car.to_numpy() - cars.cell_spread_mv[per_car.index.to_numpy()]) < 2.0)
    loaded = (pack["state"] == "drive") & (pack["pack_current_a"] > 40.0)
    assert spread_mv[loaded].median() > spread_mv[resting].median() + 0.1 * 40.0
