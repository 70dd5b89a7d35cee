"""Scale-out ingest: adapters publish each car's batch to JetStream; ``microfleet ingest-worker`` stores it.

A batch travels as the car's own protocol-v1 bytes (a JSON array or NDJSON), not as decoded records: the
adapter (one MQTT session for the whole fleet, the one part that does not scale out) then does no decoding
at all, the one decoder is the worker's :class:`~microfleet.services.ingest.IngestService` (the same code and
version as the store it writes), and a refused record reaches the quarantine as the car sent it. Adapters
that assemble records themselves (OVMS) publish them as protocol-v1 NDJSON. Who sent it, from where and
when travel as headers:

========================== =====================================================================
``Nats-Msg-Id``            digest of (vehicle id, payload): JetStream drops a re-published copy
``Microfleet-Vehicle``     the sending credential's vehicle id (the adapter authenticated it)
``Microfleet-Source``      the adapter and where it got the batch (``mqtt <topic>``), for quarantine
``Microfleet-Received-Ms`` when the adapter received it (UTC epoch ms): the clock records are judged by
``Content-Type``           ``application/json`` or ``application/x-ndjson``
========================== =====================================================================

The subject is ``<prefix>.telemetry.<partition>``, the partition a stable hash of the vehicle id modulo
the number of partitions, so one car's batches stay in order on one subject. The stream is a work queue
(a batch leaves it when a worker acknowledges it) kept on file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError as StreamNotFoundError

from microfleet.domain.telemetry import VEHICLE_ID_PATTERN

log = logging.getLogger(__name__)

HEADER_VEHICLE = "Microfleet-Vehicle"
HEADER_SOURCE = "Microfleet-Source"
HEADER_RECEIVED_MS = "Microfleet-Received-Ms"
HEADER_CONTENT_TYPE = "Content-Type"
HEADER_MSG_ID = "Nats-Msg-Id"
PUBLISH_TIMEOUT_S = 5.0
# What a request to NATS raises when the server is away or slow (every client error, timeouts included).
NATS_LOST = (NatsError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """Where the stream is and how it is cut: one per installation (or per test)."""

    servers: tuple[str, ...]
    prefix: str
    stream: str
    partitions: int
    duplicate_window_s: float = 120.0
    ack_wait_s: float = 30.0
    lease_s: float = 10.0
    replicas: int = 1
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 10.0

    @property
    def telemetry_filter(self) -> str:
        """Every partition's subject."""
        return f"{self.prefix}.telemetry.*"

    def subject(self, partition: int) -> str:
        """The subject of one partition."""
        return f"{self.prefix}.telemetry.{partition}"

    def committed_subject(self, partition: int) -> str:
        """Where a worker announces each batch it stored (core NATS, not kept)."""
        return f"{self.prefix}.committed.{partition}"

    def consumer(self, partition: int) -> str:
        """The durable consumer of one partition."""
        return f"{self.stream}_p{partition}"

    @property
    def lease_bucket(self) -> str:
        """The key-value bucket of workers' partition leases."""
        return f"{self.stream}_leases"


def partition_of(vehicle_id: str, partitions: int) -> int:
    """The partition of a vehicle: CRC-32 of its id modulo ``partitions`` (the same in every process)."""
    return zlib.crc32(vehicle_id.encode()) % partitions


def batch_id(vehicle_id: str, payload: bytes) -> str:
    """The batch's ``Nats-Msg-Id``: the same car's same bytes give the same id, so a re-publish is dropped."""
    digest = hashlib.blake2b(vehicle_id.encode(), digest_size=16)
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    """A batch an adapter accepted, on its way to the stream."""

    vehicle_id: str
    payload: bytes
    content_type: str
    source: str
    received_at_ms: int

    def headers(self) -> dict[str, str]:
        """The message's headers (the table in this module's docstring)."""
        return {
            HEADER_MSG_ID: batch_id(self.vehicle_id, self.payload),
            HEADER_VEHICLE: self.vehicle_id,
            HEADER_SOURCE: self.source,
            HEADER_RECEIVED_MS: str(self.received_at_ms),
            HEADER_CONTENT_TYPE: self.content_type,
        }


