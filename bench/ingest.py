"""Ingest throughput: Microfleet's HTTP path beside the fastest raw idempotent bulk insert of each store.

Microfleet: accepted records per second through ``POST /api/v1/telemetry`` (batches of 500) into a real
``microfleet serve`` process, from a client process sending pre-encoded batches on keep-alive connections.
Raw bulk insert: the same rows, with the same idempotency, by the driver's fastest bulk path:
SQLite ``executemany`` of ``INSERT OR IGNORE`` in one transaction; PostgreSQL binary ``COPY`` into a staging
table then ``INSERT … SELECT … ON CONFLICT DO NOTHING``; plus plain ``COPY`` (no idempotency) as the ceiling.

Late-record cost: one car with 10k and 1M stored records (bench/history_speed.py's synthetic commuter at
5 s, stored through the store's ingest transaction, derived once); then one record that was held back lands
in the middle of its history and the seconds to derive after it (``HistoryDeriver.records_landed``, what
the server's derivation queue calls) are timed, median of three such records, on SQLite (in-process: wall
time is all the CPU the derivation costs). Beside it, the full re-derivation of that car (``rederive``).
``--quick`` uses 100k records instead of 1M.

    .venv/bin/python bench/ingest.py [--seed 1] [--quick] [--late-only]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.services.derivation import HistoryDeriver
from microfleet.services.ingest import PendingRecord, record_digest
from microfleet.settings import Settings
from microfleet.store.bulk_insert import POSTGRES_COPY_TYPES, TELEMETRY_COLUMNS
from microfleet.store.history import HistoryStore
from microfleet.store.telemetry_store import record_to_row

RESULTS = Path(__file__).parent / "results" / "ingest.json"
BATCH_RECORDS = 500
WORKERS = int(os.environ.get("BENCH_SERVER_WORKERS", "1"))
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_MS = 1_700_000_000_000
Batches = dict[str, list[list[dict[str, Any]]]]  # vehicle id -> its batches of records


def make_batches(n_vehicles: int, records_per_vehicle: int, seed: int) -> Batches:
    """Realistic driving records (position, motion, battery, body) at 5 s, in batches of 500 per vehicle."""
    rng = np.random.default_rng(seed)
    batches: dict[str, list[list[dict[str, Any]]]] = {}
    for v in range(n_vehicles):
        vehicle_id = f"bench-{v:04d}"
        speed = np.clip(rng.normal(25, 12, records_per_vehicle), 0, 90)
        soc = np.linspace(95, 20, records_per_vehicle)
        records = [
            {
                "vehicle_id": vehicle_id,
                "ts_ms": START_MS + i * 5000,
                "lat_deg": round(31.2 + float(rng.normal(0, 0.02)), 6),
                "lon_deg": round(121.47 + float(rng.normal(0, 0.02)), 6),
                "heading_deg": round(float(rng.uniform(0, 360)), 1),
                "speed_kmh": round(float(speed[i]), 1),
                "odometer_km": round(1000 + i * 0.03, 2),
                "gear": "D",
                "ignition_on": True,
                "soc_pct": round(float(soc[i]) * 2) / 2,
                "pack_voltage_v": round(float(rng.normal(102, 1)), 2),
                "pack_current_a": round(float(rng.normal(30, 15)), 2),
                "pack_temp_c": 24.0,
                "ambient_temp_c": 18.5,
                "locked": False,
            }
            for i in range(records_per_vehicle)
        ]
        batches[vehicle_id] = [records[i : i + BATCH_RECORDS] for i in range(0, len(records), BATCH_RECORDS)]
    return batches


class Totals(msgspec.Struct):
    """The part of the server's answer the load generator reads (msgspec skips the rest cheaply)."""

    accepted: int


