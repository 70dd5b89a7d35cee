"""Scale-out ingest: simulated cars over MQTT → JetStream → 1 and 2 ingest workers → PostgreSQL.

Every component is a real process of its own, started by this bench: a Mosquitto with Microfleet's password
and ACL files (each car logs in as itself), a ``nats-server -js`` with its own store folder, the bridge
(``microfleet mqtt bridge`` with ``MICROFLEET_NATS_URL`` set: it publishes each car's message to JetStream
and acknowledges it after JetStream's ack), and ``microfleet ingest-worker`` processes storing into a
PostgreSQL database of the bench's own (dropped at the end); history derivation runs in the workers at
``--derive-interval-s`` (default 5 s, the server's default). Cars are aiomqtt clients in this process, each
with its own login, publishing NDJSON batches of ``--batch-records`` records (a logger sends what it
buffered, as real loggers do) at QoS 1.

For each worker count (1, then 2, on fresh cars):

* **records/s**: every car publishes its batches back to back (each awaiting its PUBACK); records stored
  divided by the time from the first publish to the last commit, plus the CPU-seconds the busiest worker
  then spends until every car is derived (a backlog stored in less than the derivation interval would
  otherwise leave its derivation unpaid). Every phase's CPU figures include that derivation too.
* **latency**: cars publish at a fixed offered rate (``--rate``, default 20,000 records/s, or half the
  measured records/s if that is lower); a batch's latency runs from the car's publish call to the worker's
  commit (workers announce each commit on ``<prefix>.committed.<partition>`` with its wall-clock time; same
  machine, same clock); p50 and p99 over every batch of the phase. The records/s phase is a backlog, which
  a worker stores more cheaply than a steady stream, so half of it may still be more than the system
  sustains: each latency phase also reports the rate it committed at and how far the last commit lagged the
  last publish (a lag that grows with the phase is a queue, and its p99 a queueing figure). A second
  latency phase offers ``--low-share`` (default 0.2) of the measured records/s, below capacity.
* **CPU-seconds per 1,000 records** of each component over the records/s phase (a backlog: a worker
  stores ~10 batches of a car per transaction) and over the latency phase (one batch per transaction),
  from ``/proc/<pid>/stat`` (utime + stime): the bridge, nats-server, the workers (summed), PostgreSQL
  (summed over the backends connected to the bench's database: the workers' and the bridge's connections),
  Mosquitto, and the cars.

Beside it, **Mosquitto's own loopback publish rate** in the same run: the same cars publish the same batches
at QoS 1 to a subscriber of Microfleet's login (nothing else), records/s as the subscriber receives them.

Writes ``bench/results/ingest_scaleout.json``. The machine's core count and load average go in the JSON too:
other processes share the cores.

    .venv/bin/python bench/ingest_scaleout.py [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec
import nats
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.ingest.jetstream import batch_id
from microfleet.ingest.mosquitto_config import MosquittoFiles, render_listener_conf
from microfleet.services.mqtt_access import MqttAccessService
from microfleet.settings import Settings
from proc_cpu import CLOCK_TICKS, cpu_s  # bench/ is on sys.path when this file runs as a script

RESULTS = Path(__file__).parent / "results" / "ingest_scaleout.json"
POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
MICROFLEET = str(Path(sys.executable).with_name("microfleet"))
INGEST_USER = "mf-bench-ingest"
PARTITIONS = 16
LEASE_S = 10.0
LATENCY_SHARE = 0.5  # the latency phase offers this share of the measured records/s (or --rate if lower)
LOW_PHASE_BATCHES = 5  # batches per car of the latency phase below capacity


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU-seconds of the whole machine since boot, every core (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


def make_cars(
    tag: str, n_cars: int, batches_per_car: int, batch_records: int, seed: int
) -> dict[str, list[bytes]]:
    """Each car's NDJSON batches: realistic driving records at 1 s (position, motion, battery)."""
    rng = np.random.default_rng(seed)
    start_ms = (time.time_ns() // 1_000_000) - 40 * 86_400_000
    cars: dict[str, list[bytes]] = {}
    n = batches_per_car * batch_records
    for c in range(n_cars):
        vehicle_id = f"{tag}-{c:04d}"
        speed = np.clip(rng.normal(30, 12, n), 0, 90)
        soc = np.linspace(95, 20, n)
        lat = 31.2 + np.cumsum(rng.normal(0, 1e-4, n))
        lon = 121.4 + np.cumsum(rng.normal(0, 1e-4, n))
        batches = []
        for b in range(batches_per_car):
            lines = []
            for k in range(b * batch_records, (b + 1) * batch_records):
                lines.append(
                    msgspec.json.encode(
                        {
                            "vehicle_id": vehicle_id,
                            "ts_ms": start_ms + k * 1000,
                            "lat_deg": round(float(lat[k]), 6),
                            "lon_deg": round(float(lon[k]), 6),
                            "speed_kmh": round(float(speed[k]), 1),
                            "soc_pct": round(float(soc[k]), 1),
                            "pack_voltage_v": 350.0,
                            "pack_current_a": round(float(speed[k]) * 0.8, 1),
                            "odometer_km": 10_000 + k * 0.008,
                        }
                    )
                )
            batches.append(b"\n".join(lines))
        cars[vehicle_id] = batches
    return cars


@dataclass
class World:
    """The processes and logins of one run."""

    folder: Path
    database_url: str
    mqtt_port: int
    nats_url: str
    prefix: str
    stream: str
    ingest_password: str
    passwords: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MICROFLEET_DATABASE_URL": self.database_url,
            "MICROFLEET_MQTT_HOST": "127.0.0.1",
            "MICROFLEET_MQTT_PORT": str(self.mqtt_port),
            "MICROFLEET_MQTT_USERNAME": INGEST_USER,
            "MICROFLEET_MQTT_PASSWORD": self.ingest_password,
            "MICROFLEET_MQTT_TOPIC_PREFIX": self.prefix,
            "MICROFLEET_MQTT_CLIENT_ID": f"{self.prefix}-bridge",
            "MICROFLEET_NATS_URL": self.nats_url,
            "MICROFLEET_NATS_PREFIX": self.prefix,
            "MICROFLEET_NATS_STREAM": self.stream,
            "MICROFLEET_NATS_PARTITIONS": str(PARTITIONS),
            "MICROFLEET_NATS_LEASE_S": str(LEASE_S),
            "MICROFLEET_NATS_ACK_WAIT_S": "10",
        }

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen([MICROFLEET, *args], env=self.env(), stdout=log, stderr=log)
        self.processes[name] = process
        return process

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def postgres_backends(database: str) -> list[int]:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchall()
    return [int(r[0]) for r in rows]


