"""Remote commands over MQTT: signed commands out to online cars, their results in (inside ``mqtt bridge``).

The dispatcher is one MQTT session of its own beside the telemetry adapter (client id
``<bridge id>-commands``, persistent, so results a car sends while it is away are queued for it). Every
``poll_interval_s`` (50 ms) it asks :meth:`CommandService.due_for_dispatch` for the queued commands of the
cars whose retained ``…/status`` is ``online``, publishes each command's signed payload on
``<prefix>/v1/<vehicle_id>/commands`` (QoS 1) and then calls :meth:`CommandService.mark_sent`; a car that is
offline gets nothing, and its command expires (:meth:`CommandService.expire_due`, run every
``expire_interval_s``), never delivered late.

Results arrive on ``<prefix>/v1/+/command_results``; the broker's ACL lets only the car itself write its own
results topic (``ingest/mosquitto_config.py``), so the topic's vehicle id is the reporting vehicle. A result
that does not decode is logged with its reason and counted, never applied; one the service refuses (unknown
command, another vehicle's, not sent) is counted by verdict. Each result is acknowledged (PUBACK) only after
it is recorded, so a bridge that stops in between gets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt

from microfleet.domain.command_wire import decode_result, encode
from microfleet.ingest.mqtt import STATUS_VALUES, MqttConnection, MqttTopics, run_reconnecting
from microfleet.services.commands import CommandService, RemoteCommand, ResultVerdict

log = logging.getLogger(__name__)

CHANNEL: Final = "mqtt"
POLL_INTERVAL_S: Final = 0.05  # how often queued commands are looked for (the contract's ~50 ms)
EXPIRE_INTERVAL_S: Final = 1.0
DISPATCH_BATCH: Final = 200  # commands taken per poll at most
WORKERS: Final = 4  # store writes (mark_sent, record_result) in flight at once


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A command to publish: where, the signed payload, and its id (for ``mark_sent``)."""

    topic: str
    payload: bytes
    command_id: str
    vehicle_id: str


