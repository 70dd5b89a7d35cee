"""Live feed fan-out: delay from a record's commit to its arrival at 100 WebSocket clients (issue 13 item 5).

1,000 cars send one record a second for the measured minute: a load process (its own interpreter, as the
MQTT bridge or an ingest worker is) commits them straight into the SQLite store through
``TelemetryStore.commit_batch``, the cars due in each 100 ms tick in one transaction, as an ingest worker
batches; each committed record announces one event. A ``microfleet serve`` process (the default settings:
one poller reading the log every 0.15 s; derivation off, as it is not what is measured) serves
``GET /api/v1/live`` to 100 clients in this process, which note each event's arrival; the delay of an
event at a client is its arrival minus the moment the load process's commit returned (one wall clock, one
machine). Two client mixes: ``fleet`` (10 fleets of 100 cars, each client an operator of one: 10 clients
get each event) and ``all`` (every client an admin who sees every car: 100 clients get each event).
The clients do not negotiate permessage-deflate (browsers do; ``LIVE_FEED_BENCH_DEFLATE=1`` makes them),
and decode only each event's ``ts_ms`` (msgspec), so the one client process measures the feed rather than
its own parsing. The server's CPU seconds over the run are reported beside the delays.

    .venv/bin/python bench/live_feed.py [--seed 1] [--quick]

writes ``bench/results/live_feed.json``; ``run(seed, quick)`` returns the rows for other benches to merge
(``bench/command_latency.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proc_cpu import cpu_s  # bench/ is on sys.path when this file runs as a script

RESULTS = Path(__file__).parent / "results" / "live_feed.json"
TARGET_P99_MS = 1_000.0  # issue 13: live-feed p99 < 1 s
TICK_S = 0.1
DEFLATE = os.environ.get("LIVE_FEED_BENCH_DEFLATE") == "1"  # clients negotiate permessage-deflate


@dataclass(frozen=True)
class Shape:
    cars: int
    clients: int
    fleets: int
    warmup_s: float
    measured_s: float


FULL = Shape(cars=1_000, clients=100, fleets=10, warmup_s=10.0, measured_s=60.0)
QUICK = Shape(cars=100, clients=10, fleets=2, warmup_s=3.0, measured_s=8.0)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _register(database_url: str, shape: Shape, scope: str) -> list[str]:
    """Fleets, cars and the clients' users in a fresh store; the clients' API tokens."""
    from microfleet.bootstrap import build_services
    from microfleet.domain.access import Role
    from microfleet.settings import Settings

    services = build_services(Settings(database_url=database_url, history_derive_interval_s=0))
    admin = services.admin
    for f in range(shape.fleets):
        admin.add_fleet(f"fleet-{f}", f"Fleet {f}")
    for c in range(shape.cars):
        admin.add_vehicle(f"car-{c:04d}", fleet_id=f"fleet-{c % shape.fleets}")
    tokens = []
    for u in range(shape.clients):
        if scope == "all":
            admin.add_user(f"user-{u}", Role.ADMIN)
        else:
            admin.add_user(f"user-{u}", Role.OPERATOR, f"fleet-{u % shape.fleets}")
        tokens.append(admin.issue_token(f"user-{u}", "bench"))
    services.close()
    return tokens


def _load(database_url: str, cars: int, start_at: float, stop_at: float, seed: int, out: str) -> None:
    """The load process: every car one record a second, the cars due in a tick committed together."""
    from microfleet.bootstrap import build_services
    from microfleet.domain.telemetry import TelemetryRecord
    from microfleet.services.ingest import PendingRecord, record_digest
    from microfleet.settings import Settings

    services = build_services(Settings(database_url=database_url, history_derive_interval_s=0), migrate=False)
    rng = random.Random(seed)
    ticks_per_s = round(1 / TICK_S)
    lat = [31.2 + rng.uniform(-0.05, 0.05) for _ in range(cars)]
    soc = [rng.uniform(30, 90) for _ in range(cars)]
    commits: dict[int, float] = {}  # ts_ms of a tick's records -> when their commit returned (epoch s)
    announced: dict[int, int] = {}  # ts_ms -> how many cars' events carry it
    late_ticks = 0
    tick = 0  # the next tick whose cars have not sent yet
    while True:
        wait = start_at + tick * TICK_S - time.time()
        if wait > 0:
            time.sleep(wait)
        # Every tick now due: when the store is slower than the cars, the cars of the ticks missed meanwhile
        # send in one larger batch (each record at its own tick's time), as a backlog reaches a worker.
        now_tick = min(int((time.time() - start_at) / TICK_S), round((stop_at - start_at) / TICK_S) - 1)
        if now_tick < tick or time.time() >= stop_at:
            break
        late_ticks += now_tick - tick
        pending = []
        stamps = []
        for t in range(tick, now_tick + 1):
            ts_ms = round((start_at + t * TICK_S) * 1000)
            stamps.append(ts_ms)
            for c in range(t % ticks_per_s, cars, ticks_per_s):
                lat[c] += 0.0001
                soc[c] -= 0.01
                record = TelemetryRecord(
                    vehicle_id=f"car-{c:04d}",
                    ts_ms=ts_ms,
                    lat_deg=round(lat[c], 6),
                    lon_deg=121.4,
                    speed_kmh=36.0,
                    soc_pct=round(soc[c], 2),
                )
                pending.append(PendingRecord(len(pending), record, record_digest(record)))
        services.telemetry.commit_batch(
            pending, [], source="bench", credential_vehicle_id=None, received_at_ms=round(time.time() * 1000)
        )
        committed = time.time()
        for ts_ms in stamps:
            commits[ts_ms] = committed
        newest = {r.record.vehicle_id: r.record.ts_ms for r in pending}  # one event per car and batch
        for ts_ms in newest.values():
            announced[ts_ms] = announced.get(ts_ms, 0) + 1
        tick = now_tick + 1
    services.close()
    Path(out).write_text(
        json.dumps({"commits": commits, "announced": announced, "late_ticks": late_ticks, "ticks": tick})
    )


async def _client(
    url: str, token: str, arrivals: list[array[float]], ready: asyncio.Event, stop: float
) -> None:
    import msgspec
    from websockets.asyncio.client import connect

    class Stamp(msgspec.Struct):
        ts_ms: int

    # Only each event's time is decoded, and no permessage-deflate unless asked: see the module's docstring.
    decode = msgspec.json.Decoder(list[Stamp]).decode
    times = array("d")
    stamps = array("q")
    headers = {"Authorization": f"Bearer {token}"}
    compression = "deflate" if DEFLATE else None
    async with connect(url, additional_headers=headers, max_size=None, compression=compression) as ws:
        json.loads(await ws.recv())  # ready
        ready.set()
        while time.time() < stop:
            try:
                message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, stop - time.time()))
            except TimeoutError:
                break
            now = time.time()
            for event in decode(message):
                times.append(now)
                stamps.append(event.ts_ms)
    arrivals.append(times)
    arrivals.append(array("d", stamps))


async def _clients(url: str, tokens: list[str], stop: float, started: list[float]) -> list[array[float]]:
    arrivals: list[array[float]] = []
    readies = [asyncio.Event() for _ in tokens]
    tasks = [
        asyncio.create_task(_client(url, t, arrivals, r, stop)) for t, r in zip(tokens, readies, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=60)
    started.append(time.time())
    await asyncio.gather(*tasks)
    return arrivals


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def measure(seed: int, shape: Shape, scope: str) -> dict[str, Any]:
    """One run: register, start the server, connect the clients, run the load; the delays in ms."""
    folder = Path(tempfile.mkdtemp(prefix="live-feed-bench-"))
    database_url = f"sqlite:///{folder / 'microfleet.db'}"
    tokens = _register(database_url, shape, scope)
    port = _free_port()
    env = {**os.environ, "MICROFLEET_DATABASE_URL": database_url, "MICROFLEET_HISTORY_DERIVE_INTERVAL_S": "0"}
    with (folder / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "microfleet", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            _wait_for(port, server)
            # The load starts once every client is subscribed; it runs warm-up + measured seconds.
            start_at = time.time() + 15.0
            stop_at = start_at + shape.warmup_s + shape.measured_s
            out = folder / "load.json"
            load = multiprocessing.get_context("spawn").Process(
                target=_load, args=(database_url, shape.cars, start_at, stop_at, seed, str(out))
            )
            load.start()
            started: list[float] = []
            arrivals = asyncio.run(
                _clients(f"ws://127.0.0.1:{port}/api/v1/live", tokens, stop_at + 5.0, started)
            )
            load.join(timeout=60)
            server_cpu_s = cpu_s(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    assert started, "the clients did not subscribe"
    assert started[0] < start_at, "the clients were not all subscribed before the load began"
    loaded = json.loads(out.read_text())
    commits = {int(k): v for k, v in loaded["commits"].items()}
    measured_from_ms = round((start_at + shape.warmup_s) * 1000)
    delays: list[float] = []
    for times, stamps in zip(arrivals[::2], arrivals[1::2], strict=True):
        for arrived, ts_ms in zip(times, stamps, strict=True):
            committed = commits.get(int(ts_ms))
            if committed is not None and ts_ms >= measured_from_ms:
                delays.append((arrived - committed) * 1000)
    delays.sort()
    receivers = shape.clients if scope == "all" else shape.clients // shape.fleets
    measured_ticks = sum(1 for ts_ms in commits if ts_ms >= measured_from_ms)
    cars_per_tick = round(shape.cars * TICK_S)
    events = sum(n for ts_ms, n in loaded["announced"].items() if int(ts_ms) >= measured_from_ms)
    expected = events * receivers
    return {
        "p50_ms": _percentile(delays, 0.50),
        "p99_ms": _percentile(delays, 0.99),
        "max_ms": delays[-1] if delays else math.nan,
        "deliveries": len(delays),
        "deliveries_expected": int(expected),
        "records_per_s": round(measured_ticks * cars_per_tick / shape.measured_s),
        # How long after its car sent (its tick) a record's commit returned: the store keeping up or not.
        "commit_lag_p50_ms": round(
            _percentile(
                sorted((c - ts / 1000) * 1000 for ts, c in commits.items() if ts >= measured_from_ms), 0.5
            )
        ),
        "late_ticks": loaded["late_ticks"],
        "server_cpu_s": round(server_cpu_s, 1),
        "ticks": loaded["ticks"],
    }


def _wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)


def run(seed: int, quick: bool) -> list[dict[str, Any]]:
    """The bench's rows: p50 and p99 commit-to-arrival delay, per client mix (``fleet`` first)."""
    shape = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    for scope in ("fleet", "all"):
        m = measure(seed, shape, scope)
        who = (
            f"{shape.clients} clients, each an operator of one of {shape.fleets} fleets "
            f"({shape.cars // shape.fleets} cars)"
            if scope == "fleet"
            else f"{shape.clients} clients, each an admin seeing all {shape.cars} cars"
        )
        suffix = "" if scope == "fleet" else ", every client sees every car"
        common = {
            "system": "microfleet",
            "unit": "ms",
            "cars": shape.cars,
            "clients": shape.clients,
            "clients_see": who,
            "load": f"{shape.cars} cars at 1 Hz, direct store ingest (SQLite) from a load process, "
            f"a commit per {TICK_S * 1000:.0f} ms tick (fewer, larger ones when the store falls behind)",
            "measured_s": shape.measured_s,
            "deliveries": m["deliveries"],
            "deliveries_expected": m["deliveries_expected"],
            "load_records_per_s": m["records_per_s"],
            "load_commit_lag_p50_ms": m["commit_lag_p50_ms"],
            "load_ticks_late": m["late_ticks"],
            "server_cpu_s": m["server_cpu_s"],
            "clients_deflate": DEFLATE,
            "load_ticks": m["ticks"],
            "seed": seed,
            "quick": quick,
        }
        rows.append(
            {
                "metric": f"live feed p50 ms {shape.clients} clients{suffix}",
                "value": round(m["p50_ms"], 1),
                **common,
            }
        )
        rows.append(
            {
                "metric": f"live feed p99 ms {shape.clients} clients{suffix}",
                "value": round(m["p99_ms"], 1),
                "target": f"< {TARGET_P99_MS:.0f}",
                **common,
            }
        )
        rows.append(
            {
                "metric": f"live feed max ms {shape.clients} clients{suffix}",
                "value": round(m["max_ms"], 1),
                **common,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="100 cars, 10 clients, 8 s: a smoke run")
    args = parser.parse_args()
    rows = run(args.seed, args.quick)
    for row in rows:
        print(
            f"{row['metric']:<60} {row['value']:>9} ms   "
            f"deliveries {row['deliveries']}/{row['deliveries_expected']}, "
            f"load {row['load_records_per_s']} records/s, commit lag p50 {row['load_commit_lag_p50_ms']} ms, "
            f"server CPU {row['server_cpu_s']} s"
        )
    if not args.quick:
        command = f"python bench/live_feed.py --seed {args.seed}"
        RESULTS.write_text(
            json.dumps({"benchmark": "live_feed", "command": command, "rows": rows}, indent=2) + "\n"
        )
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