@contextlib.contextmanager
def world(seed: int, all_cars: list[str]) -> Iterator[World]:
    """A database, a Mosquitto and a NATS of the bench's own, the cars registered with logins."""
    folder = Path(tempfile.mkdtemp(prefix="microfleet-scaleout-"))
    os.chmod(folder, 0o755)
    broker_dir = folder / "broker"
    broker_dir.mkdir()
    shutil.chown(broker_dir, group="mosquitto")  # the broker drops root for user mosquitto
    os.chmod(broker_dir, 0o2770)
    name = f"microfleet_scaleout_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
    prefix = f"mfbench{uuid.uuid4().hex[:6]}"
    mosquitto: subprocess.Popen[bytes] | None = None
    nats_process: subprocess.Popen[bytes] | None = None
    made: World | None = None
    try:
        services = build_services(Settings(database_url=f"{base}/{name}"))
        files = MosquittoFiles(broker_dir, topic_prefix=prefix, ingest_username=INGEST_USER)
        access = MqttAccessService(services.accounts, files, ingest_username=INGEST_USER)
        ingest_login = access.set_ingest_login()
        passwords = {}
        for vehicle_id in all_cars:
            services.admin.add_vehicle(vehicle_id)
        for vehicle_id in all_cars:
            passwords[vehicle_id] = access.issue(vehicle_id).password
        services.close()
        mqtt_port, nats_port = free_port(), free_port()
        conf = render_listener_conf(broker_dir, port=mqtt_port, persistence_dir=broker_dir)
        (broker_dir / "mosquitto.conf").write_text(conf + "max_queued_messages 1000000\n")
        with (folder / "mosquitto.log").open("ab") as log:
            mosquitto = subprocess.Popen(
                [MOSQUITTO, "-c", str(broker_dir / "mosquitto.conf")], stdout=log, stderr=log
            )
        wait_port(mqtt_port, mosquitto, "mosquitto")
        with (folder / "nats.log").open("ab") as log:
            nats_process = subprocess.Popen(
                [NATS_SERVER, "-js", "-sd", str(folder / "js"), "-a", "127.0.0.1", "-p", str(nats_port)],
                stdout=log,
                stderr=log,
            )
        wait_port(nats_port, nats_process, "nats-server")
        made = World(
            folder,
            f"{base}/{name}",
            mqtt_port,
            f"nats://127.0.0.1:{nats_port}",
            prefix,
            f"MFBENCH_{prefix}",
            ingest_login.password,
            passwords,
            {"mosquitto": mosquitto, "nats": nats_process},
        )
        yield made
    finally:
        if made is not None:
            for process_name in [n for n in made.processes if n not in ("mosquitto", "nats")]:
                made.stop(process_name)
        for process in (mosquitto, nats_process):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def car_client(w: World, vehicle_id: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        w.mqtt_port,
        username=vehicle_id,
        password=w.passwords[vehicle_id],
        identifier=f"{w.prefix}-{vehicle_id}",
        clean_session=True,
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        max_inflight_messages=64,
    )