_TOTALS = msgspec.json.Decoder(Totals)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def microfleet_rate(settings: Settings, batches: Batches, derive_interval_s: float = 0.0) -> float:
    """Accepted records/s through a real `microfleet serve` process.

    ``derive_interval_s`` 0 measures the ingest path alone (history derived by a separate `microfleet derive`,
    measured by bench/history_speed.py); > 0 also derives drives and charges inside the server as it ingests.
    """
    services = build_services(settings)
    tokens = {vehicle_id: services.admin.add_vehicle(vehicle_id) for vehicle_id in batches}
    services.close()
    port = free_port()
    env = {
        **os.environ,
        "MICROFLEET_DATABASE_URL": settings.database_url,
        "MICROFLEET_HISTORY_DERIVE_INTERVAL_S": str(derive_interval_s),
    }
    if settings.database_schema:
        env["MICROFLEET_DATABASE_SCHEMA"] = settings.database_schema
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "microfleet", "serve", "--port", str(port), "--workers", str(WORKERS)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        bodies = [
            (tokens[vehicle_id], json.dumps(batch).encode())
            for vehicle_id, vehicle_batches in batches.items()
            for batch in vehicle_batches
        ]
        total = sum(len(b) for vb in batches.values() for b in vb)

        def send(chunk: list[tuple[str, bytes]]) -> int:
            accepted = 0
            with httpx.Client(base_url=base, timeout=120) as client:
                for token, body in chunk:
                    response = client.post(
                        "/api/v1/telemetry",
                        content=body,
                        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
                    )
                    response.raise_for_status()
                    accepted += _TOTALS.decode(response.content).accepted
            return accepted

        workers = 4  # a few devices at once, as a fleet sends
        chunks = [bodies[i::workers] for i in range(workers)]
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            accepted = sum(pool.map(send, chunks))
        elapsed = time.perf_counter() - started
        if accepted != total:
            raise SystemExit(f"microfleet accepted {accepted} of {total} records")
        return accepted / elapsed
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def rows_for(batches: dict[str, list[list[dict[str, Any]]]]) -> list[tuple[Any, ...]]:
    """The telemetry rows Microfleet would store (digests and all), built outside the timed part."""
    rows = []
    for vehicle_batches in batches.values():
        for batch in vehicle_batches:
            for item in batch:
                record = msgspec.convert(item, TelemetryRecord)
                rows.append(record_to_row(record, record_digest(record), START_MS))
    return rows


def raw_sqlite_rate(settings: Settings, rows: list[tuple[Any, ...]]) -> float:
    """executemany of INSERT OR IGNORE in one transaction, into the migrated telemetry table."""
    import sqlite3

    services = build_services(settings)
    for vehicle_id in {r[0] for r in rows}:
        services.admin.add_vehicle(vehicle_id)
    services.close()
    columns = TELEMETRY_COLUMNS
    values = rows
    path = settings.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    sql = f"INSERT OR IGNORE INTO telemetry ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    started = time.perf_counter()
    for i in range(0, len(values), BATCH_RECORDS):  # one transaction per batch, as Microfleet commits
        with conn:
            conn.executemany(sql, values[i : i + BATCH_RECORDS])
    elapsed = time.perf_counter() - started
    stored = conn.execute("SELECT count(*) FROM telemetry").fetchone()[0]
    conn.close()
    if stored != len(rows):
        raise SystemExit(f"raw sqlite stored {stored} of {len(rows)}")
    return len(rows) / elapsed


