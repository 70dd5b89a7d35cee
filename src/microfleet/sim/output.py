"""Telemetry and truth as Arrow tables, and the Parquet files a ``simulate`` run writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from microfleet.domain.telemetry import SIGNAL_NAMES
from microfleet.sim.engine import DayResult, Twin
from microfleet.sim.link import LinkOutcome
from microfleet.sim.samples import TrueSamples

TELEMETRY_FILE = "telemetry.parquet"
TRUTH_DIR = "truth"
_BOOL_SIGNALS = ("ignition_on", "charger_connected", "locked", "doors_open", "hvac_on")


def telemetry_table(twin: Twin, cols: dict[str, Any], link: LinkOutcome) -> pa.Table:
    """Protocol-v1 telemetry (exactly TelemetryRecord's fields) of the sent messages, in send order."""
    rows = link.rows
    ids = pa.array([v.vehicle_id for v in twin.fleet], pa.string())
    arrays: dict[str, pa.Array] = {
        "vehicle_id": ids.take(pa.array(cols["vehicle"][rows])),
        "ts_ms": pa.array(link.ts_ms, pa.int64()),
    }
    dtc: dict[int, list[str]] = cols["dtc"]
    for name in SIGNAL_NAMES:
        if name == "tyre_pressure_kpa":
            tyres = np.asarray(cols[name][rows], dtype=np.float64)
            missing = pa.array(np.isnan(tyres).any(axis=1))  # a reading without all four: none sent
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(tyres.reshape(-1)), 4, mask=missing)
        elif name == "dtc_codes":
            arrays[name] = pa.array(
                [dtc.get(int(r)) for r in rows] if dtc else [None] * rows.size, pa.list_(pa.string())
            )
        elif name in ("altitude_m", "bms_soh_pct"):  # flat city; these small EVs report no SoH
            arrays[name] = pa.nulls(rows.size, pa.float64())
        elif name == "gear":
            arrays[name] = pa.array(cols[name][rows], pa.string())
        elif name in _BOOL_SIGNALS:
            arrays[name] = pa.array(cols[name][rows], pa.bool_())
        else:
            arrays[name] = pa.array(cols[name][rows], pa.float64(), from_pandas=True)
    return pa.table(arrays)


def truth_samples_table(twin: Twin, s: TrueSamples, start_ms: int) -> pa.Table:
    """True state at every sample time (kept apart from telemetry; for scoring only)."""
    ids = pa.array([v.vehicle_id for v in twin.fleet], pa.string())
    kinds = pa.array(["drive", "park", "charge"], pa.string())
    return pa.table({
        "vehicle_id": ids.take(pa.array(s.vehicle)),
        "ts_ms": pa.array(start_ms + np.round(s.t_s * 1000.0).astype(np.int64)),
        "state": kinds.take(pa.array(s.kind)),
        "true_soc_pct": s.soc_pct, "true_capacity_kwh": s.capacity_kwh, "true_power_kw": s.power_kw,
        "true_lat_deg": s.lat_deg, "true_lon_deg": s.lon_deg, "true_speed_kmh": s.speed_kmh,
    })  # fmt: skip


def trips_table(twin: Twin, result: DayResult, start_ms: int) -> pa.Table:
    """True drives of the day: purpose, places, novelty, distance, energy (route learning and range truth)."""
    s, net = result.segments, twin.world.net
    rows: dict[str, list[Any]] = {k: [] for k in (
        "vehicle_id", "depart_ts_ms", "arrive_ts_ms", "purpose", "novel_place", "origin_node",
        "destination_node",
        "origin_lat_deg", "origin_lon_deg", "destination_lat_deg", "destination_lon_deg", "distance_km",
        "energy_kwh", "soc_start_pct", "soc_end_pct", "booking_id")}  # fmt: skip
    for i, leg in enumerate(s.leg):
        if leg is None:
            continue
        trace = result.traces.drives[s.trace[i]]
        rows["vehicle_id"].append(twin.fleet[leg.vehicle].vehicle_id)
        rows["depart_ts_ms"].append(start_ms + round(s.start_s[i] * 1000))
        rows["arrive_ts_ms"].append(start_ms + round(s.end_s[i] * 1000))
        rows["purpose"].append(leg.purpose)
        rows["novel_place"].append(leg.novel)
        rows["origin_node"].append(leg.origin)
        rows["destination_node"].append(leg.destination)
        rows["origin_lat_deg"].append(float(net.lat_deg[leg.origin]))
        rows["origin_lon_deg"].append(float(net.lon_deg[leg.origin]))
        rows["destination_lat_deg"].append(float(net.lat_deg[leg.destination]))
        rows["destination_lon_deg"].append(float(net.lon_deg[leg.destination]))
        rows["distance_km"].append(float(trace.dist_m[-1] / 1000.0))
        rows["energy_kwh"].append(float(result.traces.power_kw[s.trace[i]].sum() / 3600.0))
        rows["soc_start_pct"].append(s.soc0_pct[i])
        rows["soc_end_pct"].append(s.soc1_pct[i])
        rows["booking_id"].append(leg.booking if leg.booking >= 0 else None)
    return pa.table(rows)


class ParquetSink:
    """Appends tables to named Parquet files under one folder, one row group per day."""

    def __init__(self, root: Path) -> None:
        """Create the folder (and its truth/ subfolder)."""
        self.root = root
        (root / TRUTH_DIR).mkdir(parents=True, exist_ok=True)
        self._writers: dict[str, pq.ParquetWriter] = {}

    def write(self, relative: str, table: pa.Table) -> None:
        """Append ``table`` to ``root/relative`` (the first table fixes the schema)."""
        writer = self._writers.get(relative)
        if writer is None:
            writer = pq.ParquetWriter(self.root / relative, table.schema, compression="zstd")
            self._writers[relative] = writer
        writer.write_table(table.cast(writer.schema))

    def close(self) -> None:
        """Finish every file."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