async def connect(
    config: JetStreamConfig,
    stop: asyncio.Event | None = None,
    *,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
) -> NatsClient | None:
    """Connect to NATS, retrying with a doubling back-off until it answers (None: ``stop`` was set first).

    Once connected the client reconnects by itself, for ever, after any loss.
    """
    delay_s = config.reconnect_first_s

    async def disconnected() -> None:
        log.warning("nats connection lost; reconnecting")

    async def error(exc: Exception) -> None:
        log.debug("nats client: %s", exc)

    async def reconnected() -> None:
        log.info("nats reconnected")
        if on_reconnect is not None:
            await on_reconnect()

    while stop is None or not stop.is_set():
        try:
            return await nats.connect(
                servers=list(config.servers),
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=config.reconnect_first_s,
                connect_timeout=2,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except (NoServersError, *NATS_LOST) as exc:
            log.warning("nats at %s unreachable (%s); retrying in %.1f s", config.servers, exc, delay_s)
            await sleep_unless(delay_s, stop)
            delay_s = min(delay_s * 2, config.reconnect_max_s)
    return None


async def sleep_unless(seconds: float, stop: asyncio.Event | None) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def ensure_stream(js: JetStreamContext, config: JetStreamConfig) -> None:
    """Create the stream, or bring an existing one's settings up to date (its retention cannot change)."""
    wanted = StreamConfig(
        name=config.stream,
        subjects=[config.telemetry_filter],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        duplicate_window=config.duplicate_window_s,
        num_replicas=config.replicas,
    )
    try:
        await js.stream_info(config.stream)
    except StreamNotFoundError:
        await js.add_stream(wanted)
        log.info("jetstream stream %s created for %s", config.stream, config.telemetry_filter)
        return
    await js.update_stream(wanted)


class JetStreamPublisher:
    """Publishes adapters' batches and returns only once JetStream has stored them (its publish ack)."""

    def __init__(self, config: JetStreamConfig) -> None:
        self.config = config
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.published = 0
        self.duplicates = 0  # batches JetStream already had (a re-publish after a lost ack or a redelivery)
        self.retries = 0

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Connect and create or update the stream (False: ``stop`` was set before NATS answered)."""
        self._nc = await connect(self.config, stop)
        if self._nc is None:
            return False
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        delay_s = self.config.reconnect_first_s
        while True:
            try:
                await ensure_stream(self._js, self.config)
                return True
            except NATS_LOST as exc:
                log.warning("jetstream not ready (%s); retrying in %.1f s", exc, delay_s)
                await sleep_unless(delay_s, stop)
                if stop is not None and stop.is_set():
                    return False
                delay_s = min(delay_s * 2, self.config.reconnect_max_s)

    async def publish(self, batch: OutgoingBatch, stop: asyncio.Event | None = None) -> bool:
        """Publish until JetStream acknowledges (True), retrying with back-off; False if ``stop`` came first.

        The retry carries the same ``Nats-Msg-Id``, so a copy whose ack was lost is stored once.
        """
        assert self._js is not None, "start the publisher first"
        subject = self.config.subject(partition_of(batch.vehicle_id, self.config.partitions))
        headers = batch.headers()
        delay_s = self.config.reconnect_first_s
        while True:
            try:
                ack = await self._js.publish(subject, batch.payload, headers=headers)
            except NATS_LOST as exc:
                self.retries += 1
                log.warning("publishing to %s failed (%s); retrying in %.1f s", subject, exc, delay_s)
                await sleep_unless(delay_s, stop)
                if stop is not None and stop.is_set():
                    return False
                delay_s = min(delay_s * 2, self.config.reconnect_max_s)
                continue
            self.published += 1
            self.duplicates += bool(ack.duplicate)
            return True

    async def close(self) -> None:
        """Flush and close the connection."""
        if self._nc is not None:
            await self._nc.drain() if self._nc.is_connected else await self._nc.close()
            self._nc = None


CONTENT_TYPES = ("application/json", "application/x-ndjson")
SOURCE_MAX_CHARS = 200  # the quarantine table's source column
_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Envelope:
    """An adapter's batch as its headers describe it."""

    vehicle_id: str
    source: str
    received_at_ms: int
    content_type: str


def read_envelope(headers: dict[str, str] | None) -> Envelope | str:
    """The batch's envelope, or why the headers are not an adapter's."""
    headers = headers or {}
    vehicle_id = headers.get(HEADER_VEHICLE)
    source = headers.get(HEADER_SOURCE)
    received = headers.get(HEADER_RECEIVED_MS, "")
    content_type = headers.get(HEADER_CONTENT_TYPE, "")
    if not vehicle_id or not source:
        return f"the message names no vehicle or source ({HEADER_VEHICLE}, {HEADER_SOURCE})"
    if not _VEHICLE_ID.match(vehicle_id):
        return f"{HEADER_VEHICLE} {vehicle_id[:80]!r} is not a vehicle id"
    if not received.isdigit() or len(received) > 15:
        return f"{HEADER_RECEIVED_MS} {received[:40]!r} is not epoch milliseconds"
    if content_type not in CONTENT_TYPES:
        return f"{HEADER_CONTENT_TYPE} {content_type[:80]!r} is neither of {', '.join(CONTENT_TYPES)}"
    return Envelope(vehicle_id, source[:SOURCE_MAX_CHARS], int(received), content_type)


def wall_ms() -> int:
    """Now, UTC epoch ms, by the wall clock (the announcements' time; tests freeze the services' clock)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Committed:
    """What a worker announces on ``<prefix>.committed.<partition>`` after storing a batch."""

    msg_id: str
    vehicle_id: str | None
    accepted: int
    duplicate: int
    rejected: int
    received_at_ms: int | None
    committed_at_ms: int
