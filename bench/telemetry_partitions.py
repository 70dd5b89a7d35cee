"""What PostgreSQL's monthly telemetry partitions cost: ingest CPU beside a plain table; migration time.

Ingest: ``IngestService.ingest`` in this process (decode, validate, the store's COPY and
``INSERT … ON CONFLICT`` transaction), 10 cars × 5,000 records in batches of 500, each run on a fresh
schema of one database: the telemetry table plain (the schema at head with migration 0011's downgrade
applied to ``telemetry`` alone), partitioned with the records in the current month's partition, and
partitioned with the records in DEFAULT (dated 2023). The three alternate within each round; the table
shows medians over rounds. Measured: CPU seconds of this process and of the one PostgreSQL backend that
did the work (``/proc/PID/stat``; PostgreSQL must run on this machine), and wall seconds. On a shared
machine wall time follows the other processes; CPU seconds much less.

Migration: a store at revision 0010 holding N records (100 cars, one month) is upgraded to head and
downgraded again, timed.

    .venv/bin/python bench/telemetry_partitions.py [--rounds 5] [--migration-records 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from alembic import command
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from microfleet.store.engine import make_engine
from microfleet.store.migrate import alembic_config, upgrade

RESULTS = Path(__file__).parent / "results" / "telemetry_partitions.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CARS, PER_CAR, BATCH = 10, 5_000, 500
KINDS = ("plain", "partitioned month", "partitioned default")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_UNPARTITION = (  # migration 0011's downgrade, on telemetry alone
    "CREATE TABLE telemetry_plain (LIKE telemetry INCLUDING DEFAULTS)",
    "INSERT INTO telemetry_plain SELECT * FROM telemetry",
    "DROP TABLE telemetry",
    "ALTER TABLE telemetry_plain RENAME TO telemetry",
    "ALTER TABLE telemetry ADD CONSTRAINT pk_telemetry PRIMARY KEY (vehicle_id, ts_ms)",
    "ALTER TABLE telemetry ADD CONSTRAINT fk_telemetry_vehicle_id_vehicles "
    "FOREIGN KEY (vehicle_id) REFERENCES vehicles (vehicle_id)",
)


def bodies(start_ms: int) -> list[tuple[str, bytes]]:
    """Each car's records at 5 s from ``start_ms``, as protocol-v1 JSON bodies of ``BATCH`` records."""
    out = []
    for v in range(CARS):
        records = [
            {
                "vehicle_id": f"car-{v}",
                "ts_ms": start_ms + i * 5_000,
                "lat_deg": round(31.2 + i * 1e-5, 6),
                "lon_deg": 121.47,
                "speed_kmh": float(i % 60),
                "gear": "D",
                "soc_pct": 50.0 + i % 7,
                "pack_voltage_v": 100.0,
                "pack_current_a": 20.0,
            }
            for i in range(PER_CAR)
        ]
        out += [(f"car-{v}", msgspec.json.encode(records[i : i + BATCH])) for i in range(0, PER_CAR, BATCH)]
    return out


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime + stime


def ingest_run(database_url: str, kind: str, now_ms: int) -> dict[str, float]:
    schema = f"b_{uuid.uuid4().hex[:10]}"
    settings = Settings(database_url=database_url, database_schema=schema)
    services = build_services(settings)
    if kind == "plain":
        with services.engine.begin() as conn:
            for statement in _UNPARTITION:
                conn.execute(text(statement))
    for v in range(CARS):
        services.admin.add_vehicle(f"car-{v}")
    start_ms = now_ms - PER_CAR * 5_000 if kind != "partitioned default" else 1_700_000_000_000
    work = bodies(start_ms)
    with services.engine.connect() as conn:  # the pool's one connection does all the work (one thread)
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    backend0, client0, wall0 = cpu_s(pid), time.process_time(), time.perf_counter()
    accepted = 0
    for vehicle_id, body in work:
        report = services.ingest.ingest(
            body, "application/json", credential_vehicle_id=vehicle_id, source="bench", now_ms=now_ms
        )
        accepted += report.accepted
    backend1, client1, wall1 = cpu_s(pid), time.process_time(), time.perf_counter()
    with services.engine.connect() as conn:
        if int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) != pid:
            raise SystemExit("the ingest ran on more than one connection: its backend CPU is not all counted")
    services.close()
    if accepted != CARS * PER_CAR:
        raise SystemExit(f"{kind}: {accepted} of {CARS * PER_CAR} records accepted")
    return {"backend_cpu_s": backend1 - backend0, "client_cpu_s": client1 - client0, "wall_s": wall1 - wall0}


