"""Remote-command latency: from the API call to the car's acknowledgement, over MQTT to live twin cars.

Everything real, each in its own process as deployed: a ``microfleet serve`` (the API), a ``microfleet
mqtt bridge`` (its dispatcher polls queued commands every 50 ms and records results), a Mosquitto with
Microfleet's ACL, and PostgreSQL. The twin's cars (``sim.command_link.MqttCommandCars``) are online on the
broker, each with its own login; each fetched its vehicle's public keys over the API with its own device
credential at start. An owner's client POSTs ``/api/v1/vehicles/{id}/commands`` at a steady rate
(``--rate``, 5 a second by default, spread over the cars); a command's latency is the car's
acknowledgement as the bridge recorded it (``result_at_ms``, wall clock) minus the wall-clock ms just
before its POST.

During the run an attacker who can publish on every car's command topic (the bridge's own login: nothing
else may, tests/integration/test_mqtt_acl.py) injects, for every tenth genuine command once it was
acknowledged: the same payload again (replayed), the payload with its action changed (forged), and a
command signed with a key of its own claiming the vehicle's key id (forged). "forged or replayed commands
executed" counts the cars' executions beyond one per genuine command (must be 0).

The live-feed row comes from ``bench/live_feed.py`` (``run(seed, quick)``) when that file exists.

    .venv/bin/python bench/command_latency.py [--seed 1] [--quick] [--rate 25]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from microfleet.bootstrap import build_services
from microfleet.domain.access import Role
from microfleet.domain.command_wire import Action, CommandVerifier, SignedCommand, encode, sign
from microfleet.ingest.mosquitto_config import MosquittoFiles, render_listener_conf
from microfleet.services.mqtt_access import MqttAccessService
from microfleet.settings import Settings
from microfleet.sim.command_link import MqttCommandCars, fetch_command_keys
from microfleet.sim.commands import CommandExecutor, controls_for_model

POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
INGEST_USER = "mf-bench-bridge"
MODEL = "dacia-spring-65-2024"  # locks, locate, wake and climate on/off (domain/commands.py)
ACTIONS = (Action.LOCK, Action.UNLOCK, Action.LOCATE, Action.WAKE, Action.CLIMATE_ON, Action.CLIMATE_OFF)
RESULTS = Path(__file__).parent / "results" / "command_latency.json"
TARGET_P99_MS = 500.0  # issue 13's target on this machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], name: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}")
        time.sleep(0.1)
    raise SystemExit(f"{name} did not open port {port} within {timeout_s:g} s")


@dataclasses.dataclass
class World:
    folder: Path
    database_url: str
    mqtt_port: int
    api: str
    prefix: str
    owner_token: str
    owner_name: str
    device_tokens: dict[str, str]
    passwords: dict[str, str]
    bridge_password: str


@contextlib.contextmanager
def world(n_cars: int) -> Iterator[World]:
    """A database, a Mosquitto, a server and a bridge of the bench's own; the cars registered with logins."""
    folder = Path(tempfile.mkdtemp(prefix="microfleet-commands-"))
    os.chmod(folder, 0o755)
    broker_dir = folder / "broker"
    broker_dir.mkdir()
    shutil.chown(broker_dir, group="mosquitto")  # the broker drops root for user mosquitto
    os.chmod(broker_dir, 0o2770)
    name = f"microfleet_commands_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = POSTGRES_ADMIN_URL.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://")
    database_url += f"/{name}"
    prefix = f"mfbench{uuid.uuid4().hex[:6]}"
    processes: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "MICROFLEET_DATABASE_URL": database_url,
        "MICROFLEET_COMMAND_KEY_ENCRYPTION_KEY_PATH": str(folder / "command-kek"),
    }
    try:
        services = build_services(
            Settings(database_url=database_url, command_key_encryption_key_path=folder / "command-kek")
        )
        files = MosquittoFiles(broker_dir, topic_prefix=prefix, ingest_username=INGEST_USER)
        access = MqttAccessService(services.accounts, files, ingest_username=INGEST_USER)
        bridge_login = access.set_ingest_login()
        services.admin.add_user("bench-owner", Role.OWNER)
        owner_token = services.admin.issue_token("bench-owner")
        device_tokens, passwords = {}, {}
        for i in range(n_cars):
            vehicle_id = f"cmd-{i:04d}"
            device_tokens[vehicle_id] = services.admin.add_vehicle(vehicle_id, model_id=MODEL)
            services.admin.grant(vehicle_id, user_name="bench-owner")
            passwords[vehicle_id] = access.issue(vehicle_id).password
        services.close()
        mqtt_port, api_port = free_port(), free_port()
        conf = render_listener_conf(broker_dir, port=mqtt_port, persistence_dir=broker_dir)
        (broker_dir / "mosquitto.conf").write_text(conf + "max_queued_messages 1000000\n")
        with (folder / "mosquitto.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    [MOSQUITTO, "-c", str(broker_dir / "mosquitto.conf")], stdout=log, stderr=log
                )
            )
        wait_port(mqtt_port, processes[-1], "mosquitto")
        bridge_env = {
            **env,
            "MICROFLEET_MQTT_HOST": "127.0.0.1",
            "MICROFLEET_MQTT_PORT": str(mqtt_port),
            "MICROFLEET_MQTT_USERNAME": INGEST_USER,
            "MICROFLEET_MQTT_PASSWORD": bridge_login.password,
            "MICROFLEET_MQTT_TOPIC_PREFIX": prefix,
            "MICROFLEET_MQTT_CLIENT_ID": f"{prefix}-bridge",
        }
        for argv, run_env, log_name in (
            (["serve", "--port", str(api_port), "--workers", "1"], env, "serve.log"),
            (["mqtt", "bridge"], bridge_env, "bridge.log"),
        ):
            with (folder / log_name).open("ab") as log:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "microfleet", *argv], env=run_env, stdout=log, stderr=log
                    )
                )
        wait_port(api_port, processes[1], "microfleet serve")
        yield World(
            folder,
            database_url,
            mqtt_port,
            f"http://127.0.0.1:{api_port}",
            prefix,
            owner_token,
            "bench-owner",
            device_tokens,
            passwords,
            bridge_login.password,
        )
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(15)
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass
class Issued:
    vehicle_id: str
    action: Action
    command_id: str
    called_ms: int
    answered_ms: int = 0


