"""``microfleet mqtt ovms-bridge`` as an administrator runs it: refusals without a map or a broker, the ACL
Microfleet writes keeping OVMS modules apart after a car's login is issued and revoked, and the bridge as
its own process storing a module's send from a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.e2e.command import microfleet
from tests.integration.mqtt_broker import INGEST_USER, Broker, started_broker
from tests.integration.ovms_module import topic, utc_text


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def test_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MICROFLEET_MQTT_HOST", raising=False)
    db = tmp_path / "m.db"
    bad_map = microfleet("mqtt", "ovms-bridge", "--vehicle", "alice=twizy-1", db=db)
    assert bad_map.returncode == 2 and "USER/VEHICLEID=MICROFLEET_VEHICLE_ID" in bad_map.stderr
    no_broker = microfleet("mqtt", "ovms-bridge", "--vehicle", "alice/TWIZY1=twizy-1", db=db)
    assert no_broker.returncode == 2 and "MICROFLEET_MQTT_HOST" in no_broker.stdout


def test_issuing_and_revoking_a_car_keeps_the_modules_apart(broker: Broker, tmp_path: Path) -> None:
    """After ``mqtt issue`` and ``revoke`` of a protocol-v1 car rewrote the ACL (and the broker reread it),
    a module still writes its own tree, Microfleet still reads it, and another module cannot write there."""
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'm.db'}"))
    services.admin.add_vehicle("car-v1")
    access = broker.access(services)
    ingest_password = access.set_ingest_login().password
    broker.files.set_password("alice", "alice-secret")
    broker.files.set_password("mallory", "mallory-secret")
    broker.restart()
    access.issue("car-v1")  # each rewrites the ACL and sends the broker SIGHUP
    access.revoke("car-v1")
    time.sleep(0.5)  # the broker rereads its files between two network reads

    async def publish_and_read() -> list[tuple[str, bytes]]:
        got: list[tuple[str, bytes]] = []
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, username=INGEST_USER, password=ingest_password
        ) as reader:
            await reader.subscribe("ovms/#", qos=1)
            for user, tree, value in (
                ("alice", "alice", "61"),
                ("mallory", "alice", "1"),
                ("mallory", "mallory", "2"),
            ):
                async with aiomqtt.Client(
                    "127.0.0.1", broker.port, username=user, password=f"{user}-secret"
                ) as module:
                    await module.publish(topic(tree, "CAR", "v.b.soc"), value, qos=1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for message in reader.messages:
                        got.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]
        return got

    assert asyncio.run(publish_and_read()) == [
        ("ovms/alice/CAR/metric/v/b/soc", b"61"),
        ("ovms/mallory/CAR/metric/v/b/soc", b"2"),  # mallory's value into alice's tree was dropped
    ]
    services.close()


def test_the_bridge_process_stores_a_module_s_send(broker: Broker, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    services.admin.add_vehicle("twizy-1")
    ingest_password = broker.access(services).set_ingest_login().password
    broker.files.set_password("alice", "alice-secret")
    broker.restart()
    env = {
        **os.environ,
        "MICROFLEET_MQTT_HOST": "127.0.0.1",
        "MICROFLEET_MQTT_PORT": str(broker.port),
        "MICROFLEET_MQTT_USERNAME": INGEST_USER,
        "MICROFLEET_MQTT_PASSWORD": ingest_password,
        "MICROFLEET_MQTT_CLIENT_ID": f"{broker.prefix}-bridge",
    }
    command = [
        "mqtt",
        "ovms-bridge",
        "--vehicle",
        "alice/TWIZY1=twizy-1",
        "--database-url",
        f"sqlite:///{db}",
    ]
    bridge = subprocess.Popen(
        [sys.executable, "-m", "microfleet", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    now_ms = time.time_ns() // 1_000_000 - 60_000
    send = [("m.time.utc", utc_text(now_ms)), ("v.b.soc", "61.5"), ("v.p.speed", "0")]

    async def publish() -> None:
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, username="alice", password="alice-secret"
        ) as module:
            for name, payload in send:
                await module.publish(topic("alice", "TWIZY1", name), payload, qos=0, retain=True)

    lines: list[str] = []
    assert bridge.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(bridge.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("subscribed" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        asyncio.run(publish())
        while services.telemetry.count("twizy-1") < 1:
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
    finally:
        bridge.send_signal(signal.SIGINT)
        bridge.wait(20)
        reader.join(5)
        bridge.stdout.close()
    (record,) = services.telemetry.records("twizy-1", 0, 2**62)
    assert (record.ts_ms, record.soc_pct, record.speed_kmh) == (now_ms // 1000 * 1000, 61.5, 0.0)
    assert bridge.returncode == 0 and "records accepted': 1" in "".join(lines)
    services.close()
