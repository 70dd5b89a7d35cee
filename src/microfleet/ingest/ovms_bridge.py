"""OVMS v3 modules' MQTT messages into the store, through the same ingest as every other adapter.

Subscribes to ``ovms/+/+/metric/#`` and ``ovms/+/+/event/#`` (and the legacy ``…/event``); never to
``…/client/#`` and never publishes: OVMS's command topics run shell commands on the module, and Microfleet
sends no command that way. Each module (``<user>/<vehicleid>``) must be mapped to a registered Microfleet
vehicle; metrics are assembled into records by :class:`~microfleet.ingest.ovms.OvmsAssembler` and stored
with :meth:`IngestService.ingest_batch` under that vehicle's credential, source ``ovms <module>``.

Bad input: a known metric with a value OVMS would not write is quarantined alone with its reason (its tick
keeps every other metric); an unknown metric name is counted and logged once per name, not quarantined
(a module sends hundreds of vehicle-specific metrics: one row each would flood the quarantine); a module
with no mapping is logged and quarantined once (``unknown_vehicle``), then counted.

OVMS publishes at QoS 0 (``ovms_server_v3.cpp``, ``TransmitMetric``): the broker does not keep or resend
what arrives while the bridge is away. The bridge subscribes at QoS 1 so that publishers that use it are
queued in its persistent session; a record is made when its tick closes, so a bridge stopped mid-tick
stores that tick on stop (:meth:`OvmsBridge.flush_all`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt
import msgspec
import paho.mqtt.client as paho

from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.telemetry_codec import DecodedBatch
from microfleet.domain.validation import Rejection, check_item, storable_text
from microfleet.errors import NotFoundError
from microfleet.ingest.mqtt import MqttConnection, run_reconnecting
from microfleet.ingest.ovms import (
    BY_NAME,
    CONNECTED_METRIC,
    OVMS_ROOT,
    TIME_METRIC,
    OvmsAssembler,
    OvmsTopic,
    parse_topic,
)
from microfleet.services.ingest import IngestService
from microfleet.services.mqtt_access import VehicleLookup

log = logging.getLogger(__name__)


def _wall_ms() -> int:
    """Arrival time: the wall clock, not the services' clock (tests freeze that one)."""
    return time.time_ns() // 1_000_000


class _Received(aiomqtt.Message):
    """A message and the wall-clock ms at which it was read off the socket."""

    received_ms: int = 0


