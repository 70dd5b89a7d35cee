"""History derivation speed: one car-year derived from the store, Microfleet beside the threshold baseline.

Two car-years, each written to a fresh SQLite file and a fresh PostgreSQL database (not timed):

* a synthetic but busy year (two commutes a day, a charge every other evening, sleep at night; a record
  every 5 s around the clock, ~6.3 M records), regular by construction;
* a year of one car from the digital twin (``microfleet.sim``, one car for 365 days on the twin's default
  sensor model, "realistic" since issue 11, with its injected faults, its irregular cadence - up to 10 min
  between records while it sleeps - and the link faults of ``bench/history_accuracy.py``: duplicated and
  delayed messages, the duplicates kept once, as the store keeps them; the link drops nothing, so there is
  no offline gap).

Timed, per store: ``HistoryDeriver.rederive`` - read every record of the car from the store, run the
state machine, derive drives, charges, states and parked drain, and write them back in one transaction;
and the threshold baseline (``threshold_trips`` and ``threshold_charges`` of ``bench/threshold_baseline.py``)
including the same read (``HistoryStore.load_window`` of the car's whole window from the same store) -
what a Traccar-style trip and charge report costs when it is asked for. The baseline writes nothing back
(a report is computed on request). The old row, the baseline's trips on the synthetic columns already in
memory, is kept for one release as "threshold trips car-year in memory s". The baseline's rows carry its
full name (``threshold_baseline.NAME``), as bench/history_accuracy.py's do.

    .venv/bin/python bench/history_speed.py [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.domain.catalogue import load_catalogue
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns
from microfleet.physics import resolve_spec
from microfleet.services.derivation import HistoryDeriver, RecomputeReport
from microfleet.settings import Settings
from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario
from microfleet.store.engine import make_engine
from microfleet.store.history import HistoryStore
from threshold_baseline import NAME as BASELINE  # bench/ is on sys.path as a script
from threshold_baseline import threshold_charges, threshold_trips

RESULTS = Path(__file__).parent / "results" / "history_speed.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
CADENCE_S = 5
SYNTHETIC_USABLE_KWH = 13.8  # the synthetic car's capacity, given to Microfleet and the baseline alike
LINK = LinkFaults(duplicate_p=0.03, delay_p=0.05, delay_max_s=900.0)  # as bench/history_accuracy.py
COLUMNS = (
    "vehicle_id", "ts_ms", "lat_deg", "lon_deg", "speed_kmh", "odometer_km", "gear", "ignition_on", "soc_pct",
    "pack_voltage_v", "pack_current_a", "charger_connected", "charger_power_kw", "charger_ac_voltage_v",
    "ambient_temp_c", "energy_used_kwh", "energy_recovered_kwh", "record_digest", "received_at_ms",
)  # fmt: skip


def car_year(days: int, seed: int) -> dict[str, np.ndarray]:
    """A year of one commuter's car at 5 s: sleep, drive 30 min, park, drive back, charge every other day.

    The car reports the BMS's energy counters, so derivation reads them (the path a counter car takes).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(0, days * 86_400, CADENCE_S, dtype=np.int64)
    day = t // 86_400
    tod = t % 86_400
    jitter = rng.integers(-1200, 1200, (days, 2))[day]
    out1 = 27_000 + jitter[:, 0]  # ~07:30
    back1 = 63_000 + jitter[:, 1]  # ~17:30
    d_out = (tod >= out1) & (tod < out1 + 1800)
    d_back = (tod >= back1) & (tod < back1 + 1800)
    driving = d_out | d_back
    charge_day = day % 2 == 0
    charging = charge_day & (tod >= 68_400) & (tod < 75_600)  # 19:00-21:00
    plugged = charge_day & (tod >= 68_400) & (tod < 79_200)  # unplugged at 22:00
    since_stop = np.minimum(tod - (out1 + 1800), tod - (back1 + 1800))
    awake = driving | plugged & ~charging | ((since_stop >= 0) & (since_stop < 600))
    progress = np.where(d_out, (tod - out1) / 1800, np.where(d_back, 1 - (tod - back1) / 1800, 0.0))
    progress = np.where((tod >= out1 + 1800) & (tod < back1), 1.0, progress)
    speed = np.where(driving, np.clip(30 + rng.normal(0, 10, t.size), 0, 90), 0.0)
    odo = 10_000 + np.cumsum(speed * CADENCE_S / 3600)
    current = np.where(driving, 40 + rng.normal(0, 15, t.size), np.where(awake, 2.5, 0.0))
    current = np.where(charging, -30.0, current) + 0.1
    soc = np.clip(80 - np.cumsum(np.where(driving, 0.002, 0.0)) % 40 + 10, 0, 100)
    volt = np.round(100 + rng.normal(0, 0.5, t.size), 1)
    current = np.round(current, 1)
    # the BMS's cumulative counters: each record's power held to the next (kWh, 0.001 steps)
    step_kwh = volt * current / 1000 * CADENCE_S / 3600
    used = np.r_[0.0, np.cumsum(np.maximum(step_kwh, 0.0))[:-1]]
    recovered = np.r_[0.0, np.cumsum(np.maximum(-step_kwh, 0.0))[:-1]]
    return {
        "ts_ms": START_MS + t * 1000,
        "lat_deg": 31.2 + 0.05 * progress + rng.normal(0, 2e-5, t.size),
        "lon_deg": 121.45 + 0.03 * progress + rng.normal(0, 2e-5, t.size),
        "speed_kmh": np.round(speed, 1),
        "odometer_km": np.round(odo, 1),
        "gear": np.where(driving, "D", "P"),
        "ignition_on": driving,
        "soc_pct": np.round(soc, 1),
        "pack_voltage_v": volt,
        "pack_current_a": current,
        "charger_connected": plugged,
        "charger_power_kw": np.where(plugged, np.where(charging, 3.3, 0.0), np.nan),
        "charger_ac_voltage_v": np.where(charging, 220.0, np.nan),
        "ambient_temp_c": np.full(t.size, 15.0),
        "energy_used_kwh": np.round(used, 3),
        "energy_recovered_kwh": np.round(recovered, 3),
    }