class Attacker:
    """Publishes on cars' command topics with the bridge's login (the only login the broker lets do it)."""

    def __init__(self, w: World) -> None:
        self._prefix = w.prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{w.prefix}-attacker")
        self.client.username_pw_set(INGEST_USER, w.bridge_password)
        self.client.connect("127.0.0.1", w.mqtt_port)
        self.client.loop_start()
        self._key = Ed25519PrivateKey.generate()
        self.injected = 0

    def attack(self, genuine: SignedCommand) -> None:
        """Replay ``genuine``, forge an edited copy, and one signed by another key claiming its key id."""
        edited = dataclasses.replace(
            genuine, action=Action.UNLOCK if genuine.action is Action.LOCK else Action.LOCK
        )
        other = dataclasses.replace(sign(edited, self._key), key_id=genuine.key_id)
        topic = f"{self._prefix}/v1/{genuine.vehicle_id}/commands"
        for payload in (encode(genuine), encode(edited), encode(other)):
            self.client.publish(topic, payload, qos=1)
            self.injected += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run_commands(w: World, n_commands: int, rate_per_s: float, seed: int, console: Console) -> dict[str, Any]:
    """Start the cars, issue the commands at ``rate_per_s``, attack along the way; the measured figures."""
    rng = random.Random(seed)
    executors = {}
    for vehicle_id, token in w.device_tokens.items():
        executor = CommandExecutor(CommandVerifier(vehicle_id), controls_for_model(MODEL))
        executor.trust_keys(fetch_command_keys(w.api, vehicle_id, token))  # over the API, as a car does
        executors[vehicle_id] = executor
    cars = MqttCommandCars("127.0.0.1", w.mqtt_port, w.passwords, executors, topic_prefix=w.prefix)
    cars.connect_all()
    warm_ids = warm_up(w, vehicles=sorted(w.device_tokens), console=console)
    attacker = Attacker(w)
    issued: list[Issued] = []
    errors: list[str] = []
    lock = threading.Lock()
    vehicles = sorted(w.device_tokens)
    plan = [(vehicles[i % len(vehicles)], rng.choice(ACTIONS)) for i in range(n_commands)]
    headers = {"Authorization": f"Bearer {w.owner_token}"}

    def issue(index: int, vehicle_id: str, action: Action, client: httpx.Client) -> None:
        called_ms = time.time_ns() // 1_000_000
        response = client.post(f"/api/v1/vehicles/{vehicle_id}/commands", json={"action": action.value})
        if response.status_code != 201:
            with lock:
                errors.append(f"{response.status_code} {response.text[:200]}")
            return
        answered_ms = time.time_ns() // 1_000_000
        with lock:
            issued.append(Issued(vehicle_id, action, response.json()["command_id"], called_ms, answered_ms))

    workers = 8  # concurrent API clients, so a slow answer does not hold back the rate
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        clients = [
            stack.enter_context(httpx.Client(base_url=w.api, headers=headers, timeout=30))
            for _ in range(workers)
        ]
        threads: list[threading.Thread] = []
        attacks: list[threading.Thread] = []
        for index, (vehicle_id, action) in enumerate(plan):
            due = started + index / rate_per_s
            time.sleep(max(due - time.monotonic(), 0.0))
            thread = threading.Thread(
                target=issue, args=(index, vehicle_id, action, clients[index % workers])
            )
            thread.start()
            threads.append(thread)
            if index % 10 == 5 and len(issued) > 10:  # attack with an earlier genuine command
                attacks.append(
                    threading.Thread(target=attack_with, args=(w, attacker, issued[len(issued) - 10]))
                )
                attacks[-1].start()
        for thread in threads + attacks:
            thread.join()
    issued_ms = time.monotonic() - started
    results = wait_for_results(w, issued, timeout_s=30.0)
    time.sleep(1.0)  # the last injected commands reach their cars
    attacker.close()
    cars.close()
    latencies = [
        r["result_at_ms"] - i.called_ms
        for i, r in zip(issued, results, strict=True)
        if r["status"] == "acknowledged"
    ]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    stages = {
        "call -> API answer": [i.answered_ms - i.called_ms for i in issued],
        "call -> stored (server's clock)": [
            r["issued_at_ms"] - i.called_ms for i, r in zip(issued, results, strict=True)
        ],
        "stored -> sent": [
            r["sent_at_ms"] - r["issued_at_ms"] for r in results if r["sent_at_ms"] is not None
        ],
        "sent -> acknowledged": [
            r["result_at_ms"] - r["sent_at_ms"] for r in results if r["result_at_ms"] and r["sent_at_ms"]
        ],
    }
    console.print(
        "stage ms, median / p99: "
        + ", ".join(
            f"{name} {statistics.median(v):.0f} / {percentile(v, 99):.0f}" for name, v in stages.items() if v
        )
    )
    genuine_ids = {i.command_id for i in issued} | warm_ids
    executions = [cid for e in executors.values() for cid in e.executed]
    extra = len(executions) - len(set(executions)) + sum(1 for cid in executions if cid not in genuine_ids)
    refused = sum(e.refused for e in executors.values())
    console.print(
        f"{len(issued)} commands in {issued_ms:.1f} s ({len(issued) / issued_ms:.1f}/s), "
        f"statuses {statuses}, "
        f"API errors {len(errors)}; injected {attacker.injected}, refused by the cars {refused}"
    )
    if errors:
        console.print(f"[red]first API errors: {errors[:3]}")
    return {
        "latencies_ms": latencies,
        "statuses": statuses,
        "issued": len(issued),
        "api_errors": len(errors),
        "injected": attacker.injected,
        "refused": refused,
        "forged_or_replayed_executed": extra,
        "rate_per_s": len(issued) / issued_ms,
    }


