"""Protocol v1 over MQTT: a car's records in on its topic, per-record answers out on another.

Cars publish to ``<prefix>/v1/<vehicle_id>/telemetry`` and Microfleet answers on ``…/ingest_results``;
``…/status`` carries the car's retained ``online``/``offline`` (its last will).

The broker authenticates each car and its ACL confines the car to its own id's topics
(:mod:`microfleet.ingest.mosquitto_config`); MQTT does not tell a subscriber who published, so this adapter
takes the topic's id as the sending credential: records naming another vehicle are quarantined
(``vehicle_mismatch``), a topic naming no registered vehicle is quarantined whole (``unknown_vehicle``).
Each message is acknowledged (PUBACK) only after its records are committed and its answer published, so
a crash or a broker restart redelivers it, and the store's idempotent key makes the redelivery a duplicate.

Scale-out (a :class:`~microfleet.ingest.jetstream.JetStreamPublisher` given): a car's telemetry message is
published to JetStream instead, and acknowledged only after JetStream's publish ack; ``microfleet
ingest-worker`` stores it and no answer is published on ``ingest_results`` (docs/scale-out.md). Refusals
the adapter makes itself (unknown vehicle, oversize) are still quarantined here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiomqtt
import msgspec

from microfleet.domain.telemetry import VEHICLE_ID_PATTERN, RejectionReason
from microfleet.domain.validation import storable_text
from microfleet.errors import NotFoundError, StoreUnavailableError
from microfleet.ingest.http import HttpTelemetryAdapter
from microfleet.services.ingest import IngestReport, IngestService
from microfleet.services.mqtt_access import VehicleLookup

if TYPE_CHECKING:  # nats loads only in scale-out mode
    from microfleet.ingest.jetstream import JetStreamPublisher, OutgoingBatch

log = logging.getLogger(__name__)

_VEHICLE_ID = re.compile(VEHICLE_ID_PATTERN)
STATUS_VALUES = {"online": True, "offline": False}
SOURCE_MAX_CHARS = 200  # the quarantine table's source column (store/schema.py)


@dataclass(frozen=True, slots=True)
class MqttTopics:
    """Microfleet's topic tree under one prefix (one per installation, or per test run)."""

    prefix: str

    @property
    def telemetry_filter(self) -> str:
        """Every car's telemetry topic."""
        return f"{self.prefix}/v1/+/telemetry"

    @property
    def status_filter(self) -> str:
        """Every car's status topic."""
        return f"{self.prefix}/v1/+/status"

    def telemetry(self, vehicle_id: str) -> str:
        """Where a car publishes its records."""
        return f"{self.prefix}/v1/{vehicle_id}/telemetry"

    def status(self, vehicle_id: str) -> str:
        """Where a car publishes ``online`` (retained) and leaves ``offline`` as its last will."""
        return f"{self.prefix}/v1/{vehicle_id}/status"

    def ingest_results(self, vehicle_id: str) -> str:
        """Where Microfleet answers a car's telemetry."""
        return f"{self.prefix}/v1/{vehicle_id}/ingest_results"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """``(vehicle id segment, kind)`` of a topic under this tree, or None for any other topic."""
        head = f"{self.prefix}/v1/"
        if not topic.startswith(head):
            return None
        vehicle_id, _, kind = topic[len(head) :].partition("/")
        if kind not in ("telemetry", "status") or not vehicle_id:
            return None
        return vehicle_id, kind


@dataclass(slots=True)
class MqttIngestCounters:
    """What the adapter did since it started (logged when it stops)."""

    messages: int = 0
    records_accepted: int = 0
    records_duplicate: int = 0
    records_rejected: int = 0
    messages_quarantined: int = 0  # whole messages refused: unknown vehicle, unknown topic, oversize
    status_changes: int = 0
    status_refused: int = 0
    results_published: int = 0
    batches_published: int = 0  # scale-out: telemetry messages handed to JetStream (and acknowledged by it)
    reconnects: int = 0
    refused_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MqttConnection:
    """How the adapter reaches the broker, and its reconnection back-off (s)."""

    host: str
    port: int
    username: str | None
    password: str | None
    client_id: str
    tls_context: ssl.SSLContext | None = None
    reconnect_first_s: float = 0.5
    reconnect_max_s: float = 30.0

    def client(self, suffix: str = "", *, clean_session: bool = False) -> aiomqtt.Client:
        """A client of this connection, its id ``client_id`` + ``suffix`` (one per session of a bridge).

        ``clean_session=False`` keeps the broker's QoS 1 queue for the id across a reconnect.
        """
        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=f"{self.client_id}{suffix}",
            clean_session=clean_session,
            tls_context=self.tls_context,
            # Without it Nagle holds each answer until the broker's TCP ack of our last PUBACK: ~40 ms a
            # message (delayed ack), measured here as 22 messages/s instead of over 100.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer to publish: where, and the bytes."""

    topic: str
    payload: bytes