async def mosquitto_loopback(w: World, cars: dict[str, list[bytes]]) -> float:
    """Records/s a subscriber of Microfleet's login receives while the cars publish back to back."""
    total_msgs = sum(len(b) for b in cars.values())
    records_per_msg = next(iter(cars.values()))[0].count(b"\n") + 1
    received = 0
    done = asyncio.Event()
    async with aiomqtt.Client(
        "127.0.0.1",
        w.mqtt_port,
        username=INGEST_USER,
        password=w.ingest_password,
        identifier=f"{w.prefix}-loopback",
        clean_session=True,
    ) as subscriber:
        await subscriber.subscribe(f"{w.prefix}/v1/+/telemetry", qos=1)

        async def receive() -> None:
            nonlocal received
            async for _ in subscriber.messages:
                received += 1
                if received >= total_msgs:
                    done.set()
                    return

        receiver = asyncio.create_task(receive())
        start = time.perf_counter()
        await asyncio.gather(*(publish_back_to_back(w, v, b, None) for v, b in cars.items()))
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - start
        receiver.cancel()
    return total_msgs * records_per_msg / elapsed


async def publish_back_to_back(
    w: World, vehicle_id: str, batches: list[bytes], sent_ms: dict[str, int] | None
) -> None:
    async with car_client(w, vehicle_id) as client:
        for payload in batches:
            if sent_ms is not None:
                sent_ms[batch_id(vehicle_id, payload)] = time.time_ns() // 1_000_000
            await client.publish(f"{w.prefix}/v1/{vehicle_id}/telemetry", payload, qos=1, timeout=120)


async def publish_paced(
    w: World, cars: dict[str, list[bytes]], rate_records_s: float, sent_ms: dict[str, int]
) -> None:
    """Round-robin over the cars at ``rate_records_s``, each batch's publish not waiting for the last."""
    records_per_msg = next(iter(cars.values()))[0].count(b"\n") + 1
    interval_s = records_per_msg / rate_records_s
    clients = {v: car_client(w, v) for v in cars}
    async with contextlib.AsyncExitStack() as stack:
        for client in clients.values():
            await stack.enter_async_context(client)
        longest = max(len(b) for b in cars.values())
        order = [(v, b[i]) for i in range(longest) for v, b in cars.items() if i < len(b)]
        pending: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for n, (vehicle_id, payload) in enumerate(order):
            delay = start + n * interval_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_ms[batch_id(vehicle_id, payload)] = time.time_ns() // 1_000_000
            task = asyncio.create_task(
                clients[vehicle_id].publish(
                    f"{w.prefix}/v1/{vehicle_id}/telemetry", payload, qos=1, timeout=120
                )
            )
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)


class Commits:
    """The workers' commit announcements, by batch id."""

    def __init__(self) -> None:
        self.at_ms: dict[str, int] = {}
        self.accepted = 0
        self.event = asyncio.Event()
        self.expected = 0

    async def handler(self, msg: Any) -> None:
        data = msgspec.json.decode(msg.data)
        if data["msg_id"] not in self.at_ms:
            self.at_ms[data["msg_id"]] = data["committed_at_ms"]
        self.accepted += data["accepted"]
        if self.accepted >= self.expected:
            self.event.set()