def warm_up(w: World, vehicles: list[str], console: Console) -> set[str]:
    """One command per car, not measured: the bridge is up, has read every car's "online", and answers."""
    started = time.monotonic()
    with httpx.Client(
        base_url=w.api, headers={"Authorization": f"Bearer {w.owner_token}"}, timeout=30
    ) as client:
        warm = [
            Issued(
                v,
                Action.WAKE,
                client.post(f"/api/v1/vehicles/{v}/commands", json={"action": "wake"}).json()["command_id"],
                0,
            )
            for v in vehicles
        ]
    results = wait_for_results(w, warm, timeout_s=120.0)
    if any(r["status"] != "acknowledged" for r in results):
        raise SystemExit(f"warm-up commands not all acknowledged: {[r['status'] for r in results]}")
    console.print(f"warm-up: {len(warm)} cars answered within {time.monotonic() - started:.1f} s")
    return {i.command_id for i in warm}


def attack_with(w: World, attacker: Attacker, genuine: Issued) -> None:
    """Once a genuine command is acknowledged, attack with its signed payload (as if captured on the way)."""
    with _LOCK:
        services = _services(w)
        owner = next(u for u in services.admin.list_users() if u.name == w.owner_name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        command = services.commands.get(owner, genuine.vehicle_id, genuine.command_id)[0]
        if command.status.value == "acknowledged":
            attacker.attack(command.signed)
            return
        time.sleep(0.2)


_SERVICES: dict[str, Any] = {}
_LOCK = threading.Lock()


def _services(w: World) -> Any:
    if w.database_url not in _SERVICES:
        _SERVICES[w.database_url] = build_services(
            Settings(database_url=w.database_url, command_key_encryption_key_path=w.folder / "command-kek"),
            migrate=False,
        )
    return _SERVICES[w.database_url]


def wait_for_results(w: World, issued: list[Issued], timeout_s: float) -> list[dict[str, Any]]:
    """Every command as the API shows it, once none is queued or sent any more (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(
        base_url=w.api, headers={"Authorization": f"Bearer {w.owner_token}"}, timeout=30
    ) as client:
        while True:
            results = [
                client.get(f"/api/v1/vehicles/{i.vehicle_id}/commands/{i.command_id}").json()["command"]
                for i in issued
            ]
            pending = [r for r in results if r["status"] in ("queued", "sent")]
            if not pending or time.monotonic() > deadline:
                return results
            time.sleep(0.5)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(min(round(q / 100 * len(ordered) + 0.5) - 1, len(ordered) - 1), 0)  # nearest rank
    return float(ordered[k])


def live_feed_rows(seed: int, quick: bool, console: Console) -> list[dict[str, Any]]:
    """The live feed's rows from bench/live_feed.py's ``run(seed, quick)``, if that benchmark exists."""
    path = Path(__file__).parent / "live_feed.py"
    if not path.exists():
        console.print("[yellow]bench/live_feed.py does not exist: no live-feed row[/yellow]")
        return []
    # Imported by name from bench/ (its worker processes import it again by that name).
    sys.path.insert(0, str(path.parent))
    module = importlib.import_module("live_feed")
    rows = module.run(seed, quick)
    return [
        dict(r) if isinstance(r, dict) else dict(zip(("metric", "system", "value", "unit"), r, strict=True))
        for r in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="100 commands to 20 cars instead of 1,000 to 100"
    )
    parser.add_argument("--rate", type=float, default=5.0, help="commands issued per second (default 5)")
    parser.add_argument("--no-live-feed", action="store_true", help="skip bench/live_feed.py's rows")
    args = parser.parse_args()
    console = Console()
    n_cars, n_commands = (20, 100) if args.quick else (100, 1000)
    console.print(f"load average at start {os.getloadavg()[0]:.2f}; {n_commands} commands to {n_cars} cars")
    with world(n_cars) as w:
        measured = run_commands(w, n_commands, args.rate, args.seed, console)
    for services in _SERVICES.values():
        services.close()
    latencies = measured["latencies_ms"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    rows: list[dict[str, Any]] = [
        {"metric": "command p50 ms", "system": "microfleet", "value": round(p50, 1), "unit": "ms"},
        {"metric": "command p99 ms", "system": "microfleet", "value": round(p99, 1), "unit": "ms"},
        {
            "metric": "forged or replayed commands executed",
            "system": "microfleet",
            "value": measured["forged_or_replayed_executed"],
            "unit": "commands",
        },
        {
            "metric": "forged or replayed commands injected",
            "system": "microfleet",
            "value": measured["injected"],
            "unit": "commands",
        },
        {
            "metric": "commands acknowledged",
            "system": "microfleet",
            "value": len(latencies),
            "unit": "commands",
        },
        {
            "metric": "commands issued per second",
            "system": "microfleet",
            "value": round(measured["rate_per_s"], 1),
            "unit": "1/s",
        },
    ]
    console.print(f"command p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(latencies)} acknowledged commands")
    command = f"python bench/command_latency.py --seed {args.seed} --rate {args.rate:g}"
    if not args.quick:  # written now, and again with the live feed's rows
        write_results(command, rows)
    if not args.no_live_feed:
        rows += live_feed_rows(args.seed, args.quick, console)
    table = Table(
        title=f"Remote commands over MQTT ({n_commands} to {n_cars} live twin cars, "
        "real server + bridge + Mosquitto)"
    )
    for column in ("metric", "system", "value", "unit"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["metric"], row["system"], f"{row['value']:,}", row["unit"])
    console.print(table)
    console.print(
        f"command p99 {p99:.0f} ms: target < {TARGET_P99_MS:.0f} ms "
        f"{'met' if p99 < TARGET_P99_MS else 'MISSED'}; "
        f"statuses {measured['statuses']}; mean {statistics.fmean(latencies):.0f} ms"
        if latencies
        else "[red]no command was acknowledged"
    )
    if not args.quick:
        write_results(command, rows)
        console.print(f"written {RESULTS}")


def write_results(command: str, rows: list[dict[str, Any]]) -> None:
    RESULTS.write_text(
        json.dumps({"benchmark": "command_latency", "command": command, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
