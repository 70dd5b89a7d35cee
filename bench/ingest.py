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

Server memory (issue 10): a real ``microfleet serve`` process on SQLite, default settings, while 8 clients
(threads, one vehicle each) send bodies of exactly ``MICROFLEET_INGEST_MAX_BODY_BYTES``: valid protocol-v1
records up to ``MICROFLEET_INGEST_MAX_BATCH_RECORDS``, junk the quarantine keeps (that many records refused
as ``unknown_field``, or one non-JSON text it cuts), and bodies of 4 × the limit that must be answered 413
unread (declared length: before a byte is sent; chunked: the bytes sent bound what was read). Resident
memory is read from /proc/<pid>/status (VmRSS, and VmHWM for the peak): Linux only. 10 requests per client
(``--quick`` 5). ``--rss-only`` runs just this part (not written).

    .venv/bin/python bench/ingest.py [--seed 1] [--quick] [--late-only | --rss-only]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
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

from microfleet.bootstrap import Services, build_services
from microfleet.domain.telemetry import MAX_DTC_CODES, TelemetryRecord
from microfleet.services.derivation import HistoryDeriver
from microfleet.services.ingest import PendingRecord, record_digest
from microfleet.settings import Settings
from microfleet.store.bulk_insert import POSTGRES_COPY_TYPES, TELEMETRY_COLUMNS, sqlite_insert_or_ignore
from microfleet.store.history import HistoryStore
from microfleet.store.telemetry_store import record_to_row
from proc_cpu import tree_cpu_s  # bench/ is on sys.path when this file runs as a script

RESULTS = Path(__file__).parent / "results" / "ingest.json"
BATCH_RECORDS = 500
WORKERS = int(os.environ.get("BENCH_SERVER_WORKERS", "1"))
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
START_MS = 1_700_000_000_000
Batches = dict[str, list[list[dict[str, Any]]]]  # vehicle id -> its batches of records


DEG_M = 111_320.0  # metres per degree of latitude (and of longitude x cos(latitude))


def make_batches(n_vehicles: int, records_per_vehicle: int, seed: int) -> Batches:
    """Driving days as cars send them, at 5 s, in batches of 500 per vehicle.

    Each car drives 20-40 minutes, then parks 10-60 minutes (gear P, ignition off, the pack nearly idle), and
    so on: positions follow from speed and a slowly turning heading, the odometer from the distance, SoC
    from the energy used. (Until 2026-12-04 every record had an independent random position, about 2 km
    from the last one 5 s before: GPS jumps the derivation had to refuse, not driving.) Every record
    carries the same fields, so the raw inserts beside it write the same bytes whatever the car does.
    """
    rng = np.random.default_rng(seed)
    batches: dict[str, list[list[dict[str, Any]]]] = {}
    n = records_per_vehicle
    for v in range(n_vehicles):
        vehicle_id = f"bench-{v:04d}"
        driving = np.zeros(n, dtype=bool)
        i = 0
        while i < n:
            drive = int(rng.integers(240, 481))  # 20-40 min of 5 s records
            driving[i : i + drive] = True
            i += drive + int(rng.integers(120, 721))  # then parked 10-60 min
        speed = np.zeros(n)  # a smooth city profile while driving (AR(1) around 25 km/h), 0 parked
        level = 0.0
        for k in np.flatnonzero(driving):
            level = min(max(0.9 * level + 2.5 + rng.normal(0, 3.0), 0.0), 90.0)
            speed[k] = level
        heading = np.cumsum(rng.normal(0, 8.0, n) * driving) + rng.uniform(0, 360)
        step_m = speed / 3.6 * 5.0
        north = np.cumsum(step_m * np.cos(np.radians(heading))) / DEG_M
        east = np.cumsum(step_m * np.sin(np.radians(heading))) / (DEG_M * np.cos(np.radians(31.2)))
        lat = 31.2 + float(rng.normal(0, 0.02)) + north
        lon = 121.47 + float(rng.normal(0, 0.02)) + east
        odometer = 1000 + np.cumsum(step_m) / 1000
        current = np.where(driving, np.clip(rng.normal(30, 15, n), -40, 120), rng.normal(0.5, 0.1, n))
        soc = 95 - np.cumsum(current * 102 * 5 / 3600) / 13_800 * 100  # Wh out of a 13.8 kWh pack
        records = [
            {
                "vehicle_id": vehicle_id,
                "ts_ms": START_MS + k * 5000,
                "lat_deg": round(float(lat[k]), 6),
                "lon_deg": round(float(lon[k]), 6),
                "heading_deg": round(float(heading[k]) % 360, 1),
                "speed_kmh": round(float(speed[k]), 1),
                "odometer_km": round(float(odometer[k]), 2),
                "gear": "D" if driving[k] else "P",
                "ignition_on": bool(driving[k]),
                "soc_pct": round(max(float(soc[k]), 1.0) * 2) / 2,
                "pack_voltage_v": round(float(rng.normal(102, 1)), 2),
                "pack_current_a": round(float(current[k]), 2),
                "pack_temp_c": 24.0,
                "ambient_temp_c": 18.5,
                "locked": not bool(driving[k]),
            }
            for k in range(n)
        ]
        batches[vehicle_id] = [records[j : j + BATCH_RECORDS] for j in range(0, len(records), BATCH_RECORDS)]
    return batches


