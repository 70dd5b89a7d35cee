from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.engine import Twin
from microfleet.sim.run import DayOutput, run_days, static_truth
from microfleet.sim.scenario import FaultRates, LinkFaults, Scenario
from microfleet.sim.sensor_profiles import SIGNAL_PROFILES

NO_FAULTS = FaultRates(0, 0, 0, 0, 0, 0)
TELEMETRY_FIELDS = (
    set(msgspec.structs.fields(TelemetryRecord))
    if False
    else {f.name for f in msgspec.structs.fields(TelemetryRecord)}
)


def _run(**changes: object) -> tuple[Twin, list[DayOutput]]:
    scenario = Scenario(vehicles=12, days=2, seed=7, fault_rates=NO_FAULTS).with_overrides(**changes)
    twin = Twin(scenario)
    return twin, list(run_days(twin))


@pytest.fixture(scope="module")
def clean() -> tuple[Twin, list[DayOutput]]:
    return _run()


def test_same_seed_gives_identical_telemetry_and_truth(clean: tuple[Twin, list[DayOutput]]) -> None:
    _, again = _run()
    for a, b in zip(clean[1], again, strict=True):
        assert a.telemetry.equals(b.telemetry)
        assert all(a.truth[k].equals(b.truth[k]) for k in a.truth)
    _, other = _run(seed=8)
    assert not clean[1][0].telemetry.equals(other[0].telemetry)


def test_telemetry_is_protocol_v1_and_carries_no_truth(clean: tuple[Twin, list[DayOutput]]) -> None:
    twin, days = clean
    table = days[0].telemetry
    assert set(table.column_names) == TELEMETRY_FIELDS
    assert not any(name.startswith("true_") for name in table.column_names)
    rows = table.slice(0, 2000).to_pylist()
    for row in rows:
        msgspec.convert({k: v for k, v in row.items() if v is not None}, TelemetryRecord)
    # BMS SoC comes in its model's steps (sim/sensor_profiles.py); the truth is continuous.
    step = {v.vehicle_id: SIGNAL_PROFILES[v.model.model_id].soc_step_pct for v in twin.fleet}
    soc = table["soc_pct"].to_numpy()
    steps = np.array([step[v] for v in table["vehicle_id"].to_pylist()])
    assert np.all(np.abs(soc / steps - np.round(soc / steps)) < 1e-6)
    assert len(set(steps)) > 1  # the fleet mixes models of different resolution
    truth_soc = days[0].truth["samples"]["true_soc_pct"].to_numpy()
    assert np.mean(np.round(truth_soc % 0.5, 6) != 0) > 0.9
    assert {"drive", "park", "charge"} <= set(days[0].truth["samples"]["state"].to_pylist())
    # OVMS cadence: driving samples 5 s apart, give or take the device clock's jitter (docs/twin.md).
    drive = table.filter(pc.field("speed_kmh") > 5)
    ts = drive.filter(pc.field("vehicle_id") == drive["vehicle_id"][0])["ts_ms"].to_numpy()
    assert abs(np.median(np.diff(ts)) - 5000) <= 500
    assert static_truth(twin, 0)["faults"].num_rows == 0


def test_clean_link_sends_every_sample_once_in_order(clean: tuple[Twin, list[DayOutput]]) -> None:
    for day in clean[1]:
        assert day.telemetry.num_rows == day.truth["samples"].num_rows
        assert day.truth["link_events"].num_rows == 0
        assert np.all(np.diff(day.send_ms) >= 0)


def test_link_faults_appear_in_the_stream_as_configured() -> None:
    link = LinkFaults(drop_p=0.05, duplicate_p=0.03, delay_p=0.02, delay_max_s=300, skewed_vehicle_share=0.5)
    twin, days = _run(link=link)
    day = days[0]
    n_true = day.truth["samples"].num_rows
    events = day.truth["link_events"]
    counts = {
        k: int(pc.sum(pc.equal(events["event"], k)).as_py()) for k in ("dropped", "duplicated", "delayed")
    }
    assert counts["dropped"] == pytest.approx(0.05 * n_true, rel=0.2)
    assert counts["duplicated"] == pytest.approx(0.03 * n_true * 0.95, rel=0.25)
    assert day.telemetry.num_rows == n_true - counts["dropped"] + counts["duplicated"]
    keys = pa.table({"v": day.telemetry["vehicle_id"], "t": day.telemetry["ts_ms"]})
    assert keys.group_by(["v", "t"]).aggregate([]).num_rows < keys.num_rows  # duplicates on the wire
    per_vehicle_ts = {}
    out_of_order = 0
    for v, t in zip(keys["v"].to_pylist(), keys["t"].to_pylist(), strict=True):
        if v in per_vehicle_ts and t < per_vehicle_ts[v]:
            out_of_order += 1
        per_vehicle_ts[v] = max(t, per_vehicle_ts.get(v, t))
    assert out_of_order > 0
    skew = static_truth(twin, 0)["vehicles"]["clock_skew_ms"].to_numpy()
    assert (skew != 0).any()
    assert (skew == 0).any()


def test_injected_faults_show_in_sensors_and_truth_but_not_in_a_clean_run(
    clean: tuple[Twin, list[DayOutput]],
) -> None:
    rates = FaultRates(
        tyre_slow_leak=2000, weak_cell=0, aux_battery_decay=2000, motor_overheat=0, brake_wear=0
    )
    twin, days = _run(fault_rates=rates)
    faults = static_truth(twin, 0)["faults"]
    assert {"tyre_slow_leak", "aux_battery_decay"} <= set(faults["kind"].to_pylist())
    faulty = days[-1].telemetry
    healthy = clean[1][-1].telemetry
    tyres_faulty = np.stack(pc.drop_null(faulty["tyre_pressure_kpa"]).to_numpy(zero_copy_only=False))
    tyres_clean = np.stack(pc.drop_null(healthy["tyre_pressure_kpa"]).to_numpy(zero_copy_only=False))
    assert tyres_faulty.min() < tyres_clean.min() - 20
    assert faulty["aux_battery_v"].to_numpy().min() < healthy["aux_battery_v"].to_numpy().min() - 0.3
    assert pc.sum(pc.list_value_length(faulty["dtc_codes"])).as_py() > 0
    assert healthy["dtc_codes"].null_count == healthy.num_rows
    weak = _run(fault_rates=FaultRates(0, 3000, 0, 0, 0, 0))
    weak_vehicles = set(static_truth(weak[0], 0)["faults"]["vehicle_id"].to_pylist())
    capacity = {
        r["vehicle_id"]: r["true_capacity_kwh"] for r in static_truth(weak[0], 0)["vehicles"].to_pylist()
    }
    clean_capacity = {
        r["vehicle_id"]: r["true_capacity_kwh"] for r in static_truth(clean[0], 0)["vehicles"].to_pylist()
    }
    assert weak_vehicles and all(capacity[v] < clean_capacity[v] for v in weak_vehicles)
    # Trips and weather are drawn from the same seed, so a fault changes sensors, not the people.
    assert days[-1].truth["trips"]["depart_ts_ms"].equals(clean[1][-1].truth["trips"]["depart_ts_ms"])


def test_each_vehicle_sends_one_sample_per_timestamp(clean: tuple[Twin, list[DayOutput]]) -> None:
    for day in clean[1]:
        keys = day.telemetry.select(["vehicle_id", "ts_ms"])
        assert keys.group_by(["vehicle_id", "ts_ms"]).aggregate([]).num_rows == keys.num_rows