def rows(vehicle_id: str, year: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """Telemetry rows in :data:`COLUMNS` order (NaN as NULL)."""
    cols: list[list[Any]] = []
    for name in COLUMNS[1:-2]:
        v = year[name]
        if v.dtype.kind == "f":
            cols.append([None if x != x else x for x in v.tolist()])
        else:
            cols.append(v.tolist())
    n = len(cols[0])
    return list(zip([vehicle_id] * n, *cols, range(n), [START_MS] * n, strict=True))


def twin_year(days: int, seed: int) -> tuple[str, dict[str, np.ndarray], dict[str, int]]:
    """One twin car's year: its model, its records (first copy of each timestamp, by time) and counts."""
    twin = Twin(Scenario(vehicles=1, days=days, seed=seed, link=LINK, vehicle_id_prefix="twin-year"))
    tables, duplicated = [], 0
    for day in run_days(twin):
        tables.append(day.telemetry)
        duplicated += day.truth["link_events"].column("event").to_pylist().count("duplicated")
    t = pa.concat_tables(tables)
    ts = t.column("ts_ms").to_numpy()
    order = np.argsort(ts, kind="stable")  # arrival order within a timestamp: the first copy is kept
    keep = order[np.r_[True, np.diff(ts[order]) != 0]]
    t = t.take(pa.array(keep))
    year: dict[str, np.ndarray] = {"ts_ms": t.column("ts_ms").to_numpy()}
    for name in COLUMNS[2:-2]:
        col = t.column(name)
        if pa.types.is_floating(col.type):
            year[name] = col.to_numpy(zero_copy_only=False).astype(np.float64)
        else:  # gear, ignition, plug: None where the car did not say
            year[name] = np.array(col.to_pylist(), dtype=object)
    counts = {"messages": int(ts.size), "duplicated": duplicated, "faults": len(twin.faults)}
    return twin.fleet[0].model.model_id, year, counts


def load_sqlite(url: str, data: list[tuple[Any, ...]]) -> None:
    placeholders = ", ".join("?" for _ in COLUMNS)
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.executemany(f"INSERT INTO telemetry ({', '.join(COLUMNS)}) VALUES ({placeholders})", data)
        raw.commit()
    finally:
        raw.close()
        engine.dispose()


def load_postgres(url: str, data: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY telemetry ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for k in range(0, len(data), 200_000):
                buf = io.StringIO()
                for r in data[k : k + 200_000]:
                    buf.write("\t".join("\\N" if x is None else str(x) for x in r))
                    buf.write("\n")
                copy.write(buf.getvalue())
        conn.commit()


@dataclass(frozen=True)
class Timing:
    """One car-year on one store: Microfleet's derivation and the baseline's report, in seconds."""

    derive_s: float
    report: RecomputeReport
    baseline_read_s: float
    baseline_s: float  # read + trips + charges
    baseline_trips: int
    baseline_charges: int


def timed_derive(
    settings: Settings,
    loader: Callable[[list[tuple[Any, ...]]], None],
    data: list[tuple[Any, ...]],
    vehicle_id: str,
    model_id: str | None,
    usable_kwh: Callable[[str], float | None],
    baseline_kwh: float | None,
) -> Timing:
    """Load the records (not timed), then time Microfleet's rederive and the baseline's read and report."""
    services = build_services(settings)
    try:
        services.admin.add_vehicle(vehicle_id, name="A car-year", model_id=model_id)
        t0 = time.perf_counter()
        loader(data)
        load_s = time.perf_counter() - t0
        store = HistoryStore(services.engine, usable_kwh_of_model=usable_kwh)
        deriver = HistoryDeriver(store)
        t1 = time.perf_counter()
        report = deriver.rederive(vehicle_id)
        derive_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        cols = store.load_window(vehicle_id, None)
        read_s = time.perf_counter() - t2
        trips = threshold_trips(cols, baseline_kwh)
        charges = threshold_charges(cols, baseline_kwh, trips=trips)
        baseline_s = time.perf_counter() - t2
        Console().print(
            f"  loaded in {load_s:.0f} s, derived in {derive_s:.1f} s: {report}; "
            f"baseline {baseline_s:.2f} s (read {read_s:.2f} s): {len(trips)} trips, {len(charges)} charges"
        )
        return Timing(derive_s, report, read_s, baseline_s, len(trips), len(charges))
    finally:
        services.close()


def both_stores(
    label: str,
    data: list[tuple[Any, ...]],
    vehicle_id: str,
    model_id: str | None,
    usable_kwh: Callable[[str], float | None],
    baseline_kwh: float | None,
) -> dict[str, Timing]:
    """The same records on a fresh SQLite file and a fresh PostgreSQL database, each timed."""
    console = Console()
    out: dict[str, Timing] = {}
    args = (vehicle_id, model_id, usable_kwh, baseline_kwh)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/history_speed.db"
        console.print(f"{label}, SQLite:")
        out["sqlite"] = timed_derive(Settings(database_url=url), lambda d: load_sqlite(url, d), data, *args)
    name = f"mf_history_speed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
        pg_url = f"{base}/{name}"
        settings = Settings(database_url=pg_url.replace("postgresql://", "postgresql+psycopg://"))
        console.print(f"{label}, PostgreSQL:")
        out["postgres"] = timed_derive(settings, lambda d: load_postgres(pg_url, d), data, *args)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="30 days instead of 365")
    args = parser.parse_args()
    days = 30 if args.quick else 365
    console = Console()
    year = car_year(days, args.seed)
    data = rows("car-year", year)
    console.print(f"synthetic car-year: {len(data):,} records at {CADENCE_S} s over {days} days")
    syn = both_stores(
        "synthetic", data, "car-year", None, lambda _m: SYNTHETIC_USABLE_KWH, SYNTHETIC_USABLE_KWH
    )
    arrays: dict[str, Any] = {
        k: v for k, v in year.items() if k not in ("gear", "ignition_on", "charger_connected")
    }
    arrays["gear_code"] = np.where(year["gear"] == "D", GEAR_CODES["D"], GEAR_CODES["P"])
    cols = TelemetryColumns.from_arrays("car-year", arrays)
    t0 = time.perf_counter()
    trips = threshold_trips(cols, SYNTHETIC_USABLE_KWH)
    in_memory_s = time.perf_counter() - t0
    del data, cols, arrays

    t0 = time.perf_counter()
    model_id, tyear, counts = twin_year(days, args.seed)
    twin_data = rows("twin-year-0", tyear)
    console.print(
        f"twin car-year ({model_id}): {len(twin_data):,} records stored of {counts['messages']:,} messages "
        f"({counts['duplicated']:,} duplicated), {counts['faults']} faults, "
        f"simulated in {time.perf_counter() - t0:.0f} s"
    )
    catalogue = load_catalogue()
    spec = catalogue.get(model_id)
    usable = spec.battery_usable_kwh.value if spec.battery_usable_kwh else None
    resolved = resolve_spec(spec, catalogue.all()).usable_kwh.value
    twin = both_stores("twin", twin_data, "twin-year-0", model_id, lambda _m: usable, resolved)

    table = Table(title="Deriving one car-year from the store")
    for c in ("car-year", "system", "store", "seconds", "drives", "charges", "excluded"):
        table.add_column(c)
    for label, res in (("synthetic", syn), ("twin", twin)):
        for store, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
            r = res[store]
            table.add_row(
                label, "microfleet", name, f"{r.derive_s:.2f}", str(r.report.drives),
                str(r.report.charges), str(r.report.excluded),
            )  # fmt: skip
            table.add_row(
                label, BASELINE, f"{name} (read {r.baseline_read_s:.2f} s)", f"{r.baseline_s:.2f}",
                str(r.baseline_trips), str(r.baseline_charges), "-",
            )  # fmt: skip
    table.add_row("synthetic", BASELINE, "(in memory, trips only)", f"{in_memory_s:.2f}", str(len(trips)))
    Console(width=max(console.width, 120)).print(table)
    rows_out: list[tuple[str, str, float | int, str]] = [
        ("derive car-year sqlite s", "microfleet", round(syn["sqlite"].derive_s, 2), "s"),
        ("derive car-year postgres s", "microfleet", round(syn["postgres"].derive_s, 2), "s"),
        ("threshold trips car-year in memory s", BASELINE, round(in_memory_s, 2), "s"),
        ("records", "microfleet", len(year["ts_ms"]), "records"),
        ("drives derived", "microfleet", syn["sqlite"].report.drives, "drives"),
        ("charges derived", "microfleet", syn["sqlite"].report.charges, "sessions"),
        ("excluded records", "microfleet", syn["sqlite"].report.excluded, "records"),
    ]
    for prefix, res in (("", syn), ("twin ", twin)):
        for store in ("sqlite", "postgres"):
            r = res[store]
            if prefix:
                rows_out.append((f"derive twin car-year {store} s", "microfleet", round(r.derive_s, 2), "s"))
            rows_out.append((f"derive {prefix}car-year {store} s", BASELINE, round(r.baseline_s, 2), "s"))
            rows_out.append((f"read {prefix}car-year {store} s", BASELINE, round(r.baseline_read_s, 2), "s"))
    tw = twin["sqlite"]
    rows_out += [
        ("twin records", "twin", len(tyear["ts_ms"]), "records"),
        ("twin messages", "twin", counts["messages"], "messages"),
        ("twin faults injected", "twin", counts["faults"], "faults"),
        ("twin drives derived", "microfleet", tw.report.drives, "drives"),
        ("twin charges derived", "microfleet", tw.report.charges, "sessions"),
        ("twin excluded records", "microfleet", tw.report.excluded, "records"),
        ("twin drives derived", BASELINE, tw.baseline_trips, "drives"),
        ("twin charges derived", BASELINE, tw.baseline_charges, "sessions"),
    ]
    out = {
        "benchmark": "history_speed",
        "command": ("python bench/history_speed.py " + " ".join(sys.argv[1:])).strip(),
        "rows": [
            {"metric": metric, "system": system, "value": value, "unit": unit}
            for metric, system, value, unit in rows_out
        ],
    }
    if not args.quick:
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
