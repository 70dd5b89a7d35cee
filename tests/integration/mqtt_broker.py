"""A real Mosquitto of the test's own, configured by Microfleet, and cars that talk to it.

Each broker gets a free port, a folder with the password and ACL files Microfleet writes (readable by the
``mosquitto`` user the broker drops root for), a per-run topic prefix and its own users, and persistence so
a restart keeps queued QoS 1 messages. ``restart`` stops it with SIGTERM (it saves its queues) and starts it
again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from microfleet.bootstrap import Services
from microfleet.ingest.mosquitto_config import MosquittoFiles, render_listener_conf
from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter, MqttTopics
from microfleet.services.mqtt_access import MqttAccessService

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
INGEST_USER = "mf-ingest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One mosquitto process with Microfleet's generated configuration."""

    def __init__(self, folder: Path, *, tls: bool = False) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, group="mosquitto")  # the broker reads and saves here as user mosquitto
        os.chmod(folder, 0o2770)
        self.cert_path: Path | None = folder / "cert.pem" if tls else None
        key_path = folder / "key.pem" if tls else None
        if key_path is not None:  # a self-signed certificate for 127.0.0.1, its own CA
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                    *("-keyout", str(key_path), "-out", str(self.cert_path), "-subj", "/CN=127.0.0.1"),
                    *("-addext", "subjectAltName=IP:127.0.0.1"),
                ],
                check=True,
                capture_output=True,
            )
            os.chmod(key_path, 0o640)
        self.port = free_port()
        self.prefix = f"mftest-{uuid.uuid4().hex[:8]}"
        self.pid_path = folder / "broker.pid"
        self.files = MosquittoFiles(
            folder, topic_prefix=self.prefix, ingest_username=INGEST_USER, pid_path=self.pid_path
        )
        self.files.apply()
        conf = render_listener_conf(
            folder,
            port=self.port,
            persistence_dir=folder,
            tls_cert_path=self.cert_path,
            tls_key_path=key_path,
        )
        # A test's queues may hold more than mosquitto's default 1,000 messages per session.
        (folder / "mosquitto.conf").write_text(conf + "max_queued_messages 100000\n")
        self.log_path = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")], stdout=log, stderr=log
            )
        self.pid_path.write_text(str(self._process.pid))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # a clean stop: queues saved to mosquitto.db
            self._process.wait(10)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def access(self, services: Services) -> MqttAccessService:
        return MqttAccessService(services.accounts, self.files, ingest_username=INGEST_USER)

    def adapter(self, services: Services) -> tuple[MqttTelemetryAdapter, MqttConnection]:
        """The MQTT adapter over the services, logged in as Microfleet's ingest user."""
        login = self.access(services).set_ingest_login()
        adapter = MqttTelemetryAdapter(
            services.ingest,
            services.accounts,
            MqttTopics(self.prefix),
            services.clock,
            max_payload_bytes=services.settings.ingest_max_body_bytes,
        )
        connection = MqttConnection(
            "127.0.0.1",
            self.port,
            login.username,
            login.password,
            f"{self.prefix}-ingest",
            reconnect_first_s=0.2,
            reconnect_max_s=1.0,
        )
        return adapter, connection


@contextlib.contextmanager
def started_broker(*, tls: bool = False) -> Iterator[Broker]:
    """A broker in a folder of its own under the system's temporary folder, removed afterwards.

    Not under pytest's tmp_path: that is private to root, and the broker runs as user mosquitto.
    """
    folder = Path(tempfile.mkdtemp(prefix="microfleet-mqtt-"))
    broker = Broker(folder / "broker", tls=tls)
    os.chmod(folder, 0o755)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.asynccontextmanager
async def running(adapter: MqttTelemetryAdapter, connection: MqttConnection) -> AsyncIterator[asyncio.Event]:
    """The adapter's run loop as a task, subscribed before the body runs, stopped after it."""
    connected, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(adapter.run(connection, stop, connected=connected))
    await asyncio.wait_for(connected.wait(), 10)
    try:
        yield connected
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@dataclass
class Car:
    """A car's MQTT client: its own login, its results collected as they arrive."""

    broker: Broker
    vehicle_id: str
    password: str
    results: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def client(self, **options: Any) -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1",
            self.broker.port,
            username=self.vehicle_id,
            password=self.password,
            identifier=f"{self.broker.prefix}-{self.vehicle_id}",
            clean_session=False,
            **options,
        )

    async def collect(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
            self.received.append((str(message.topic), payload))
            if str(message.topic).endswith("/ingest_results"):
                self.results.append(msgspec.json.decode(payload))


async def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)