Session = Callable[[MqttConnection, asyncio.Future[Any], asyncio.Event | None], Awaitable[None]]


async def run_reconnecting(
    session: Session,
    connection: MqttConnection,
    stop: asyncio.Event,
    connected: asyncio.Event | None,
    count_loss: Callable[[], None],
    logger: logging.Logger,
    name: str,
) -> None:
    """Run ``session`` until ``stop`` is set, again after each broker or store loss with a doubling back-off.

    The MQTT and OVMS bridges share it. ``session`` gets a future that completes when ``stop`` is set, so
    it can stop between messages; ``connected`` is cleared while the bridge is away.
    """
    delay_s = connection.reconnect_first_s
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            try:
                await session(connection, stopping, connected)
            except (aiomqtt.MqttError, StoreUnavailableError) as exc:
                if connected is not None:
                    connected.clear()
                count_loss()
                logger.warning("%s lost its broker or store (%s); reconnecting in %.1f s", name, exc, delay_s)
                await asyncio.wait({stopping}, timeout=delay_s)
                delay_s = min(delay_s * 2, connection.reconnect_max_s)
            else:
                delay_s = connection.reconnect_first_s
    finally:
        stopping.cancel()


class MqttTelemetryAdapter:
    """Cars' MQTT messages in, stored records and per-record answers out."""

    def __init__(
        self,
        ingest: IngestService,
        vehicles: VehicleLookup,
        topics: MqttTopics,
        clock: Callable[[], int],
        *,
        max_payload_bytes: int,
        publisher: JetStreamPublisher | None = None,
    ) -> None:
        self._ingest = ingest
        self._publisher = publisher
        self._stop: asyncio.Event | None = None
        self._vehicles = vehicles
        self.topics = topics
        self._clock = clock
        self._max_payload_bytes = max_payload_bytes
        self._registered: set[str] = set()  # vehicles seen registered (vehicles are never unregistered)
        self.online: dict[str, bool] = {}
        self.counters = MqttIngestCounters()

    def handle(
        self, topic: str, payload: bytes, content_type: str | None = None
    ) -> Reply | OutgoingBatch | None:
        """Ingest one message (blocking: the store commits); the answer to publish, if any.

        In scale-out mode a telemetry message the adapter accepts is returned as the batch to publish.
        """
        self.counters.messages += 1
        parsed = self.topics.parse(topic)
        if parsed is None:
            self._refuse_whole(
                None, topic, payload, RejectionReason.UNKNOWN_VEHICLE, "not a Microfleet topic"
            )
            return None
        vehicle_id, kind = parsed
        if not self._is_registered(vehicle_id):
            report = self._refuse_whole(
                None,
                topic,
                payload,
                RejectionReason.UNKNOWN_VEHICLE,
                f"topic {topic!r} names no registered vehicle",
            )
            return self._reply(vehicle_id, report) if kind == "telemetry" else None
        if kind == "status":
            self._status(vehicle_id, payload)
            return None
        if len(payload) > self._max_payload_bytes:
            report = self._refuse_whole(
                vehicle_id,
                topic,
                payload,
                RejectionReason.OVERSIZE_PAYLOAD,
                f"message of {len(payload)} bytes is over the limit of {self._max_payload_bytes}",
            )
            return self._reply(vehicle_id, report)
        if self._publisher is not None:
            return self._outgoing(vehicle_id, topic, payload, content_type)
        report = self._ingest.ingest(
            payload,
            content_type or _sniff_content_type(payload),
            credential_vehicle_id=vehicle_id,
            source=_source(topic),
            now_ms=self._clock(),
        )
        self._count(report)
        return self._reply(vehicle_id, report)

    def _outgoing(
        self, vehicle_id: str, topic: str, payload: bytes, content_type: str | None
    ) -> OutgoingBatch:
        from microfleet.ingest.jetstream import OutgoingBatch

        kind = content_type or _sniff_content_type(payload)
        return OutgoingBatch(vehicle_id, payload, kind, _source(topic), self._clock())

    def _known_telemetry(self, topic: str, payload: bytes, content_type: str | None) -> OutgoingBatch | None:
        """Scale-out's quick path: a known car's telemetry within the size limit, needing no store."""
        parsed = self.topics.parse(topic)
        if parsed is None or parsed[1] != "telemetry" or parsed[0] not in self._registered:
            return None
        if len(payload) > self._max_payload_bytes:
            return None
        return self._outgoing(parsed[0], topic, payload, content_type)

    def _is_registered(self, vehicle_id: str) -> bool:
        if vehicle_id in self._registered:
            return True
        if not _VEHICLE_ID.match(vehicle_id):
            return False
        try:
            self._vehicles.require_vehicle(vehicle_id)
        except NotFoundError:
            return False
        self._registered.add(vehicle_id)
        return True

    def _status(self, vehicle_id: str, payload: bytes) -> None:
        text = payload.decode("utf-8", "replace").strip().lower()
        if text not in STATUS_VALUES:
            self.counters.status_refused += 1
            log.warning(
                "mqtt status of %s refused: %r is neither 'online' nor 'offline'", vehicle_id, text[:40]
            )
            return
        if self.online.get(vehicle_id) != STATUS_VALUES[text]:
            self.counters.status_changes += 1
            log.info("mqtt vehicle %s is %s", vehicle_id, text)
        self.online[vehicle_id] = STATUS_VALUES[text]

    def _refuse_whole(
        self, credential: str | None, topic: str, payload: bytes, reason: RejectionReason, detail: str
    ) -> IngestReport:
        self.counters.messages_quarantined += 1
        log.warning("mqtt message on %r quarantined (%s): %s", topic, reason.value, detail)
        report = self._ingest.refuse(
            storable_text(payload.decode("utf-8", "surrogateescape")),
            reason,
            detail,
            credential_vehicle_id=credential,
            source=_source(topic),
            now_ms=self._clock(),
        )
        self._count(report)
        return report

    def _count(self, report: IngestReport) -> None:
        self.counters.records_accepted += report.accepted
        self.counters.records_duplicate += report.duplicate
        self.counters.records_rejected += report.rejected
        for result in report.results:
            if result.reason is not None:
                by_reason = self.counters.refused_by_reason
                by_reason[result.reason] = by_reason.get(result.reason, 0) + 1

    def _reply(self, vehicle_id: str, report: IngestReport) -> Reply:
        return Reply(self.topics.ingest_results(vehicle_id), HttpTelemetryAdapter.encode(report))

    async def run(
        self,
        connection: MqttConnection,
        stop: asyncio.Event,
        *,
        connected: asyncio.Event | None = None,
    ) -> None:
        """Subscribe and ingest until ``stop`` is set, reconnecting with a doubling back-off after any loss.

        The session is persistent (a fixed client id, clean session off): while the adapter is away the
        broker queues the cars' QoS 1 messages, and delivers unacknowledged ones again on reconnection.
        Stop with the event, not by cancelling: Python 3.11's ``asyncio.wait_for`` (inside aiomqtt's
        publish) can swallow a cancellation that comes as its future completes, leaving the loop waiting.
        """

        def count_loss() -> None:
            self.counters.reconnects += 1

        self._stop = stop
        try:
            if self._publisher is not None and not await self._publisher.start(stop):
                return
            await run_reconnecting(self._session, connection, stop, connected, count_loss, log, "mqtt ingest")
        finally:
            if self._publisher is not None:
                await self._publisher.close()
            log.info("mqtt ingest stopped: %s", self.counters)

    async def _session(
        self, connection: MqttConnection, stopping: asyncio.Future[Any], connected: asyncio.Event | None
    ) -> None:
        """One connection: subscribe, then ingest message by message until ``stopping`` completes."""
        client = connection.client()
        # PUBACK after the commit, not on receipt (paho's default): aiomqtt has no switch, paho does.
        client._client.manual_ack_set(True)
        async with client:
            await client.subscribe(self.topics.telemetry_filter, qos=1)
            await client.subscribe(self.topics.status_filter, qos=1)
            log.info(
                "mqtt ingest subscribed at %s:%d under %r",
                connection.host,
                connection.port,
                self.topics.prefix,
            )
            if connected is not None:
                connected.set()
            messages = aiter(client.messages)
            while True:
                receiving = asyncio.ensure_future(anext(messages))
                await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping.done():  # a message received but not acknowledged is delivered again later
                    receiving.cancel()
                    return
                await self._answer(client, receiving.result())

    async def _answer(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        """Ingest one message, publish its answer, then acknowledge it."""
        content_type = getattr(message.properties, "ContentType", None) if message.properties else None
        topic, payload = str(message.topic), _payload_bytes(message.payload)
        reply: Reply | OutgoingBatch | None = None
        if self._publisher is not None:
            reply = self._known_telemetry(topic, payload, content_type)
            if reply is not None:
                self.counters.messages += 1
        if reply is None:
            reply = await asyncio.to_thread(self.handle, topic, payload, content_type)
        if self._publisher is not None and reply is not None and not isinstance(reply, Reply):
            if not await self._publisher.publish(reply, self._stop):
                return  # stopping before JetStream took it: unacknowledged, the broker delivers it again
            self.counters.batches_published += 1
        elif reply is not None:
            assert isinstance(reply, Reply)
            await client.publish(reply.topic, reply.payload, qos=1)
            self.counters.results_published += 1
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)


def _source(topic: str) -> str:
    """The quarantine's source of a message: the adapter and the topic, within the column's 200 characters."""
    return f"mqtt {topic}"[:SOURCE_MAX_CHARS]


def _sniff_content_type(payload: bytes) -> str:
    """A JSON array if the payload starts with '[', else NDJSON (one record is one line)."""
    return "application/json" if payload.lstrip()[:1] == b"[" else "application/x-ndjson"


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return msgspec.json.encode(payload) if payload is not None else b""
