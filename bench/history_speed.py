"""History derivation speed: one car-year at 5 s cadence (~6.3 M records) derived from the store.

A synthetic but busy year (two commutes a day, a charge every other evening, sleep at night; a record
every 5 s around the clock) is written to a fresh SQLite file and a fresh PostgreSQL database (not
timed). Timed: ``HistoryDeriver.rederive`` - read every record of the car from the store, run the
state machine, derive drives, charges, states and parked drain, and write them back in one transaction.

Peer beside it: the thresholds-only baseline (``threshold_trips``) on the same columns already in
memory - what a Traccar-style trip report costs without reading the store.

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
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.domain.threshold_trips import threshold_trips
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns
from microfleet.services.derivation import HistoryDeriver
from microfleet.settings import Settings
from microfleet.store.history import HistoryStore

RESULTS = Path(__file__).parent / "results" / "history_speed.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
CADENCE_S = 5
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


def load_sqlite(engine: Any, data: list[tuple[Any, ...]]) -> None:
    placeholders = ", ".join("?" for _ in COLUMNS)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.executemany(f"INSERT INTO telemetry ({', '.join(COLUMNS)}) VALUES ({placeholders})", data)
        raw.commit()
    finally:
        raw.close()


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


def timed_derive(settings: Settings, loader: Any, data: list[tuple[Any, ...]]) -> tuple[float, Any]:
    services = build_services(settings)
    try:
        services.admin.add_vehicle("car-year", name="A busy car-year", model_id=None)
        t0 = time.perf_counter()
        loader(data)
        load_s = time.perf_counter() - t0
        deriver = HistoryDeriver(HistoryStore(services.engine, usable_kwh_of_model=lambda _m: 13.8))
        t1 = time.perf_counter()
        report = deriver.rederive("car-year")
        derive_s = time.perf_counter() - t1
        Console().print(f"  loaded in {load_s:.0f} s, derived in {derive_s:.1f} s: {report}")
        return derive_s, report
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="30 days instead of 365")
    args = parser.parse_args()
    days = 30 if args.quick else 365
    console = Console()
    year = car_year(days, args.seed)
    data = rows("car-year", year)
    console.print(f"car-year: {len(data):,} records at {CADENCE_S} s over {days} days")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/history_speed.db")
        engine_holder: dict[str, Any] = {}

        def sqlite_loader(d: list[tuple[Any, ...]]) -> None:
            from microfleet.store.engine import make_engine

            engine_holder["e"] = make_engine(settings.database_url)
            load_sqlite(engine_holder["e"], d)
            engine_holder["e"].dispose()

        console.print("SQLite:")
        results["sqlite"], sq_report = timed_derive(settings, sqlite_loader, data)
    name = f"mf_history_speed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
        url = f"{base}/{name}"
        settings = Settings(database_url=url.replace("postgresql://", "postgresql+psycopg://"))
        console.print("PostgreSQL:")
        results["postgres"], pg_report = timed_derive(settings, lambda d: load_postgres(url, d), data)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    arrays: dict[str, Any] = {
        k: v for k, v in year.items() if k not in ("gear", "ignition_on", "charger_connected")
    }
    arrays["gear_code"] = np.where(year["gear"] == "D", GEAR_CODES["D"], GEAR_CODES["P"])
    cols = TelemetryColumns.from_arrays("car-year", arrays)
    t0 = time.perf_counter()
    trips = threshold_trips(cols, 13.8)
    baseline_s = time.perf_counter() - t0
    table = Table(title=f"Deriving one car-year ({len(data):,} records)")
    for c in ("system", "store", "seconds", "drives", "charges"):
        table.add_column(c)
    table.add_row(
        "microfleet", "SQLite", f"{results['sqlite']:.1f}", str(sq_report.drives), str(sq_report.charges)
    )
    table.add_row(
        "microfleet",
        "PostgreSQL",
        f"{results['postgres']:.1f}",
        str(pg_report.drives),
        str(pg_report.charges),
    )
    table.add_row("threshold rules", "(in memory)", f"{baseline_s:.1f}", str(len(trips)), "-")
    console.print(table)
    out = {
        "benchmark": "history_speed",
        "command": ("python bench/history_speed.py " + " ".join(sys.argv[1:])).strip(),
        "rows": [
            {"metric": metric, "system": system, "value": value, "unit": unit}
            for metric, system, value, unit in (
                ("derive car-year sqlite s", "microfleet", round(results["sqlite"], 2), "s"),
                ("derive car-year postgres s", "microfleet", round(results["postgres"], 2), "s"),
                ("threshold trips car-year in memory s", "threshold rules", round(baseline_s, 2), "s"),
                ("records", "microfleet", len(data), "records"),
                ("drives derived", "microfleet", sq_report.drives, "drives"),
                ("charges derived", "microfleet", sq_report.charges, "sessions"),
            )
        ],
    }
    if not args.quick:
        RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
