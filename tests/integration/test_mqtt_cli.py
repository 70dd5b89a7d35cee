"""``microfleet mqtt`` as an administrator runs it against a real Mosquitto: setup writes the broker's
files and Microfleet's login, issue gives a registered car a login the running broker takes at once, list
and revoke; ``microfleet mqtt bridge`` as its own process stores a car's telemetry until interrupted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet
from tests.integration.mqtt_broker import INGEST_USER, Broker, Car, started_broker


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    with started_broker() as started:
        for name, value in {
            "MQTT_BROKER_CONFIG_DIR_PATH": str(started.folder),
            "MQTT_BROKER_PID_PATH": str(started.pid_path),
            "MQTT_TOPIC_PREFIX": started.prefix,
            "MQTT_USERNAME": INGEST_USER,
        }.items():
            monkeypatch.setenv(f"MICROFLEET_{name}", value)
        yield started


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


async def _logs_in(broker: Broker, user: str, password: str) -> bool:
    await asyncio.sleep(0.3)  # the broker rereads its files after SIGHUP
    try:
        async with Car(broker, user, password).client():
            return True
    except aiomqtt.MqttError:
        return False


def _until(condition: Callable[[], bool], context: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, context
        time.sleep(0.1)


def test_setup_issue_list_revoke(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    setup = microfleet("mqtt", "setup", "--port", str(broker.port), db=db)
    assert setup.returncode == 0, setup.stdout
    assert "allow_anonymous false" in (broker.folder / "microfleet.conf").read_text()
    assert asyncio.run(_logs_in(broker, INGEST_USER, _last_line(setup.stdout)))
    assert microfleet("admin", "add-vehicle", "mini-1", db=db).returncode == 0
    issued = microfleet("mqtt", "issue", "mini-1", db=db)
    assert issued.returncode == 0 and "no running broker" not in issued.stdout
    password = _last_line(issued.stdout)
    assert password.startswith("mfm_")
    assert asyncio.run(_logs_in(broker, "mini-1", password))
    assert microfleet("mqtt", "list", db=db).stdout.split() == ["mini-1"]
    assert microfleet("mqtt", "revoke", "mini-1", db=db).returncode == 0
    assert not asyncio.run(_logs_in(broker, "mini-1", password))
    half_tls = microfleet("mqtt", "setup", "--tls-cert", str(broker.folder / "cert.pem"), db=db)
    assert half_tls.returncode == 2 and "both a certificate and its key" in half_tls.stdout
    tls = ["--tls-cert", "/etc/ssl/broker.pem", "--tls-key", "/etc/ssl/broker.key"]
    assert microfleet("mqtt", "setup", "--port", "8883", *tls, db=db).returncode == 0
    assert "certfile /etc/ssl/broker.pem" in (broker.folder / "microfleet.conf").read_text()
    unknown = microfleet("mqtt", "issue", "no-such-car", db=db)
    assert unknown.returncode == 2 and "does not exist" in unknown.stdout


def test_commands_refuse_without_their_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH", raising=False)
    monkeypatch.delenv("MICROFLEET_MQTT_HOST", raising=False)
    issue = microfleet("mqtt", "issue", "mini-1", db=tmp_path / "m.db")
    assert issue.returncode == 2 and "MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH" in issue.stdout
    bridge = microfleet("mqtt", "bridge", db=tmp_path / "m.db")
    assert bridge.returncode == 2 and "MICROFLEET_MQTT_HOST" in bridge.stdout


def test_the_bridge_process_stores_a_car_s_telemetry(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    services.admin.add_vehicle("mini-1")
    access = broker.access(services)
    car = Car(broker, "mini-1", access.issue("mini-1").password)
    ingest_password = access.set_ingest_login().password
    env = {
        **os.environ,
        "MICROFLEET_MQTT_HOST": "127.0.0.1",
        "MICROFLEET_MQTT_PORT": str(broker.port),
        "MICROFLEET_MQTT_PASSWORD": ingest_password,
        "MICROFLEET_MQTT_CLIENT_ID": f"{broker.prefix}-bridge",
    }
    bridge = subprocess.Popen(
        [sys.executable, "-m", "microfleet", "mqtt", "bridge", "--database-url", f"sqlite:///{db}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    now_ms = time.time_ns() // 1_000_000
    records = [
        {"vehicle_id": "mini-1", "ts_ms": now_ms - 60_000 + i * 1000, "soc_pct": 61.0} for i in range(4)
    ]

    async def publish() -> None:
        async with car.client() as client:
            await client.publish(f"{broker.prefix}/v1/mini-1/telemetry", msgspec.json.encode(records), qos=1)

    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(bridge.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        # On its first start the bridge has no session yet: messages before it subscribes go nowhere.
        _until(lambda: any("subscribed" in line for line in lines), "".join(lines))
        asyncio.run(publish())
        _until(lambda: services.telemetry.count("mini-1") == len(records), "".join(lines))
    finally:
        bridge.send_signal(signal.SIGINT)
        bridge.wait(20)
        reader.join(5)
        if bridge.stdout is not None:
            bridge.stdout.close()
        services.close()
    output = "".join(lines)
    assert bridge.returncode == 0, output
    assert "records_accepted=4" in output