class Totals(msgspec.Struct):
    """The part of the server's answer the load generator reads (msgspec skips the rest cheaply)."""

    accepted: int


_TOTALS = msgspec.json.Decoder(Totals)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def derivation_catch_up_s(services: Services, pid: int, timeout_s: float = 120.0) -> float:
    """CPU seconds the server spends after the last answer until every car's history is derived.

    Derived means: no car is on the stale list and the server has used less than 2 % of a core for a
    second (the round that took the last cars has finished). The derivation thread runs on one core, so
    these CPU seconds are the wall seconds a sustained feed would lose to it.
    """
    start = tree_cpu_s(pid)
    deadline = time.monotonic() + timeout_s
    last = start
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = tree_cpu_s(pid)
        if now - last > 0.002:  # busy in the last 0.1 s
            quiet_since = time.monotonic()
        last = now
        if time.monotonic() - quiet_since >= 1.0 and services.derivations.pending() == 0:
            return last - start
    raise SystemExit(f"derivation did not catch up within {timeout_s:.0f} s")


def microfleet_rate(settings: Settings, batches: Batches, derive_interval_s: float = 0.0) -> float:
    """Accepted records/s through a real `microfleet serve` process.

    ``derive_interval_s`` 0 measures the ingest path alone (history derived by a separate `microfleet derive`,
    measured by bench/history_speed.py); > 0 also derives drives and charges inside the server as it
    ingests, and the CPU seconds the server spends after the last answer until every car is derived are
    added to the elapsed time (a short run must not leave its derivation unpaid after the clock stops).
    """
    services = build_services(settings)
    tokens = {vehicle_id: services.admin.add_vehicle(vehicle_id) for vehicle_id in batches}
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
        if derive_interval_s > 0:
            elapsed += derivation_catch_up_s(services, server.pid)
            if not services.history.drives(next(iter(batches)), 0, 2**62, 1):
                raise SystemExit("the server derived no drive: the derivation run measured nothing")
        return accepted / elapsed
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        services.close()


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
    """The faster of two idempotent bulk paths, one transaction per batch, into the migrated telemetry table.

    ``executemany`` of ``INSERT OR IGNORE``, and multi-row ``INSERT OR IGNORE … VALUES (…), (…)`` statements
    (what Microfleet's store uses, store/bulk_insert.py): each into a fresh store of its own, the best kept.
    """
    import sqlite3

    columns = TELEMETRY_COLUMNS
    one_row = f"({', '.join('?' * len(columns))})"
    head = f"INSERT OR IGNORE INTO telemetry ({', '.join(columns)}) VALUES "

    def executemany(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
        conn.executemany(head + one_row, batch)

    def multi_row(conn: sqlite3.Connection, batch: list[tuple[Any, ...]]) -> None:
        sqlite_insert_or_ignore(conn, batch)  # the store's own statements, without the store around them

    rates = []
    for insert in (executemany, multi_row):
        url = f"{settings.database_url}.{insert.__name__}"
        services = build_services(Settings(database_url=url))
        for vehicle_id in {r[0] for r in rows}:
            services.admin.add_vehicle(vehicle_id)
        services.close()
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        started = time.perf_counter()
        for i in range(0, len(rows), BATCH_RECORDS):  # one transaction per batch, as Microfleet commits
            with conn:
                insert(conn, rows[i : i + BATCH_RECORDS])
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM telemetry").fetchone()[0]
        conn.close()
        if stored != len(rows):
            raise SystemExit(f"raw sqlite ({insert.__name__}) stored {stored} of {len(rows)}")
        rates.append(len(rows) / elapsed)
    return max(rates)


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


# --- Server memory under maximum-size bodies (issue 10) ---------------------------------------------------
RSS_CLIENTS = 8
RSS_VEHICLE = "rss-{:02d}"
# One client's requests, in order: valid records, junk that is quarantined, a body over the limit.
RSS_PLAN = ("valid", "junk", "valid", "junk", "over", "valid", "junk", "valid", "junk", "over")
RSS_PLAN_QUICK = ("valid", "junk", "over", "valid", "junk")
RSS_OVER_FACTOR = 4  # an oversize body is this many times the limit
RSS_SAMPLE_S = 0.02
MIB = 1024 * 1024


def proc_status_kib(pid: int, field: str) -> int:
    """One ``kB`` field of /proc/<pid>/status (VmRSS: resident now; VmHWM: the peak resident). Linux only."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def valid_body(vehicle_id: str, first_ts_ms: int, settings: Settings) -> tuple[bytes, int]:
    """(``ingest_max_batch_records`` valid protocol-v1 records, every signal set and DTC codes to fill the
    body, padded with JSON whitespace to exactly ``ingest_max_body_bytes``; the record count)."""
    n = settings.ingest_max_batch_records
    budget = (settings.ingest_max_body_bytes - 2) // n - 1  # bytes per record, its comma included

    t0_s = (first_ts_ms - START_MS) // 1000  # the counters and the odometer run on across bodies

    def record(i: int, dtc: list[str]) -> dict[str, Any]:
        return {
            "vehicle_id": vehicle_id,
            "ts_ms": first_ts_ms + i * 1000,
            "lat_deg": round(30.9 + i * 1e-4, 6),  # due north at 40 km/h
            "lon_deg": 121.47,
            "heading_deg": 0.0,
            "gps_hdop": 0.9,
            "altitude_m": 4.5,
            "speed_kmh": 40.0,
            "odometer_km": round(1000 + (t0_s + i) * 0.0111, 3),
            "gear": "D",
            "ignition_on": True,
            "soc_pct": round(90.0 - i * 0.004, 3),  # each body a drive from 90 %; bodies hours apart
            "pack_voltage_v": 102.25,
            "pack_current_a": 31.5,
            "pack_temp_c": 24.0,
            "cell_voltage_min_v": 3.281,
            "cell_voltage_max_v": 3.297,
            "bms_soh_pct": 97.5,
            "charger_connected": False,
            "charger_power_kw": 0.0,
            "charger_ac_voltage_v": 0.0,
            "locked": False,
            "doors_open": False,
            "cabin_temp_c": 21.5,
            "ambient_temp_c": 18.5,
            "hvac_on": True,
            "hvac_power_kw": 0.8,
            "tyre_pressure_kpa": [240.0, 240.0, 235.0, 235.0],
            "aux_battery_v": 12.6,
            "dtc_codes": dtc,
            "energy_used_kwh": round(5000 + (t0_s + i) * 0.001, 3),
            "energy_recovered_kwh": round(900 + (t0_s + i) * 0.0002, 4),
        }

    widest = len(msgspec.json.encode(record(n - 1, [])))
    n_codes = min(MAX_DTC_CODES, max(0, (budget - widest - 2) // 11))  # each "P0A80123", is 11 bytes
    codes = [f"P0A{k:05d}" for k in range(n_codes)]
    items = b",".join(msgspec.json.encode(record(i, codes)) for i in range(n))
    pad = settings.ingest_max_body_bytes - len(items) - 2
    if pad < 0:
        raise RuntimeError(f"{n} records do not fit in {settings.ingest_max_body_bytes} bytes")
    return b"[" + b" " * pad + items + b"]", n


def junk_body(vehicle_id: str, kind: int, first_ts_ms: int, settings: Settings) -> tuple[bytes, int]:
    """A body of exactly ``ingest_max_body_bytes`` that the server quarantines, and the rows it refuses.

    kind 0: ``ingest_max_batch_records`` records each refused as ``unknown_field`` (a padded field protocol
    v1 does not define), every one a new quarantine row; kind 1: text that is not JSON at all, refused as one
    ``malformed_json`` item whose stored text the quarantine cuts.
    """
    size = settings.ingest_max_body_bytes
    if kind % 2:
        unit = f"not json from {vehicle_id} at {first_ts_ms}; ".encode()
        return (unit * (size // len(unit) + 1))[:size], 1
    n = settings.ingest_max_batch_records
    budget = (size - 2) // n - 1
    shell = len(
        msgspec.json.encode({"vehicle_id": vehicle_id, "ts_ms": first_ts_ms + n * 1000, "x_note": ""})
    )
    note = "x" * max(1, budget - shell)
    items = b",".join(
        msgspec.json.encode({"vehicle_id": vehicle_id, "ts_ms": first_ts_ms + i * 1000, "x_note": note})
        for i in range(n)
    )
    return b"[" + b" " * (size - len(items) - 2) + items + b"]", n


def oversize_request(port: int, token: str, limit: int, chunked: bool) -> tuple[int, int]:
    """(status, body bytes sent before the answer) for a body of ``RSS_OVER_FACTOR`` × ``limit`` bytes.

    Declared (``chunked`` False): the headers state the length and not one body byte is sent until the
    answer comes, so a 413 proves the server refused it unread. Chunked: no length is declared; chunks are
    sent until the server answers, so the bytes sent bound what it read (plus the kernel's socket buffers).
    """
    total = RSS_OVER_FACTOR * limit
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST /api/v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head)
        if chunked:
            chunk = b"[" + b" " * (64 * 1024 - 1)
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            sock.settimeout(5)
            try:
                while sent < total:
                    if select.select([sock], [], [], 0)[0]:
                        break  # the answer (or the close) came before the whole body
                    sock.sendall(frame)
                    sent += len(chunk)
                else:
                    sock.sendall(b"0\r\n\r\n")
            except (TimeoutError, BrokenPipeError, ConnectionResetError):
                pass  # the server stopped reading: its answer is waiting
            sock.settimeout(120)
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else b"0"
    return int(status), sent


class RssFigures(msgspec.Struct):
    idle_mib: float
    peak_mib: float  # VmHWM after the load: the process's peak resident memory
    sampled_peak_mib: float  # the largest VmRSS sampled during the load
    after_mib: float
    seconds: float
    requests: int
    answered_5xx: int
    unexpected: int  # answers other than the expected 200 / 413, transport errors included
    accepted: int
    rejected: int
    over_413: int
    over_total: int
    over_declared_unread: int  # oversize bodies with a declared length answered 413 before a byte was sent
    over_chunked: int  # oversize bodies sent chunked (no declared length)
    over_max_sent_mib: float  # the most body bytes a chunked oversize request got out before its answer
    over_max_sent_s: float  # how long that request took


def server_rss(settings: Settings, plan: tuple[str, ...], console: Console) -> RssFigures:
    """Peak resident memory of a real `microfleet serve` process while 8 clients send maximum-size bodies."""
    if not Path("/proc/self/status").exists():
        raise SystemExit("the server-memory part reads /proc/<pid>/status: Linux only")
    services = build_services(settings)
    vehicles = [RSS_VEHICLE.format(c) for c in range(RSS_CLIENTS)]
    tokens = {vehicle_id: services.admin.add_vehicle(vehicle_id) for vehicle_id in vehicles}
    services.close()
    port = free_port()
    log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "microfleet",
            "serve",
            "--database-url",
            settings.database_url,
            "--port",
            str(port),
        ],
        env={**os.environ, "MICROFLEET_DATABASE_URL": settings.database_url},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    stop = threading.Event()
    samples: list[int] = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if server.poll() is not None:
                raise SystemExit(f"the server exited with status {server.returncode} before it was ready")
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not become ready in 60 s")
        time.sleep(1.0)  # let startup settle
        idle_kib = proc_status_kib(server.pid, "VmRSS")
        limit = settings.ingest_max_body_bytes

        def sample() -> None:
            while not stop.is_set():
                try:
                    samples.append(proc_status_kib(server.pid, "VmRSS"))
                except (OSError, RuntimeError):
                    return
                stop.wait(RSS_SAMPLE_S)

        def client(c: int) -> collections.Counter[str]:
            vehicle_id, token = vehicles[c], tokens[vehicles[c]]
            counts: collections.Counter[str] = collections.Counter()
            n_junk = n_over = 0
            with httpx.Client(base_url=base, timeout=600) as http:
                for b, kind in enumerate(plan):
                    counts["requests"] += 1
                    if kind == "over":
                        try:
                            chunked = bool((c + n_over) % 2)  # half the clients start with each kind
                            began = time.perf_counter()
                            status, sent = oversize_request(port, token, limit, chunked)
                            took = time.perf_counter() - began
                        except OSError as error:
                            console.print(f"[red]{vehicle_id} oversize request: {error!r}")
                            counts["unexpected"] += 1
                            continue
                        n_over += 1
                        counts["over_total"] += 1
                        counts["over_413"] += status == 413
                        if chunked:
                            chunked_sent.append((sent, took))
                        else:
                            counts["over_declared_unread"] += status == 413 and sent == 0
                        counts["5xx"] += status >= 500
                        counts["unexpected"] += status != 413
                        continue
                    # every body's records are new: 1 s apart, each body's span after the one before
                    first_ts = START_MS + b * 2 * settings.ingest_max_batch_records * 1000
                    if kind == "valid":
                        body, n = valid_body(vehicle_id, first_ts, settings)
                    else:
                        body, n = junk_body(vehicle_id, n_junk, first_ts, settings)
                        n_junk += 1
                    try:
                        response = http.post(
                            "/api/v1/telemetry",
                            content=body,
                            headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
                        )
                    except httpx.TransportError as error:
                        console.print(f"[red]{vehicle_id} {kind}: {error!r}")
                        counts["unexpected"] += 1
                        continue
                    counts["5xx"] += response.status_code >= 500
                    if response.status_code != 200:
                        console.print(
                            f"[red]{vehicle_id} {kind}: {response.status_code} {response.text[:200]}"
                        )
                        counts["unexpected"] += 1
                        continue
                    answer = response.json()
                    counts["accepted"] += answer["accepted"]
                    counts["rejected"] += answer["rejected"]
                    wanted = "accepted" if kind == "valid" else "rejected"
                    counts["unexpected"] += answer[wanted] != n
            return counts

        chunked_sent: list[tuple[int, float]] = []  # (bytes sent before the answer, s) per chunked request
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(RSS_CLIENTS) as pool:
            totals: collections.Counter[str] = collections.Counter()
            for counts in pool.map(client, range(RSS_CLIENTS)):
                totals.update(counts)
        seconds = time.perf_counter() - started
        peak_kib = proc_status_kib(server.pid, "VmHWM")
        stop.set()
        sampler.join()
        time.sleep(2.0)  # the answers are out; what the server keeps afterwards
        after_kib = proc_status_kib(server.pid, "VmRSS")
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode} during the load")
        return RssFigures(
            idle_mib=idle_kib / 1024,
            peak_mib=peak_kib / 1024,
            sampled_peak_mib=max(samples, default=0) / 1024,
            after_mib=after_kib / 1024,
            seconds=seconds,
            requests=totals["requests"],
            answered_5xx=totals["5xx"],
            unexpected=totals["unexpected"],
            accepted=totals["accepted"],
            rejected=totals["rejected"],
            over_413=totals["over_413"],
            over_total=totals["over_total"],
            over_declared_unread=totals["over_declared_unread"],
            over_chunked=len(chunked_sent),
            over_max_sent_mib=max(chunked_sent, default=(0, 0.0))[0] / MIB,
            over_max_sent_s=max(chunked_sent, default=(0, 0.0))[1],
        )
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
        log.close()


def rss_part(args: argparse.Namespace, console: Console) -> list[tuple[str, str, float, str]]:
    """Run the server-memory part, print its table (settings included) and return its rows."""
    plan = RSS_PLAN_QUICK if args.quick else RSS_PLAN
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/rss.db")
        figures = server_rss(settings, plan, console)
        import sqlite3

        with contextlib.closing(sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))) as db:
            most_rows, longest_text = db.execute(
                "SELECT max(n), max(longest) FROM (SELECT count(*) AS n, max(length(CAST(raw_text AS BLOB)))"
                " AS longest FROM quarantine GROUP BY credential_vehicle_id)"
            ).fetchone()
    label = f"{RSS_CLIENTS} clients max-size bodies"
    table = Table("metric", "microfleet", title=f"Server memory (RSS from /proc, Linux), {label}")
    table.add_row("server rss MiB idle (VmRSS before the load)", f"{figures.idle_mib:.1f}")
    table.add_row("peak server rss MiB (VmHWM after the load)", f"{figures.peak_mib:.1f}")
    table.add_row("largest VmRSS sampled during the load, MiB", f"{figures.sampled_peak_mib:.1f}")
    table.add_row("growth, peak - idle, MiB", f"{figures.peak_mib - figures.idle_mib:.1f}")
    table.add_row("server rss MiB after the load (+2 s)", f"{figures.after_mib:.1f}")
    table.add_row("requests answered 5xx", f"{figures.answered_5xx}")
    table.add_row("requests not answered as expected", f"{figures.unexpected}")
    table.add_row("oversize bodies answered 413", f"{figures.over_413} of {figures.over_total}")
    table.add_row(
        "  of them with a declared length, answered before a body byte was sent",
        f"{figures.over_declared_unread} of {figures.over_total - figures.over_chunked}",
    )
    table.add_row(
        f"  chunked ({RSS_OVER_FACTOR} × limit, no length): most MiB sent before the answer",
        f"{figures.over_max_sent_mib:.1f} in {figures.over_max_sent_s:.1f} s ({figures.over_chunked} sent)",
    )
    table.add_row("records accepted / refused (quarantined)", f"{figures.accepted:,} / {figures.rejected:,}")
    table.add_row("quarantine rows kept, most for one vehicle", f"{most_rows or 0:,}")
    table.add_row("longest quarantined text kept, bytes", f"{longest_text or 0:,}")
    table.add_row(
        f"requests ({len(plan)} per client: {', '.join(plan)})",
        f"{figures.requests} in {figures.seconds:.1f} s",
    )
    table.add_row("MICROFLEET_INGEST_MAX_BODY_BYTES", f"{settings.ingest_max_body_bytes:,}")
    table.add_row("MICROFLEET_INGEST_MAX_BATCH_RECORDS", f"{settings.ingest_max_batch_records:,}")
    table.add_row("MICROFLEET_INGEST_MAX_RECORD_BYTES", f"{settings.ingest_max_record_bytes:,}")
    table.add_row(
        "MICROFLEET_QUARANTINE_MAX_ROWS_PER_VEHICLE", f"{settings.quarantine_max_rows_per_vehicle:,}"
    )
    table.add_row("MICROFLEET_HISTORY_DERIVE_INTERVAL_S", f"{settings.history_derive_interval_s:g}")
    table.add_row("store", "sqlite, one server process")
    console.print(table)
    if figures.answered_5xx or figures.unexpected or figures.over_413 != figures.over_total:
        console.print("[red]the server answered some requests other than expected (see above)")
    return [
        (f"peak server rss mb, {label}", "microfleet", figures.peak_mib, "MiB"),
        ("server rss mb idle", "microfleet", figures.idle_mib, "MiB"),
        (f"server rss growth mb, {label}", "microfleet", figures.peak_mib - figures.idle_mib, "MiB"),
        (f"server rss mb after load, {label}", "microfleet", figures.after_mib, "MiB"),
        ("requests answered 5xx", "microfleet", figures.answered_5xx, "requests"),
        (
            f"oversize bodies answered 413, {label}",
            "microfleet",
            figures.over_413 / max(1, figures.over_total),
            "ratio",
        ),
    ]


QUIET_LOAD = 0.7  # a 1-minute load average at or above this means another process holds a core
QUIET_WAIT_S = 300  # how long the bench waits for the machine to quieten before refusing


def quiet_machine_guard(console: Console, *, allow_busy: bool) -> float:
    """Wait until no other process holds a core, else refuse (or, with --allow-busy, go on and say so).

    Rounds measured while something else runs are not comparable with quiet ones: the ratios hold only
    as long as both sides of a round share the same conditions. Returns the load average at the start.
    """
    deadline = time.monotonic() + QUIET_WAIT_S
    load = os.getloadavg()[0]
    while load >= QUIET_LOAD and time.monotonic() < deadline and not allow_busy:
        console.print(f"load average {load:.2f}: waiting for the machine to quieten (below {QUIET_LOAD})")
        time.sleep(15)
        load = os.getloadavg()[0]
    if load >= QUIET_LOAD:
        if not allow_busy:
            raise SystemExit(
                f"the machine is busy (load average {load:.2f} ≥ {QUIET_LOAD}): another process holds a "
                "core, so rounds would not be comparable; stop it, or pass --allow-busy to measure anyway"
            )
        console.print(f"[yellow]measuring on a busy machine (load average {load:.2f})[/yellow]")
    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20k records instead of 200k, one round")
    parser.add_argument("--rounds", type=int, default=None, help="measurement rounds (default 3, quick 1)")
    parser.add_argument("--late-only", action="store_true", help="only the late-record cost (not written)")
    parser.add_argument(
        "--rss-only", action="store_true", help="only the server memory under max-size bodies (not written)"
    )
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help="measure even when another process holds a core (the figures are then marked, not compared)",
    )
    args = parser.parse_args()
    console = Console()
    load_at_start = quiet_machine_guard(console, allow_busy=args.allow_busy)
    if args.rss_only:
        rss_part(args, console)
        return
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
    rss_rows = rss_part(args, console)
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
                derive = microfleet_rate(Settings(database_url=f"sqlite:///{tmp}/mfd.db"), batches, 5.0)
                record("mf_sqlite_derive", derive)
                record("ratio_sqlite_derive", derive / raw)
            mf = microfleet_rate(Settings(database_url=pg_url, database_schema=f"mf{r}"), batches)
            raw, plain = raw_postgres_rates(Settings(database_url=pg_url, database_schema=f"raw{r}"), rows)
            record("mf_pg", mf)
            record("raw_pg", raw)
            record("plain_pg", plain)
            record("ratio_pg", mf / raw)
            derive = microfleet_rate(Settings(database_url=pg_url, database_schema=f"mfd{r}"), batches, 5.0)
            record("mf_pg_derive", derive)
            record("ratio_pg_derive", derive / raw)
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

    # Every figure of every round: the median, and the worst and best rounds beside it (issue 19).
    per_round = [
        ("records/s sqlite", "microfleet", "mf_sqlite", "records/s"),
        ("records/s sqlite", "raw bulk insert", "raw_sqlite", "records/s"),
        ("records/s postgres", "microfleet", "mf_pg", "records/s"),
        ("records/s postgres", "raw bulk insert", "raw_pg", "records/s"),
        ("records/s postgres plain copy", "raw bulk insert", "plain_pg", "records/s"),
        ("ratio to raw sqlite", "microfleet", "ratio_sqlite", "ratio"),
        ("ratio to raw postgres", "microfleet", "ratio_pg", "ratio"),
        ("records/s sqlite with in-server history derivation", "microfleet", "mf_sqlite_derive", "records/s"),
        ("records/s postgres with in-server history derivation", "microfleet", "mf_pg_derive", "records/s"),
        ("ratio to raw sqlite with derivation", "microfleet", "ratio_sqlite_derive", "ratio"),
        ("ratio to raw postgres with derivation", "microfleet", "ratio_pg_derive", "ratio"),
    ]
    figures = []
    for metric, system, key, unit in per_round:
        figures += [
            (metric, system, median[key], unit),
            (f"{metric}, worst round", system, min(runs[key]), unit),
            (f"{metric}, best round", system, max(runs[key]), unit),
        ]
    figures += [
        *late_rows,
        *rss_rows,
        ("load average at start (1 min)", "machine", load_at_start, "load"),
        ("rounds", "machine", float(rounds), "count"),
    ]
    rows_out = [
        {
            "metric": m,
            "system": system,
            "value": round(v, 3)
            if unit in ("ratio", "s")
            else round(v, 2)
            if unit in ("MiB", "load")
            else round(v),
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
    for key, label in (("ratio_sqlite_derive", "sqlite"), ("ratio_pg_derive", "postgres")):
        table.add_row(
            f"ratio to raw {label} with derivation (median; worst / best)",
            f"{median[key]:.2f} ({min(runs[key]):.2f} / {max(runs[key]):.2f})",
            "1",
        )
    table.add_row("load average at start (1 min)", f"{load_at_start:.2f}", "")
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