async def leases_settled(w: World, workers: int) -> None:
    """Wait until every partition is held and by ``workers`` distinct workers."""
    nc = await nats.connect(w.nats_url)
    js = nc.jetstream()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                kv = await js.key_value(f"{w.stream}_leases")
                holders = []
                for p in range(PARTITIONS):
                    with contextlib.suppress(Exception):
                        holders.append((await kv.get(f"p{p}")).value)
                if len(holders) == PARTITIONS and len(set(holders)) == workers:
                    return
            await asyncio.sleep(0.3)
        raise RuntimeError(f"the {workers} worker(s) did not settle on the partitions")
    finally:
        await nc.close()


def stale_cars(database: str) -> int:
    """How many cars the workers have yet to derive (the history_stale list of the bench's database)."""
    url = POSTGRES_ADMIN_URL.rpartition("/")[0] + f"/{database}"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM history_stale").fetchone()
    return int(row[0]) if row else 0


async def derivation_caught_up(w: World, database: str, workers: int, timeout_s: float = 300.0) -> float:
    """Wait until the workers have derived every car they stored; the most CPU-s one of them spent on it.

    Caught up: no car on the stale list and every worker idle (under 4 % of a core) for a second, so the
    round that took the last cars has finished. Each worker derives on one core, so its CPU-s here are the
    wall seconds a sustained feed would lose to derivation: a phase shorter than the derivation interval
    must not leave its derivation unpaid after the clock stops.
    """
    names = [f"worker-{k}" for k in range(workers)]
    start = {n: cpu_s(w.processes[n].pid) for n in names}
    last = dict(start)
    quiet_since = time.monotonic()
    deadline = quiet_since + timeout_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = {n: cpu_s(w.processes[n].pid) for n in names}
        if any(now[n] - last[n] > 0.01 for n in names):
            quiet_since = time.monotonic()
        last = now
        if time.monotonic() - quiet_since >= 1.0 and stale_cars(database) == 0:
            return max(last[n] - start[n] for n in names)
    raise RuntimeError(f"the workers did not finish deriving within {timeout_s:.0f} s")


@dataclass
class Paced:
    """One latency phase: what was offered, what was committed, and how far the commits lagged."""

    offered_records_s: float
    committed_records_s: float  # records / (last commit - first publish)
    end_lag_ms: float  # last commit - last publish: small if the workers kept up, the queue's length if not
    duration_s: float  # first to last publish
    p50_ms: float
    p99_ms: float
    cpu_s: dict[str, float]
    records: int


async def paced_phase(
    w: World, commits: Commits, database: str, paced: dict[str, list[bytes]], offered: float, workers: int
) -> Paced:
    """Publish ``paced`` at ``offered`` records/s; latency of every batch, commit rate and end lag."""
    records_per_msg = next(iter(paced.values()))[0].count(b"\n") + 1
    commits.at_ms.clear()
    commits.accepted = 0
    commits.event.clear()
    total = sum(len(b) for b in paced.values()) * records_per_msg
    commits.expected = total
    sent: dict[str, int] = {}
    before = cpu_snapshot(w, database)
    await publish_paced(w, paced, offered, sent)
    await asyncio.wait_for(commits.event.wait(), 600)
    await derivation_caught_up(w, database, workers)  # its CPU counted below, with the phase's
    after = cpu_snapshot(w, database)
    cpu = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    cpu["workers"] = sum(v for k, v in cpu.items() if k.startswith("worker-"))
    latencies = [commits.at_ms[m] - s for m, s in sent.items() if m in commits.at_ms]
    first_ms, last_ms = min(sent.values()), max(sent.values())
    last_commit_ms = max(commits.at_ms.values())
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return Paced(
        offered,
        total / max((last_commit_ms - first_ms) / 1000, 1e-3),
        last_commit_ms - last_ms,
        (last_ms - first_ms) / 1000,
        statistics.median(latencies),
        q[98],
        cpu,
        total,
    )


@dataclass
class PhaseResult:
    records_s: float
    p50_ms: float
    p99_ms: float
    offered_records_s: float
    cpu_s: dict[str, float]
    records: int
    utilisation_pct: float
    cpu_paced_s: dict[str, float]
    records_paced: int
    paced: Paced
    low: Paced


def cpu_snapshot(w: World, database: str) -> dict[str, float]:
    snap = {name: cpu_s(p.pid) for name, p in w.processes.items()}
    snap["postgres"] = sum(cpu_s(pid) for pid in postgres_backends(database))
    snap["cars (bench process)"] = cpu_s(os.getpid())
    return snap


