"""A twin run day by day: telemetry (in send order) and truth tables, to Parquet files or to a sender."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from microfleet.sim.bms import BmsCounters
from microfleet.sim.engine import Twin
from microfleet.sim.link import device_skew_ms, transmit
from microfleet.sim.output import (
    TELEMETRY_FILE,
    ParquetSink,
    telemetry_table,
    trips_table,
    truth_samples_table,
)
from microfleet.sim.samples import day_samples
from microfleet.sim.sensor_errors import SensorEvents, SensorState, apply_realistic
from microfleet.sim.sensors import sense


@dataclass(frozen=True, slots=True)
class DayOutput:
    """One simulated day: telemetry as the server would receive it, with send times, and its truth."""

    day: int
    telemetry: pa.Table
    send_ms: np.ndarray
    truth: dict[str, pa.Table]


def run_days(twin: Twin, start_ms: int | None = None) -> Iterator[DayOutput]:
    """Simulate every day of the twin's scenario; ``start_ms`` moves the timeline (default: scenario date)."""
    origin_ms = start_ms if start_ms is not None else int(twin.start.timestamp() * 1000)
    sensor_rng = np.random.default_rng([twin.scenario.seed, 3])
    link_rng = np.random.default_rng([twin.scenario.seed, 4])
    skew = device_skew_ms(twin.scenario.link, len(twin.fleet), link_rng)
    ids = pa.array([v.vehicle_id for v in twin.fleet], pa.string())
    bms = BmsCounters.fitted_now(len(twin.fleet))
    realistic = twin.sensors.realistic
    state = SensorState.start(twin.sensors, twin.world.net) if realistic else None
    errors_rng = np.random.default_rng(
        [twin.scenario.seed, 7]
    )  # own stream: used by the realistic model only
    signal_rng = np.random.default_rng([twin.scenario.seed, 8])  # tyres, 12 V, cells: realistic model only
    for result in twin.days():
        samples = day_samples(twin, result)
        cols = sense(twin, samples, sensor_rng, bms.advance(twin, result, samples))
        clock_ms, sensor_events = None, SensorEvents()
        if state is not None:
            clock_ms, sensor_events = apply_realistic(
                twin, samples, cols, state, result.day, errors_rng, signal_rng
            )
        true_ms = origin_ms + np.round(samples.t_s * 1000.0).astype(np.int64)
        link = transmit(true_ms, samples.vehicle, skew, twin.scenario.link, link_rng, clock_ms)
        events = pa.table({
            "vehicle_id": ids.take(pa.array(samples.vehicle[link.event_rows])),
            "ts_ms": pa.array(true_ms[link.event_rows]), "event": pa.array(link.event_kind, pa.string()),
            "delay_ms": pa.array(link.event_delay_ms),
        })  # fmt: skip
        truth = {
            "samples": truth_samples_table(twin, samples, origin_ms),
            "trips": trips_table(twin, result, origin_ms),
            "link_events": events,
            "sensor_events": pa.table(
                {
                    "vehicle_id": ids.take(pa.array(sensor_events.vehicle, pa.int64())),
                    "ts_ms": pa.array(
                        origin_ms + np.round(np.array(sensor_events.t_s) * 1000.0).astype(np.int64)
                    ),
                    "kind": pa.array(sensor_events.kind, pa.string()),
                    "value": pa.array(sensor_events.value, pa.float64()),
                }
            ),
        }
        yield DayOutput(result.day, telemetry_table(twin, cols, link), link.send_ms, truth)


def static_truth(twin: Twin, start_ms: int) -> dict[str, pa.Table]:
    """Truth known once the run is over: vehicles and their secrets, injected faults, bookings."""
    fleet = twin.fleet
    skew = device_skew_ms(twin.scenario.link, len(fleet), np.random.default_rng([twin.scenario.seed, 4]))
    p = [v.person for v in fleet]
    vehicles = pa.table({
        "vehicle_id": [v.vehicle_id for v in fleet], "model_id": [v.model.model_id for v in fleet],
        "fleet_id": [v.fleet for v in fleet], "true_soh_pct": [v.true_soh_pct for v in fleet],
        "true_capacity_kwh": [v.capacity_kwh for v in fleet],
        "current_offset_a": [v.current_offset_a for v in fleet],
        "sensor_model": [twin.scenario.sensor_model] * len(fleet),
        "current_gain": twin.sensors.current_gain.tolist(),
        "current_offset_a_per_k": twin.sensors.offset_a_per_k.tolist(),
        "voltage_gain": twin.sensors.voltage_gain.tolist(),
        "bms_capacity_belief": twin.sensors.bms_capacity_belief.tolist(),
        "clock_drift_ppm": twin.sensors.clock_drift_ppm.tolist(),
        "clock_skew_ms": skew.tolist(), "home_charger": [x.home_charger if x else None for x in p],
        "commuter": [x.commuter if x else None for x in p],
        "aggressiveness": [x.aggressiveness if x else None for x in p],
        "known_places": [len(x.known) + 2 if x else None for x in p],
    })  # fmt: skip
    faults = pa.table({
        "vehicle_id": pa.array([fleet[f.vehicle].vehicle_id for f in twin.faults], pa.string()),
        "kind": pa.array([f.kind for f in twin.faults], pa.string()),
        "start_ts_ms": pa.array([start_ms + round(f.start_s * 1000) for f in twin.faults], pa.int64()),
        "end_ts_ms": pa.array(
            [None if np.isinf(f.end_s) else start_ms + round(f.end_s * 1000) for f in twin.faults], pa.int64()
        ),
        "rate_per_day": pa.array([f.rate_per_day for f in twin.faults], pa.float64()),
        "wheel": pa.array([f.wheel if f.wheel >= 0 else None for f in twin.faults], pa.int64()),
    })  # fmt: skip
    b = twin.dispatcher.bookings
    bookings = pa.table({
        "booking_id": pa.array([x.booking for x in b], pa.int64()),
        "request_ts_ms": pa.array([start_ms + round(x.request_s * 1000) for x in b], pa.int64()),
        "zone": pa.array([x.zone for x in b], pa.int64()),
        "vehicle_id": pa.array(
            [fleet[x.vehicle].vehicle_id if x.vehicle >= 0 else None for x in b], pa.string()
        ),
        "served": pa.array([x.vehicle >= 0 for x in b], pa.bool_()),
    })  # fmt: skip
    return {"vehicles": vehicles, "faults": faults, "bookings": bookings}


@dataclass(frozen=True, slots=True)
class SimulateSummary:
    """What a ``simulate`` run wrote."""

    out: Path
    vehicles: int
    days: int
    records: int
    trips: int


def simulate_to_dir(
    twin: Twin, out: Path, on_day: Callable[[int, int], None] | None = None
) -> SimulateSummary:
    """Write telemetry.parquet and truth/*.parquet for the whole scenario."""
    sink = ParquetSink(out)
    start_ms = int(twin.start.timestamp() * 1000)
    records = trips = 0
    try:
        for day in run_days(twin):
            sink.write(TELEMETRY_FILE, day.telemetry)
            for name, table in day.truth.items():
                sink.write(f"truth/{name}.parquet", table)
            records += day.telemetry.num_rows
            trips += day.truth["trips"].num_rows
            if on_day is not None:
                on_day(day.day + 1, twin.scenario.days)
        for name, table in static_truth(twin, start_ms).items():
            sink.write(f"truth/{name}.parquet", table)
    finally:
        sink.close()
    return SimulateSummary(out, len(twin.fleet), twin.scenario.days, records, trips)
