"""NATS JetStream for integration tests: a per-test stream, subject prefix and lease bucket on the system's
NATS (127.0.0.1:4222), deleted afterwards; or a private ``nats-server -js`` of the test's own on a free port
with its own store folder, for tests that restart it (the system's NATS is never restarted)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats

from microfleet.ingest.jetstream import JetStreamConfig

SYSTEM_NATS = "nats://127.0.0.1:4222"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def stream_config(servers: str = SYSTEM_NATS, *, partitions: int = 4) -> JetStreamConfig:
    """A stream, prefix and bucket no other test uses; short ack wait and leases so tests run quickly."""
    tag = uuid.uuid4().hex[:10]
    return JetStreamConfig(
        servers=(servers,),
        prefix=f"mftest-{tag}",
        stream=f"MFTEST_{tag}",
        partitions=partitions,
        duplicate_window_s=60.0,
        ack_wait_s=2.0,
        lease_s=2.0,
        reconnect_first_s=0.1,
        reconnect_max_s=0.5,
    )


def delete_stream(config: JetStreamConfig) -> None:
    """Remove the test's stream and lease bucket (if they exist)."""

    async def delete() -> None:
        nc = await nats.connect(list(config.servers), connect_timeout=2, max_reconnect_attempts=1)
        js = nc.jetstream()
        for remove in (js.delete_stream(config.stream), js.delete_key_value(config.lease_bucket)):
            with contextlib.suppress(Exception):
                await remove
        await nc.close()

    with contextlib.suppress(Exception):
        asyncio.run(delete())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateNats:
    """One ``nats-server -js`` of the test's own; ``restart`` keeps its port and its stored streams."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            NATS_SERVER,
            "-js",
            "-sd",
            str(self.folder / "js"),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        with (self.folder / "nats.log").open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"nats-server did not start: {(self.folder / 'nats.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def private_nats() -> Iterator[PrivateNats]:
    """A private NATS in a temporary folder, stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="microfleet-nats-"))
    server = PrivateNats(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