async def run_phase(
    w: World,
    workers: int,
    cars: dict[str, list[bytes]],
    paced: dict[str, list[bytes]],
    low: dict[str, list[bytes]],
    rate: float,
    low_share: float,
    derive_s: float,
) -> PhaseResult:
    database = w.database_url.rsplit("/", 1)[1]
    for k in range(workers):
        w.spawn(
            f"worker-{k}", ["ingest-worker", "--worker-id", f"w{k}", "--derive-interval-s", str(derive_s)]
        )
    await leases_settled(w, workers)
    nc = await nats.connect(w.nats_url)
    commits = Commits()
    await nc.subscribe(f"{w.prefix}.committed.>", cb=commits.handler)
    records_per_msg = next(iter(cars.values()))[0].count(b"\n") + 1
    total = sum(len(b) for b in cars.values()) * records_per_msg
    commits.expected = total
    sent: dict[str, int] = {}
    before = cpu_snapshot(w, database)
    busy0, all0 = machine_busy_s()
    start_ms = time.time_ns() // 1_000_000
    await asyncio.gather(*(publish_back_to_back(w, v, b, sent) for v, b in cars.items()))
    await asyncio.wait_for(commits.event.wait(), 600)
    end_ms = max(commits.at_ms.values())
    derive_after_s = await derivation_caught_up(w, database, workers)
    after = cpu_snapshot(w, database)
    busy1, all1 = machine_busy_s()
    records_s = total / ((end_ms - start_ms) / 1000 + derive_after_s)
    cpu = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in after}
    cpu["workers"] = sum(v for k, v in cpu.items() if k.startswith("worker-"))
    # latency at a fixed offered rate, then below capacity
    offered = min(rate, LATENCY_SHARE * records_s)
    paced_result = await paced_phase(w, commits, database, paced, offered, workers)
    low_result = await paced_phase(w, commits, database, low, low_share * records_s, workers)
    await nc.close()
    for k in range(workers):
        w.stop(f"worker-{k}")
    return PhaseResult(
        records_s,
        paced_result.p50_ms,
        paced_result.p99_ms,
        offered,
        cpu,
        total,
        100 * (busy1 - busy0) / (all1 - all0),
        paced_result.cpu_s,
        paced_result.records,
        paced_result,
        low_result,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer records (a smoke run, not for the docs)")
    parser.add_argument("--cars", type=int, default=100)
    parser.add_argument("--batch-records", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20_000.0, help="offered records/s of the latency phase")
    parser.add_argument(
        "--low-share", type=float, default=0.2, help="offered share of records/s, second latency phase"
    )
    parser.add_argument("--derive-interval-s", type=float, default=5.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    console = Console()
    batches_per_car = 4 if args.quick else 20
    paced_per_car = 4 if args.quick else 20
    plan: dict[str, dict[str, list[bytes]]] = {}
    for tag, per_car, seed in (
        ("mq", batches_per_car, args.seed),
        ("s1", batches_per_car, args.seed + 1),
        ("l1", paced_per_car, args.seed + 2),
        ("s2", batches_per_car, args.seed + 3),
        ("l2", paced_per_car, args.seed + 4),
        ("b1", 2 if args.quick else LOW_PHASE_BATCHES, args.seed + 5),
        ("b2", 2 if args.quick else LOW_PHASE_BATCHES, args.seed + 6),
    ):
        plan[tag] = make_cars(tag, args.cars, per_car, args.batch_records, seed)
    all_cars = [v for cars in plan.values() for v in cars]
    load_start = os.getloadavg()
    with world(args.seed, all_cars) as w:
        loopback = asyncio.run(mosquitto_loopback(w, plan["mq"]))
        w.spawn("bridge", ["mqtt", "bridge"])
        time.sleep(2.0)
        results = {}
        for workers, s_tag, l_tag, b_tag in ((1, "s1", "l1", "b1"), (2, "s2", "l2", "b2")):
            results[workers] = asyncio.run(
                run_phase(
                    w,
                    workers,
                    plan[s_tag],
                    plan[l_tag],
                    plan[b_tag],
                    args.rate,
                    args.low_share,
                    args.derive_interval_s,
                )
            )
            console.print(f"{workers} worker(s): {results[workers]}")
    load_end = os.getloadavg()
    one, two = results[1], results[2]
    rows: list[dict[str, Any]] = []

    def row(metric: str, system: str, value: float, unit: str) -> None:
        rows.append({"metric": metric, "system": system, "value": value, "unit": unit})

    row("records/s 1 worker", "microfleet", round(one.records_s), "records/s")
    row("records/s 2 workers", "microfleet", round(two.records_s), "records/s")
    row("p50 latency ms 1 worker", "microfleet", round(one.p50_ms, 1), "ms")
    row("p99 latency ms 1 worker", "microfleet", round(one.p99_ms, 1), "ms")
    row("p50 latency ms 2 workers", "microfleet", round(two.p50_ms, 1), "ms")
    row("p99 latency ms 2 workers", "microfleet", round(two.p99_ms, 1), "ms")
    row("latency offered rate 1 worker", "microfleet", round(one.offered_records_s), "records/s")
    row("latency offered rate 2 workers", "microfleet", round(two.offered_records_s), "records/s")
    row("scaling 2 workers vs 1", "microfleet", round(two.records_s / one.records_s, 2), "x")
    for workers, result in ((1, one), (2, two)):
        suffix = "1 worker" if workers == 1 else "2 workers"
        for phase, paced in (("latency", result.paced), ("low-rate", result.low)):
            row(
                f"{phase} phase committed rate {suffix}",
                "microfleet",
                round(paced.committed_records_s),
                "records/s",
            )
            row(f"{phase} phase end lag ms {suffix}", "microfleet", round(paced.end_lag_ms), "ms")
            row(f"{phase} phase duration s {suffix}", "microfleet", round(paced.duration_s, 1), "s")
        row(f"low-rate offered rate {suffix}", "microfleet", round(result.low.offered_records_s), "records/s")
        row(f"low-rate p50 latency ms {suffix}", "microfleet", round(result.low.p50_ms, 1), "ms")
        row(f"low-rate p99 latency ms {suffix}", "microfleet", round(result.low.p99_ms, 1), "ms")
        for name, key in (("worker", "workers"), ("postgres", "postgres")):
            value = result.low.cpu_s[key] / (result.low.records / 1000)
            row(
                f"cpu s per 1k records {name} at the low rate {suffix}",
                "microfleet",
                round(value, 4),
                "cpu-s",
            )
    for workers, result in ((1, one), (2, two)):
        per_k = result.records / 1000
        suffix = "" if workers == 1 else " (2 workers)"
        for name, key in (
            ("worker", "workers"),
            ("adapter", "bridge"),
            ("nats", "nats"),
            ("postgres", "postgres"),
            ("mosquitto", "mosquitto"),
            ("cars", "cars (bench process)"),
        ):
            row(
                f"cpu s per 1k records {name}{suffix}",
                "microfleet",
                round(result.cpu_s[key] / per_k, 4),
                "cpu-s",
            )
        row(
            f"machine cpu utilisation{suffix}",
            "microfleet",
            round(result.utilisation_pct, 1),
            "% of all cores",
        )
        for name, key in (
            ("worker", "workers"),
            ("adapter", "bridge"),
            ("nats", "nats"),
            ("postgres", "postgres"),
        ):
            value = result.cpu_paced_s[key] / (result.records_paced / 1000)
            row(
                f"cpu s per 1k records {name} at the latency rate{suffix}",
                "microfleet",
                round(value, 4),
                "cpu-s",
            )
    row("records/s publish", "mosquitto", round(loopback), "records/s")
    row("cores", "machine", os.cpu_count() or 0, "cores")
    row("load average 1 min at start", "machine", round(load_start[0], 2), "processes")
    row("load average 1 min at end", "machine", round(load_end[0], 2), "processes")
    row("records per batch", "bench", args.batch_records, "records")
    row("derive interval", "bench", args.derive_interval_s, "s")

    table = Table(title="Scale-out ingest: MQTT → JetStream → workers → PostgreSQL")
    for column in ("metric", "system", "value", "unit"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["metric"], r["system"], f"{r['value']:,}", r["unit"])
    console.print(table)
    command = "python bench/ingest_scaleout.py " + " ".join(sys.argv[1:])
    if not args.no_write:
        RESULTS.write_text(
            json.dumps({"benchmark": "ingest_scaleout", "command": command.strip(), "rows": rows}, indent=2)
            + "\n"
        )
        console.print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