class _StampingClient(aiomqtt.Client):
    """aiomqtt's client, each message stamped as paho reads it off the socket, before it waits in the queue.

    The assembler tells sends apart by arrival time; stamped when handled instead, a backlog (a slow store,
    a busy CPU) would stretch one send over more than the quiet interval and split it in two records.
    """

    received = 0  # messages stamped and queued, so the session knows when the queue is truly empty

    def _on_message(self, client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        stamped = _Received._from_paho_message(message)
        stamped.received_ms = _wall_ms()
        self.received += 1
        self._queue.put_nowait(stamped)  # unbounded (aiomqtt's default queue): never full

    def waiting(self, limit: int) -> list[aiomqtt.Message]:
        """Up to ``limit`` messages already queued, taken without waiting."""
        out: list[aiomqtt.Message] = []
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out


# Messages handled in one worker-thread call at most: about a second of backlog at the bridge's rate
# (measured ~2,000 messages/s through handle on SQLite), so a record waits at most that long to be committed.
_BATCH_MAX = 1000


def _unpacked(message: aiomqtt.Message) -> tuple[str, bytes, bool, int | None]:
    payload = message.payload if isinstance(message.payload, bytes | bytearray) else b""
    arrival_ms = message.received_ms if isinstance(message, _Received) else None
    return str(message.topic), bytes(payload), message.retain, arrival_ms


class OvmsBridge:
    """OVMS modules' messages in, records stored per tick; ``counts`` tallies every outcome."""

    def __init__(
        self,
        ingest: IngestService,
        vehicles: VehicleLookup,
        modules: Mapping[str, str],
        clock: Callable[[], int],
        *,
        root: str = OVMS_ROOT,
        assembler: OvmsAssembler | None = None,
    ) -> None:
        self._ingest = ingest
        self._vehicles = vehicles
        self._modules = dict(modules)  # "<user>/<vehicleid>" -> Microfleet vehicle id
        self._clock = clock
        self.root = root
        self.assembler = assembler or OvmsAssembler()
        self._registered: set[str] = set()
        self._unmapped_seen: set[str] = set()
        self._unknown_seen: set[str] = set()
        self.online: dict[str, bool] = {}
        self.counts: Counter[str] = Counter()
        self._pending: list[dict[str, Any]] | None = None  # closed ticks not yet committed (handle_many)

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The topic filters the bridge reads (never ``client/``)."""
        return (f"{self.root}/+/+/metric/#", f"{self.root}/+/+/event/#", f"{self.root}/+/+/event")

    def handle(
        self, topic: str, payload: bytes, *, retained: bool = False, arrival_ms: int | None = None
    ) -> None:
        """Take one message arrived at ``arrival_ms`` (wall clock; blocking: closed ticks are committed)."""
        arrival_ms = _wall_ms() if arrival_ms is None else arrival_ms
        now_ms = self._clock()
        self.counts["messages"] += 1
        parsed = parse_topic(topic, self.root)
        if parsed is None or parsed.kind not in ("metric", "event"):
            self.counts["ignored topic"] += 1
            return
        vehicle_id = self._vehicle_of(parsed, topic, payload, now_ms)
        if vehicle_id is None:
            return
        text = payload.decode("utf-8", "replace")
        if parsed.kind == "event":
            # v1 has no events: counted, not stored (the metrics they announce arrive as metrics).
            self.counts[f"event {parsed.name or text.strip()[:60]}"] += 1
            return
        if parsed.name == CONNECTED_METRIC:  # retained too: whether the module is online now
            self._connected(vehicle_id, text, now_ms)
            return
        if retained:  # the broker's copy of a last value, of unknown age: no record from it
            self.counts["retained ignored"] += 1
            return
        if parsed.name != TIME_METRIC and parsed.name not in BY_NAME:
            self.counts["unknown metric"] += 1
            if parsed.name not in self._unknown_seen:
                self._unknown_seen.add(parsed.name)
                log.info("ovms: metric %r has no protocol-v1 field; ignored (logged once)", parsed.name)
            return
        items, refused = self.assembler.feed(vehicle_id, parsed.name, text, arrival_ms)
        self._store(items, now_ms)
        if refused is not None:
            self.counts[f"refused {refused.reason.value}"] += 1
            log.warning("ovms: %s: %s (quarantined)", parsed.module, refused.detail)
            raw = msgspec.json.encode({"topic": topic, "payload": storable_text(text)}).decode()
            self._ingest.refuse(
                raw,
                refused.reason,
                refused.detail,
                credential_vehicle_id=vehicle_id,
                source=f"ovms {parsed.module}"[:200],
                now_ms=now_ms,
            )

    def flush_due(self, arrival_ms: int | None = None) -> None:
        """Store the ticks that have been quiet long enough by ``arrival_ms`` (wall clock)."""
        arrival_ms = _wall_ms() if arrival_ms is None else arrival_ms
        self._store(self.assembler.due(arrival_ms), self._clock())

    def flush_all(self) -> None:
        """Store every open tick (on stop)."""
        now_ms = self._clock()
        for vehicle_id in set(self._modules.values()):
            self._store(self.assembler.flush(vehicle_id), now_ms)

    def _vehicle_of(self, parsed: OvmsTopic, topic: str, payload: bytes, now_ms: int) -> str | None:
        vehicle_id = self._modules.get(parsed.module)
        if vehicle_id is not None and vehicle_id in self._registered:
            return vehicle_id
        detail = f"OVMS module {parsed.module!r} is not mapped to a Microfleet vehicle"
        if vehicle_id is not None:
            try:
                self._vehicles.require_vehicle(vehicle_id)
            except NotFoundError:
                detail = f"OVMS module {parsed.module!r} is mapped to {vehicle_id!r}, which is not registered"
            else:
                self._registered.add(vehicle_id)
                return vehicle_id
        self.counts["unmapped module"] += 1
        if parsed.module not in self._unmapped_seen:  # once per module: a module sends ~100 metrics a tick
            self._unmapped_seen.add(parsed.module)
            log.warning("ovms: %s; its messages are dropped until it is (quarantined once)", detail)
            self._ingest.refuse(
                storable_text(payload.decode("utf-8", "replace")),
                RejectionReason.UNKNOWN_VEHICLE,
                f"{detail} (topic {topic})",
                credential_vehicle_id=None,
                source=f"ovms {parsed.module}"[:200],
                now_ms=now_ms,
            )
        return None

    def _connected(self, vehicle_id: str, text: str, now_ms: int) -> None:
        value = {"yes": True, "no": False}.get(text.strip())
        if value is None:
            self.counts["status refused"] += 1
            log.warning("ovms: %s s.v3.connected %r is neither yes nor no", vehicle_id, text[:40])
            return
        if self.online.get(vehicle_id) != value:
            log.info("ovms: vehicle %s is %s", vehicle_id, "online" if value else "offline")
        self.online[vehicle_id] = value
        if not value:  # the last will: nothing more of this tick is coming
            self._store(self.assembler.flush(vehicle_id), now_ms)

    def handle_many(self, messages: list[tuple[str, bytes, bool, int | None]]) -> None:
        """Take messages (topic, payload, retained, arrival ms) in order, as :meth:`handle` does.

        The records of the ticks they close are committed together, one transaction per vehicle.
        """
        self._pending = []
        try:
            for topic, payload, retained, arrival_ms in messages:
                self.handle(topic, payload, retained=retained, arrival_ms=arrival_ms)
            # Handled in arrival order: a tick quiet for quiet_ms by the last one's arrival is over. (A
            # module's own next message closes its tick anyway; this is for the modules that went quiet.)
            if messages and messages[-1][3] is not None:
                self._store(self.assembler.due(messages[-1][3]), self._clock())
        finally:
            items, self._pending = self._pending, None
            self._commit(items, self._clock())

    def _store(self, items: list[dict[str, Any]], now_ms: int) -> None:
        if self._pending is not None:  # inside handle_many: committed at its end
            self._pending.extend(items)
        else:
            self._commit(items, now_ms)

    def _commit(self, items: list[dict[str, Any]], now_ms: int) -> None:
        by_vehicle: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            by_vehicle.setdefault(item["vehicle_id"], []).append(item)
        for vehicle_id, its in by_vehicle.items():
            batch = DecodedBatch([], [], len(its))
            for index, item in enumerate(its):
                judged = check_item(item, index, msgspec.json.encode(item).decode())
                if isinstance(judged, Rejection):
                    batch.rejections.append(judged)
                else:
                    batch.records.append((index, judged))
            report = self._ingest.ingest_batch(
                batch, credential_vehicle_id=vehicle_id, source=f"ovms vehicle {vehicle_id}", now_ms=now_ms
            )
            self.counts["records accepted"] += report.accepted
            self.counts["records duplicate"] += report.duplicate
            for result in report.results:
                if result.status == "rejected":
                    self.counts[f"refused {result.reason}"] += 1
                    log.warning(
                        "ovms: vehicle %s record refused: %s (%s)", vehicle_id, result.reason, result.detail
                    )

    async def run(
        self, connection: MqttConnection, stop: asyncio.Event, *, connected: asyncio.Event | None = None
    ) -> None:
        """Subscribe and ingest until ``stop`` is set, reconnecting with a doubling back-off on any loss."""

        def count_loss() -> None:
            self.counts["reconnects"] += 1

        try:
            await run_reconnecting(self._session, connection, stop, connected, count_loss, log, "ovms bridge")
        finally:
            await asyncio.to_thread(self.flush_all)
            log.info("ovms bridge stopped: %s", dict(self.counts))

    async def _session(
        self, connection: MqttConnection, stopping: asyncio.Future[Any], connected: asyncio.Event | None
    ) -> None:
        client = _StampingClient(
            connection.host,
            connection.port,
            username=connection.username,
            password=connection.password,
            identifier=connection.client_id,
            clean_session=False,
            tls_context=connection.tls_context,
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        )
        async with client:
            for topic_filter in self.subscriptions:
                await client.subscribe(topic_filter, qos=1)
            log.info("ovms bridge subscribed at %s:%d under %r", connection.host, connection.port, self.root)
            if connected is not None:
                connected.set()
            messages = aiter(client.messages)
            receiving: asyncio.Future[aiomqtt.Message] = asyncio.ensure_future(anext(messages))
            handled = 0
            try:
                while not stopping.done():
                    # Wake at least twice a quiet interval, so a tick closes on time when nothing follows it.
                    await asyncio.wait(
                        {receiving, stopping},
                        timeout=self.assembler.quiet_ms / 2000,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if receiving.done():
                        # A lost broker raises MqttError here. Under a backlog, every message waiting goes
                        # to one worker-thread call and one commit per vehicle, not one of each per message.
                        batch = [receiving.result(), *client.waiting(_BATCH_MAX)]
                        await asyncio.to_thread(self.handle_many, [_unpacked(m) for m in batch])
                        handled += len(batch)
                        receiving = asyncio.ensure_future(anext(messages))
                    elif handled == client.received:
                        # Every message read so far is handled, so the wall clock is the latest arrival
                        # time there can be; with messages waiting, their own arrival times close ticks.
                        await asyncio.to_thread(self.flush_due)
            finally:
                receiving.cancel()