class MqttCommandDispatcher:
    """Queued commands out to online cars, the cars' results in; ``counts`` tallies every outcome."""

    def __init__(
        self,
        commands: CommandService,
        topics: MqttTopics,
        clock: Callable[[], int],
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        expire_interval_s: float = EXPIRE_INTERVAL_S,
    ) -> None:
        self._commands = commands
        self.topics = topics
        self._clock = clock
        self._poll_s = poll_interval_s
        self._expire_s = expire_interval_s
        self.online: dict[str, bool] = {}
        self.counts: Counter[str] = Counter()

    @property
    def results_filter(self) -> str:
        """Every car's command results topic."""
        return f"{self.topics.prefix}/v1/+/command_results"

    def commands_topic(self, vehicle_id: str) -> str:
        """Where a car reads its commands."""
        return f"{self.topics.prefix}/v1/{vehicle_id}/commands"

    def _vehicle_of(self, topic: str, kind: str) -> str | None:
        head, tail = f"{self.topics.prefix}/v1/", f"/{kind}"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        vehicle_id = topic[len(head) : -len(tail)]
        return vehicle_id if vehicle_id and "/" not in vehicle_id else None

    def handle_status(self, topic: str, payload: bytes) -> None:
        """Note a car's retained ``online``/``offline``."""
        vehicle_id = self._vehicle_of(topic, "status")
        value = STATUS_VALUES.get(payload.decode("utf-8", "replace").strip().lower())
        if vehicle_id is not None and value is not None:
            self.online[vehicle_id] = value

    def due(self, in_flight: frozenset[str] = frozenset()) -> list[Outgoing]:
        """The queued commands of the cars online now, but those ``in_flight`` (blocking: reads the store)."""
        online = sorted(v for v, up in self.online.items() if up)
        if not online:
            return []
        due: list[RemoteCommand] = self._commands.due_for_dispatch(self._clock(), DISPATCH_BATCH, online)
        return [
            Outgoing(self.commands_topic(c.vehicle_id), encode(c.signed), c.command_id, c.vehicle_id)
            for c in due
            # asked for online cars only, but a car may have dropped since; one being marked sent is out
            if self.online.get(c.vehicle_id) and c.command_id not in in_flight
        ]

    def mark_sent(self, command_id: str) -> None:
        """Record a published command as sent (blocking)."""
        if self._commands.mark_sent(command_id, self._clock(), CHANNEL):
            self.counts["sent"] += 1
        else:  # expired or otherwise moved on between the poll and the publish
            self.counts["sent but no longer queued"] += 1

    def expire(self) -> None:
        """Expire every command past its expiry (blocking)."""
        self.counts["expired"] += self._commands.expire_due(self._clock())

    def handle_result(self, topic: str, payload: bytes) -> ResultVerdict | None:
        """Record one car's answer (blocking); None if it was not an answer at all (logged and counted)."""
        vehicle_id = self._vehicle_of(topic, "command_results")
        if vehicle_id is None:
            self.counts["result on an unknown topic"] += 1
            log.warning("command result on %r refused: not a command_results topic", topic)
            return None
        try:
            result = decode_result(payload)
        except (ValueError, UnicodeDecodeError) as error:
            self.counts["result malformed"] += 1
            log.warning("command result from %s refused (malformed): %s", vehicle_id, str(error)[:200])
            return None
        verdict = self._commands.record_result(result, reporting_vehicle_id=vehicle_id, now_ms=self._clock())
        self.counts[f"result {verdict.value}"] += 1
        return verdict

    async def run(
        self, connection: MqttConnection, stop: asyncio.Event, *, connected: asyncio.Event | None = None
    ) -> None:
        """Dispatch and listen until ``stop`` is set, reconnecting with a doubling back-off on any loss."""

        def count_loss() -> None:
            self.counts["reconnects"] += 1

        try:
            await run_reconnecting(
                self._session, connection, stop, connected, count_loss, log, "mqtt commands"
            )
        finally:
            log.info("mqtt commands stopped: %s", dict(self.counts))

    async def _session(
        self, connection: MqttConnection, stopping: asyncio.Future[Any], connected: asyncio.Event | None
    ) -> None:
        client = connection.client("-commands")
        client._client.manual_ack_set(True)  # a result is acknowledged once it is recorded
        async with client:
            await client.subscribe(self.topics.status_filter, qos=1)
            await client.subscribe(self.results_filter, qos=1)
            log.info("mqtt commands: dispatching and listening under %r", self.topics.prefix)
            if connected is not None:
                connected.set()
            session = _Pipeline(self, client)
            messages = aiter(client.messages)
            receiving: asyncio.Future[aiomqtt.Message] = asyncio.ensure_future(anext(messages))
            next_poll = next_expiry = time.monotonic()
            try:
                while not stopping.done():
                    session.raise_failure()
                    wait_s = max(min(next_poll, next_expiry) - time.monotonic(), 0.0)
                    await asyncio.wait(
                        {receiving, stopping}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receiving.done():
                        session.take(receiving.result())
                        receiving = asyncio.ensure_future(anext(messages))
                    now = time.monotonic()
                    if now >= next_expiry:
                        await asyncio.to_thread(self.expire)
                        next_expiry = now + self._expire_s
                    if now >= next_poll and not stopping.done():
                        session.dispatch()
                        next_poll = time.monotonic() + self._poll_s
                session.raise_failure()
            finally:
                receiving.cancel()
                await session.drain()


class _Pipeline:
    """One session's work in flight: results recorded and commands marked sent in parallel threads.

    The store's writes take tens of ms each; one after another they would cap the dispatcher at a few dozen
    commands a second. A result waits for its own command's ``mark_sent`` (so it is never taken for a
    command still ``queued``); a command being marked is not dispatched again; results are acknowledged
    (PUBACK) in the order they arrived, as MQTT 3.1.1 (4.6) asks, each only once it is recorded.
    """

    def __init__(self, dispatcher: MqttCommandDispatcher, client: aiomqtt.Client) -> None:
        self._dispatcher = dispatcher
        self._client = client
        self._slots = asyncio.Semaphore(WORKERS)
        self._acks: deque[list[Any]] = deque()  # [mid, qos, recorded] in arrival order
        self._marking: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dispatching = False
        self._failed: asyncio.Task[None] | None = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)

        def finished(done: asyncio.Task[None]) -> None:
            self._tasks.discard(done)
            if not done.cancelled() and done.exception() is not None and self._failed is None:
                self._failed = done

        task.add_done_callback(finished)
        return task

    def raise_failure(self) -> None:
        """Raise what a piece of work in flight failed with (a lost broker or store ends the session)."""
        if self._failed is not None:
            self._failed.result()  # raises the task's exception

    def take(self, message: aiomqtt.Message) -> None:
        """Handle one message: a status at once, a result in a worker thread."""
        entry = [message.mid, message.qos, False]
        self._acks.append(entry)
        topic = str(message.topic)
        payload = bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
        if topic.endswith("/status"):
            self._dispatcher.handle_status(topic, payload)
            self._recorded(entry)
        else:
            self._spawn(self._result(topic, payload, entry))

    async def _result(self, topic: str, payload: bytes, entry: list[Any]) -> None:
        # A malformed result is refused, with its reason, in handle_result.
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            marking = self._marking.get(decode_result(payload).command_id)
            if marking is not None:
                await asyncio.wait({marking})
        async with self._slots:
            await asyncio.to_thread(self._dispatcher.handle_result, topic, payload)
        self._recorded(entry)

    def _recorded(self, entry: list[Any]) -> None:
        entry[2] = True
        while self._acks and self._acks[0][2]:
            mid, qos, _ = self._acks.popleft()
            if qos > 0:
                self._client._client.ack(mid, qos)

    def dispatch(self) -> None:
        """Publish the due commands (one poll at a time); each is marked sent once the broker took it."""
        if not self._dispatching:
            self._dispatching = True
            self._spawn(self._dispatch())

    async def _dispatch(self) -> None:
        try:
            due = await asyncio.to_thread(self._dispatcher.due, frozenset(self._marking))
            for outgoing in due:  # registered before any of their results can be taken
                self._marking[outgoing.command_id] = self._spawn(self._send(outgoing))
        finally:
            self._dispatching = False

    async def _send(self, outgoing: Outgoing) -> None:
        """Publish one command, then mark it sent (the broker has it: PUBACK)."""
        try:
            await self._client.publish(outgoing.topic, outgoing.payload, qos=1)
            async with self._slots:
                await asyncio.to_thread(self._dispatcher.mark_sent, outgoing.command_id)
        finally:
            self._marking.pop(outgoing.command_id, None)

    async def drain(self) -> None:
        """Let the work in flight finish (a result taken is recorded, a command published is marked)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=30)