def migration_times(database_url: str, n_records: int) -> tuple[float, float]:
    engine = make_engine(database_url, "migration")
    try:
        upgrade(engine, "migration", "0010_energy_source")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vehicles (vehicle_id, name, device_token_sha256, created_at_ms)"
                    " SELECT 'car-' || i, 'car', lpad(i::text, 64, '0'), 0 FROM generate_series(1, 100) i"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO telemetry (vehicle_id, ts_ms, soc_pct, speed_kmh, lat_deg, lon_deg,"
                    " pack_voltage_v, pack_current_a, gear, record_digest, received_at_ms)"
                    " SELECT 'car-' || (i % 100 + 1), 1762000000000 + (i / 100) * 5000, 50, 20, 31.2, 121.4,"
                    " 100, 20, 'D', i, 1 FROM generate_series(0, :n - 1) i"
                ),
                {"n": n_records},
            )
            conn.execute(text("ANALYZE telemetry"))
        started = time.perf_counter()
        upgrade(engine, "migration")
        up_s = time.perf_counter() - started
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM telemetry")).scalar_one()
        if stored != n_records:
            raise SystemExit(f"migration kept {stored} of {n_records} records")
        started = time.perf_counter()
        command.downgrade(alembic_config(engine), "0010_energy_source")
        return up_s, time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--migration-records", type=int, default=1_000_000)
    args = parser.parse_args()
    console = Console()
    load = os.getloadavg()[0]
    db_name = f"microfleet_bench_parts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    database_url = (
        POSTGRES_ADMIN_URL.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
        + f"/{db_name}"
    )
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    try:
        now_ms = time.time_ns() // 1_000_000
        for r in range(args.rounds):
            for kind in KINDS:
                runs[kind].append(ingest_run(database_url, kind, now_ms))
            console.print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{kind} {runs[kind][-1]['backend_cpu_s']:.2f} s" for kind in KINDS)
                + " backend CPU"
            )
        up_s, down_s = migration_times(database_url, args.migration_records)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    median = {kind: {m: statistics.median(x[m] for x in runs[kind]) for m in runs[kind][0]} for kind in KINDS}
    records = CARS * PER_CAR
    rows: list[tuple[str, str, float, str]] = []
    table = Table(
        title=f"Telemetry partitions on PostgreSQL ({records:,} records per run, median of {args.rounds})"
    )
    table.add_column("metric")
    for kind in KINDS:
        table.add_column(kind, justify="right")
    for metric, key in (
        ("backend CPU s per 50k records", "backend_cpu_s"),
        ("client CPU s per 50k records", "client_cpu_s"),
        ("wall s per 50k records", "wall_s"),
    ):
        table.add_row(metric, *(f"{median[kind][key]:.2f}" for kind in KINDS))
        rows += [(metric, kind, median[kind][key], "s") for kind in KINDS]
    # The client runs the same code in every column, so its CPU seconds show how much the machine's state
    # alone moves a run; the backend's per client second is the steadier comparison on a busy machine.
    ratio = {
        kind: statistics.median(x["backend_cpu_s"] / x["client_cpu_s"] for x in runs[kind]) for kind in KINDS
    }
    table.add_row("backend CPU s per client CPU s", *(f"{ratio[kind]:.3f}" for kind in KINDS))
    rows += [("backend CPU s per client CPU s", kind, ratio[kind], "ratio") for kind in KINDS]
    table.add_row("1-minute load average at start", f"{load:.2f}", "", "")
    console.print(table)
    console.print(
        f"migration 0011 with {args.migration_records:,} records: "
        f"up {up_s:.1f} s, down to 0010 {down_s:.1f} s"
    )
    rows += [
        (f"migration 0011 up {args.migration_records:,} records", "microfleet", up_s, "s"),
        (f"migration 0011 down {args.migration_records:,} records", "microfleet", down_s, "s"),
        ("load average at start", "machine", load, "1-minute"),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out: list[dict[str, Any]] = [
        {"metric": m, "system": s, "value": round(v, 3), "unit": u} for m, s, v, u in rows
    ]
    command_line = f"python bench/telemetry_partitions.py --rounds {args.rounds}"
    if args.migration_records != 1_000_000:
        command_line += f" --migration-records {args.migration_records}"
    RESULTS.write_text(
        json.dumps({"benchmark": "telemetry_partitions", "command": command_line, "rows": out}, indent=2)
        + "\n"
    )


if __name__ == "__main__":
    main()