def raw_postgres_rates(settings: Settings, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """Binary COPY to staging + INSERT … ON CONFLICT DO NOTHING, and plain COPY (ceiling)."""
    services = build_services(settings)
    for vehicle_id in {r[0] for r in rows}:
        services.admin.add_vehicle(vehicle_id)
    services.close()
    columns = TELEMETRY_COLUMNS
    types = list(POSTGRES_COPY_TYPES)
    values = rows
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    collist = ", ".join(columns)
    with psycopg.connect(url, options=f"-csearch_path={settings.database_schema}") as conn:
        conn.execute("CREATE TEMP TABLE staging (LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(values), BATCH_RECORDS):
            with conn.transaction():
                with conn.cursor().copy(f"COPY staging ({collist}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in values[i : i + BATCH_RECORDS]:
                        copy.write_row(row)
                conn.execute(
                    f"INSERT INTO telemetry ({collist}) SELECT {collist} FROM staging ON CONFLICT DO NOTHING"
                )
        idempotent = len(rows) / (time.perf_counter() - started)
        stored = conn.execute("SELECT count(*) FROM telemetry").fetchone()[0]  # type: ignore[index]
        if stored != len(rows):
            raise SystemExit(f"raw postgres stored {stored} of {len(rows)}")
        conn.execute("TRUNCATE telemetry")
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(values), BATCH_RECORDS):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY telemetry ({collist}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(types)
                for row in values[i : i + BATCH_RECORDS]:
                    copy.write_row(row)
        plain = len(rows) / (time.perf_counter() - started)
    return idempotent, plain


LATE_CAR = "late-car"
LATE_RECORDS = 3  # held back in the middle of the history, landed one at a time; the median is reported
STORE_CHUNK = 20_000


def car_records(n_records: int, seed: int) -> list[TelemetryRecord]:
    """The first ``n_records`` of bench/history_speed.py's synthetic commuter (5 s; sleeps, drives)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from history_speed import car_year

    year = car_year(n_records * 5 // 86_400 + 1, seed)
    names = [k for k in year if k != "ts_ms"]
    columns = [
        [None if isinstance(x, float) and x != x else x for x in year[k][:n_records].tolist()] for k in names
    ]
    return [
        TelemetryRecord(LATE_CAR, int(ts), **dict(zip(names, values, strict=True)))
        for ts, *values in zip(year["ts_ms"][:n_records].tolist(), *columns, strict=True)
    ]


def late_record_cost(settings: Settings, n_records: int, seed: int) -> tuple[float, float, int]:
    """(median seconds to derive after one late record, seconds of a full rederive, records re-derived)."""
    records = car_records(n_records, seed)
    held = {n_records // 2 + k * 1999 for k in range(LATE_RECORDS)}  # 2-3 h apart, mid-history
    services = build_services(settings)
    try:
        services.admin.add_vehicle(LATE_CAR, name="late-record bench car", model_id=None)
        store = services.telemetry

        def land(batch: list[TelemetryRecord]) -> None:
            pending = [PendingRecord(i, r, record_digest(r)) for i, r in enumerate(batch)]
            store.commit_batch(
                pending, [], source="bench", credential_vehicle_id=LATE_CAR, received_at_ms=START_MS
            )

        kept = [r for i, r in enumerate(records) if i not in held]
        for k in range(0, len(kept), STORE_CHUNK):
            land(kept[k : k + STORE_CHUNK])
        deriver = HistoryDeriver(HistoryStore(services.engine, usable_kwh_of_model=lambda _m: 13.8))
        store.claim_stale(10)  # derived below, not by a queue
        t0 = time.perf_counter()
        deriver.rederive(LATE_CAR)
        full_s = time.perf_counter() - t0
        costs, windows = [], []
        for i in sorted(held):
            land([records[i]])
            store.claim_stale(10)
            t0 = time.perf_counter()
            report = deriver.records_landed(LATE_CAR, [records[i].ts_ms])
            costs.append(time.perf_counter() - t0)
            assert report is not None
            windows.append(report.records)
        return statistics.median(costs), full_s, int(statistics.median(windows))
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20k records instead of 200k, one round")
    parser.add_argument("--rounds", type=int, default=None, help="measurement rounds (default 3, quick 1)")
    parser.add_argument("--late-only", action="store_true", help="only the late-record cost (not written)")
    args = parser.parse_args()
    console = Console()
    late_rows = []
    for n_records, label in ((10_000, "10k"), (100_000, "100k") if args.quick else (1_000_000, "1m")):
        with tempfile.TemporaryDirectory() as tmp:
            late_s, full_s, window = late_record_cost(
                Settings(database_url=f"sqlite:///{tmp}/late.db"), n_records, args.seed
            )
        console.print(
            f"late-record cost, {n_records:,} records (sqlite): {late_s:.3f} s"
            f" ({window:,} records re-derived); full re-derivation {full_s:.2f} s"
        )
        late_rows += [
            (f"late-record cost {label} records", "microfleet", late_s, "s"),
            (f"late-record cost {label} records", "full re-derivation", full_s, "s"),
        ]
    if args.late_only:
        return
    rounds = args.rounds or (1 if args.quick else 3)
    n_vehicles, per_vehicle = (10, 2000) if args.quick else (40, 5000)
    batches = make_batches(n_vehicles, per_vehicle, args.seed)
    rows = rows_for(batches)
    console.print(f"{len(rows)} records, {n_vehicles} vehicles, batches of {BATCH_RECORDS}")

    db_name = f"microfleet_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    pg_url = (
        POSTGRES_ADMIN_URL.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
        + f"/{db_name}"
    )
    # The machine is shared and noisy: each round measures Microfleet and the raw path back to back on fresh
    # stores, and the table reports medians over rounds (ratios are medians of per-round ratios).
    runs: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        runs.setdefault(name, []).append(value)

    try:
        for r in range(rounds):
            with tempfile.TemporaryDirectory() as tmp:
                mf = microfleet_rate(Settings(database_url=f"sqlite:///{tmp}/mf.db"), batches)
                raw = raw_sqlite_rate(Settings(database_url=f"sqlite:///{tmp}/raw.db"), rows)
                record("mf_sqlite", mf)
                record("raw_sqlite", raw)
                record("ratio_sqlite", mf / raw)
                if r == 0:
                    derive = microfleet_rate(Settings(database_url=f"sqlite:///{tmp}/mfd.db"), batches, 5.0)
                    record("mf_sqlite_derive", derive)
            mf = microfleet_rate(Settings(database_url=pg_url, database_schema=f"mf{r}"), batches)
            raw, plain = raw_postgres_rates(Settings(database_url=pg_url, database_schema=f"raw{r}"), rows)
            record("mf_pg", mf)
            record("raw_pg", raw)
            record("plain_pg", plain)
            record("ratio_pg", mf / raw)
            if r == 0:
                record(
                    "mf_pg_derive",
                    microfleet_rate(Settings(database_url=pg_url, database_schema="mfd"), batches, 5.0),
                )
            console.print(
                f"round {r + 1}/{rounds}: ratio sqlite {runs['ratio_sqlite'][-1]:.2f}, "
                f"postgres {runs['ratio_pg'][-1]:.2f}"
            )
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    median = {name: statistics.median(values) for name, values in runs.items()}
    mf_sqlite, raw_sqlite, mf_pg, raw_pg = (
        median["mf_sqlite"],
        median["raw_sqlite"],
        median["mf_pg"],
        median["raw_pg"],
    )
    plain_pg, mf_sqlite_derive, mf_pg_derive = (
        median["plain_pg"],
        median["mf_sqlite_derive"],
        median["mf_pg_derive"],
    )

    figures = [
        ("records/s sqlite", "microfleet", mf_sqlite, "records/s"),
        ("records/s sqlite", "raw bulk insert", raw_sqlite, "records/s"),
        ("records/s postgres", "microfleet", mf_pg, "records/s"),
        ("records/s postgres", "raw bulk insert", raw_pg, "records/s"),
        ("records/s postgres plain copy", "raw bulk insert", plain_pg, "records/s"),
        ("ratio to raw sqlite", "microfleet", median["ratio_sqlite"], "ratio"),
        ("ratio to raw postgres", "microfleet", median["ratio_pg"], "ratio"),
        ("ratio to raw sqlite, worst round", "microfleet", min(runs["ratio_sqlite"]), "ratio"),
        ("ratio to raw postgres, worst round", "microfleet", min(runs["ratio_pg"]), "ratio"),
        ("records/s sqlite with in-server history derivation", "microfleet", mf_sqlite_derive, "records/s"),
        ("records/s postgres with in-server history derivation", "microfleet", mf_pg_derive, "records/s"),
        *late_rows,
    ]
    rows_out = [
        {
            "metric": m,
            "system": system,
            "value": round(v, 3) if unit in ("ratio", "s") else round(v),
            "unit": unit,
        }
        for m, system, v, unit in figures
    ]
    table = Table("metric", "microfleet", "raw bulk insert", title="Ingest throughput (batches of 500)")
    table.add_row("records/s sqlite", f"{mf_sqlite:,.0f}", f"{raw_sqlite:,.0f}")
    table.add_row("records/s postgres", f"{mf_pg:,.0f}", f"{raw_pg:,.0f}")
    table.add_row("records/s postgres plain copy", "", f"{plain_pg:,.0f}")
    table.add_row("ratio to raw sqlite (median of rounds)", f"{median['ratio_sqlite']:.2f}", "1")
    table.add_row("ratio to raw postgres (median of rounds)", f"{median['ratio_pg']:.2f}", "1")
    table.add_row(
        "worst round sqlite / postgres", f"{min(runs['ratio_sqlite']):.2f} / {min(runs['ratio_pg']):.2f}", ""
    )
    table.add_row("records/s sqlite, deriving history in-server", f"{mf_sqlite_derive:,.0f}", "")
    table.add_row("records/s postgres, deriving history in-server", f"{mf_pg_derive:,.0f}", "")
    for metric, system, value, _ in late_rows:
        table.add_row(f"{metric} (s, sqlite; {system})", f"{value:.3f}", "")
    console.print(table)
    command = f"python bench/ingest.py --seed {args.seed} --rounds {rounds}" + (
        " --quick" if args.quick else ""
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"benchmark": "ingest", "command": command, "rows": rows_out}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
