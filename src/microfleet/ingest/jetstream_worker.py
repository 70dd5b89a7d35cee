"""``microfleet ingest-worker``: stores the batches adapters published to JetStream, and derives history.

Each partition of the stream has one durable pull consumer. A worker consumes only the partitions it holds
a lease on (:mod:`microfleet.ingest.partition_leases`), so N workers share the partitions, and each
partition is consumed by one worker at a time. A batch is handed to the ingest service under the
credential and arrival time the adapter recorded (the fetches of all the worker's partitions that wait
while a commit runs are stored together in the next one: :meth:`IngestWorker.handle_many`), and
acknowledged only after the store committed it: a worker killed before that leaves it unacknowledged,
and JetStream delivers it again (after ``ack_wait_s``) to whichever worker holds the partition then; the
store's key ``(vehicle_id, ts_ms)`` makes that second delivery a duplicate. A message that is not an
adapter's batch (headers missing or wrong) is quarantined whole as ``undecodable_message`` with its
source, then acknowledged.

History derivation: the store marks a car stale in the transaction that stores its records (as on one
machine); a worker derives only stale cars whose partition it holds, claimed by
:meth:`claim_stale_of`. Two workers never hold the same partition's lease at once, and a worker stops
claiming a partition's cars ``lease_s / 3`` before its lease could run out, so one car's derivation runs on
one worker at a time. (The store's claim alone would not do it: it hands each stale mark to one claimer,
but a car marked again while one worker derives it could be claimed by another.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.kv import KeyValue

from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.validation import storable_text
from microfleet.errors import StoreUnavailableError
from microfleet.ingest.jetstream import (
    HEADER_MSG_ID,
    HEADER_SOURCE,
    NATS_LOST,
    SOURCE_MAX_CHARS,
    Committed,
    Envelope,
    JetStreamConfig,
    connect,
    ensure_stream,
    partition_of,
    read_envelope,
    sleep_unless,
    wall_ms,
)
from microfleet.ingest.partition_leases import OwnedStale, PartitionLeases, StaleByVehicle, lease_bucket
from microfleet.services.derivation import DerivationQueue, HistoryDeriver
from microfleet.services.ingest import BatchInput, IngestReport, IngestService

log = logging.getLogger(__name__)

FETCH_BATCH = 64  # messages asked for at once per partition
GROUP_MAX_RECORDS = 5_000  # one car's records stored in one ingest call at most (below the batch limit)
COMMIT_MAX_RECORDS = 20_000  # records of all cars of a fetch stored in one transaction at most
NDJSON = "application/x-ndjson"
MAX_ACK_PENDING = 1_000  # messages of one partition delivered and not yet acknowledged, at most


@dataclass(slots=True)
class WorkerCounters:
    """What a worker did since it started (logged when it stops)."""

    messages: int = 0
    records_accepted: int = 0
    records_duplicate: int = 0
    records_rejected: int = 0
    messages_quarantined: int = 0  # messages that were not an adapter's batch
    redeliveries: int = 0  # messages delivered more than once (a worker died or was too slow)
    store_retries: int = 0
    derived_cars: int = 0


@dataclass(slots=True)
class _Fetched:
    """One partition's fetch waiting for the committer, and where its per-message outcome goes."""

    messages: list[Msg]
    done: asyncio.Future[list[Committed | None]]


class IngestWorker:
    """Consumes the partitions it holds, stores each batch exactly once, derives its cars' history."""

    def __init__(
        self,
        ingest: IngestService,
        config: JetStreamConfig,
        stale: StaleByVehicle,
        deriver: HistoryDeriver | None,
        *,
        worker_id: str,
        derive_interval_s: float,
        clock: Callable[[], int],
    ) -> None:
        self._ingest = ingest
        self.config = config
        self.worker_id = worker_id
        self._clock = clock
        self._derive_interval_s = derive_interval_s
        self._owned: frozenset[int] = frozenset()
        self._releasing: frozenset[int] = frozenset()  # partitions being given back
        self.derivations = (
            DerivationQueue(deriver, OwnedStale(stale, self.owns), interval_s=derive_interval_s)
            if deriver is not None and derive_interval_s > 0
            else None
        )
        self.counters = WorkerCounters()
        self.leases: PartitionLeases | None = None
        self._commits: asyncio.Queue[_Fetched | None] = asyncio.Queue()

    def owns(self, vehicle_id: str) -> bool:
        """Whether this worker holds the vehicle's partition now (it may derive the car)."""
        if self.leases is None:
            return False
        partition = partition_of(vehicle_id, self.config.partitions)
        return partition in self.leases.valid() and partition not in self._releasing

    def handle(self, subject: str, headers: dict[str, str] | None, payload: bytes) -> Committed:
        """Store one message (blocking: the store commits); what to announce once it is acknowledged.

        A message that is not an adapter's batch, or that the ingest refuses whole (more records than
        ``MICROFLEET_INGEST_MAX_BATCH_RECORDS``), is quarantined whole; a lost store raises.
        """
        self.counters.messages += 1
        headers = headers or {}
        envelope = read_envelope(headers)
        if isinstance(envelope, str):
            return self._quarantine(subject, headers, payload, f"not an adapter's batch: {envelope}")
        try:
            report = self._ingest.ingest(
                payload,
                envelope.content_type,
                credential_vehicle_id=envelope.vehicle_id,
                source=envelope.source,
                now_ms=envelope.received_at_ms,
            )
        except StoreUnavailableError:
            raise
        except Exception as exc:  # refused whole, or a bug: kept in quarantine, never redelivered for ever
            detail = f"the worker could not ingest it: {type(exc).__name__}: {exc}"
            return self._quarantine(subject, headers, payload, detail)
        self._count(report)
        return Committed(
            headers.get(HEADER_MSG_ID, ""),
            envelope.vehicle_id,
            report.accepted,
            report.duplicate,
            report.rejected,
            envelope.received_at_ms,
            wall_ms(),
        )

    def _quarantine(self, subject: str, headers: dict[str, str], payload: bytes, detail: str) -> Committed:
        self.counters.messages_quarantined += 1
        source = (headers.get(HEADER_SOURCE) or f"jetstream {subject}")[:SOURCE_MAX_CHARS]
        log.warning("message on %s quarantined (undecodable_message): %s", subject, detail)
        self._ingest.refuse(
            storable_text(payload.decode("utf-8", "surrogateescape")),
            RejectionReason.UNDECODABLE_MESSAGE,
            detail,
            credential_vehicle_id=None,
            source=source,
            now_ms=self._clock(),
        )
        return Committed(headers.get(HEADER_MSG_ID, ""), None, 0, 0, 1, None, wall_ms())

    def _count(self, report: IngestReport) -> None:
        self.counters.records_accepted += report.accepted
        self.counters.records_duplicate += report.duplicate
        self.counters.records_rejected += report.rejected

    def handle_many(self, messages: Sequence[Msg]) -> list[Committed | None]:
        """Store fetched messages; each one's announcement, None for those left for redelivery.

        One car's NDJSON batches from one source are joined into one body of up to
        :data:`GROUP_MAX_RECORDS` records (in their order; judged against the latest arrival time among
        them), a JSON array is a body of its own, and the bodies of every car are stored in one
        transaction of up to :data:`COMMIT_MAX_RECORDS` records (:meth:`IngestService.ingest_batches`),
        so the messages cost one commit, not one per car or per message. If that commit fails (a body
        refused whole, a record the store cannot take), each car's body is stored on its own, and a
        refused one message by message, so only the bad message is quarantined. A lost store stops the
        work: what is not stored is not acknowledged.
        """
        done: list[Committed | None] = [None] * len(messages)
        groups: dict[tuple[str, str, int], list[list[tuple[int, Envelope, int]]]] = {}
        alone: list[int] = []
        for index, message in enumerate(messages):
            if message.metadata.num_delivered > 1:
                self.counters.redeliveries += 1
            envelope = read_envelope(message.headers)
            if isinstance(envelope, str):
                alone.append(index)
                continue
            if envelope.content_type != NDJSON:  # a JSON array: a run of its own (arrays do not join)
                groups[(envelope.vehicle_id, envelope.source, index)] = [
                    [(index, envelope, message.data.count(b"{"))]  # at most this many records
                ]
                continue
            lines = sum(1 for line in message.data.split(b"\n") if line.strip())
            runs = groups.setdefault((envelope.vehicle_id, envelope.source, -1), [[]])
            if sum(n for _, _, n in runs[-1]) + lines > GROUP_MAX_RECORDS:
                runs.append([])
            runs[-1].append((index, envelope, lines))
        try:
            for index in alone:
                done[index] = self.handle(
                    messages[index].subject, messages[index].headers, messages[index].data
                )
            commit: list[list[tuple[int, Envelope, int]]] = []
            for run in (run for runs in groups.values() for run in runs):
                if commit and sum(n for r in commit for _, _, n in r) + sum(n for _, _, n in run) > (
                    COMMIT_MAX_RECORDS
                ):
                    self._handle_runs(messages, commit, done)
                    commit = []
                commit.append(run)
            if commit:
                self._handle_runs(messages, commit, done)
        except StoreUnavailableError as exc:
            self.counters.store_retries += 1
            left = sum(d is None for d in done)
            log.warning("store unavailable (%s); %d message(s) left for redelivery", exc, left)
        return done

    def _handle_runs(
        self,
        messages: Sequence[Msg],
        runs: list[list[tuple[int, Envelope, int]]],
        done: list[Committed | None],
    ) -> None:
        """Store several cars' runs of NDJSON batches in one transaction, or run by run if that fails."""
        if len(runs) == 1:
            self._handle_run(messages, runs[0], done)
            return
        inputs = [
            BatchInput(
                b"\n".join(messages[index].data for index, _, _ in run),
                run[0][1].content_type,  # NDJSON, or a run of one JSON array
                run[0][1].vehicle_id,
                run[0][1].source,
                max(envelope.received_at_ms for _, envelope, _ in run),
            )
            for run in runs
        ]
        try:
            reports = self._ingest.ingest_batches(inputs)
        except StoreUnavailableError:
            raise
        except Exception as exc:  # one body spoils the transaction: each run on its own, nothing lost
            log.warning("a commit of %d cars' batches failed (%s); storing car by car", len(runs), exc)
            for run in runs:
                self._handle_run(messages, run, done)
            return
        committed_ms = wall_ms()
        for run, report in zip(runs, reports, strict=True):
            self._announce_run(messages, run, report, done, committed_ms)

    def _handle_run(
        self, messages: Sequence[Msg], run: list[tuple[int, Envelope, int]], done: list[Committed | None]
    ) -> None:
        """Store one car's run of NDJSON batches in one ingest call, or one by one if it is refused whole."""
        if len(run) == 1:
            index = run[0][0]
            done[index] = self.handle(messages[index].subject, messages[index].headers, messages[index].data)
            return
        first = run[0][1]
        body = b"\n".join(messages[index].data for index, _, _ in run)
        received_ms = max(envelope.received_at_ms for _, envelope, _ in run)
        try:
            report = self._ingest.ingest(
                body, NDJSON, credential_vehicle_id=first.vehicle_id, source=first.source, now_ms=received_ms
            )
        except StoreUnavailableError:
            raise
        except Exception:  # refused whole: each message on its own, so only the bad one is quarantined
            for index, _, _ in run:
                done[index] = self.handle(
                    messages[index].subject, messages[index].headers, messages[index].data
                )
            return
        self._announce_run(messages, run, report, done, wall_ms())

    def _announce_run(
        self,
        messages: Sequence[Msg],
        run: list[tuple[int, Envelope, int]],
        report: IngestReport,
        done: list[Committed | None],
        committed_ms: int,
    ) -> None:
        """Split a stored run's report back into its messages' announcements."""
        self.counters.messages += len(run)
        self._count(report)
        if len(run) == 1:  # the whole report is the message's (a JSON array's records are not lines)
            index, envelope, _ = run[0]
            done[index] = Committed(
                (messages[index].headers or {}).get(HEADER_MSG_ID, ""),
                envelope.vehicle_id,
                report.accepted,
                report.duplicate,
                report.rejected,
                envelope.received_at_ms,
                committed_ms,
            )
            return
        start = 0
        by_index = [0] * sum(lines for _, _, lines in run)
        for result in report.results:
            if result.index < len(by_index):
                by_index[result.index] = {"accepted": 0, "duplicate": 1, "rejected": 2}[result.status]
        for index, envelope, lines in run:
            statuses = by_index[start : start + lines]
            start += lines
            done[index] = Committed(
                (messages[index].headers or {}).get(HEADER_MSG_ID, ""),
                envelope.vehicle_id,
                statuses.count(0),
                statuses.count(1),
                statuses.count(2),
                envelope.received_at_ms,
                committed_ms,
            )

    async def run(self, stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
        """Take partitions, consume and derive until ``stop`` is set; then release the partitions."""
        nc = await connect(self.config, stop)
        if nc is None:
            return
        consumers: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        deriving = asyncio.Lock()
        derive_task: asyncio.Task[None] | None = None
        committer: asyncio.Task[None] | None = None
        commits: asyncio.Queue[_Fetched | None] = asyncio.Queue()
        self._commits = commits
        giving_back: asyncio.Task[None] | None = None
        try:
            js = nc.jetstream(timeout=5.0)
            kv = await self._setup(js, stop)
            if kv is None:
                return
            self.leases = leases = PartitionLeases(
                kv, self.config.partitions, self.config.lease_s, self.worker_id
            )
            derive_task = asyncio.create_task(self._derive_loop(stop, deriving))
            committer = asyncio.create_task(self._committer(commits))
            while not stop.is_set():
                try:
                    await leases.renew()
                    over = await leases.balance()
                    if over and (giving_back is None or giving_back.done()):
                        self._releasing = frozenset(over)
                        giving_back = asyncio.create_task(self._give_back(over, consumers, deriving))
                except NATS_LOST as exc:
                    log.warning("worker %s could not renew its leases (%s)", self.worker_id, exc)
                self._owned = leases.valid() - self._releasing
                for partition, (halt, task) in list(consumers.items()):
                    if task.done():
                        del consumers[partition]
                    elif partition not in self._owned:
                        halt.set()  # it stops after the batches in hand, without holding up renewals
                for partition in sorted(self._owned - consumers.keys()):
                    halt = asyncio.Event()
                    task = asyncio.create_task(self._consume(nc, js, partition, halt))
                    consumers[partition] = (halt, task)
                if ready is not None and self._owned:
                    ready.set()
                await sleep_unless(self.config.lease_s / 3, stop)
        finally:
            if giving_back is not None:
                await giving_back
            await self._stop_consumers(consumers, list(consumers))
            if committer is not None:
                commits.put_nowait(None)
                await committer
            if derive_task is not None:
                await derive_task
            if self.leases is not None and nc.is_connected:
                async with deriving:
                    await self.leases.leave()
            with contextlib.suppress(Exception):
                await nc.close()
            log.info("ingest worker %s stopped: %s", self.worker_id, self.counters)

    async def _setup(self, js: JetStreamContext, stop: asyncio.Event) -> KeyValue | None:
        """The stream, one durable consumer per partition and the lease bucket, retried until NATS answers."""
        delay_s = self.config.reconnect_first_s
        while not stop.is_set():
            try:
                await ensure_stream(js, self.config)
                for partition in range(self.config.partitions):
                    await self._ensure_consumer(js, partition)
                return await lease_bucket(
                    js, self.config.lease_bucket, self.config.lease_s, self.config.replicas
                )
            except NATS_LOST as exc:
                log.warning("jetstream not ready (%s); retrying in %.1f s", exc, delay_s)
                await sleep_unless(delay_s, stop)
                delay_s = min(delay_s * 2, self.config.reconnect_max_s)
        return None

    async def _ensure_consumer(self, js: JetStreamContext, partition: int) -> None:
        name = self.config.consumer(partition)
        try:
            await js.consumer_info(self.config.stream, name)
            return
        except NatsError:
            pass
        await js.add_consumer(
            self.config.stream,
            ConsumerConfig(
                durable_name=name,
                filter_subject=self.config.subject(partition),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.config.ack_wait_s,
                max_ack_pending=MAX_ACK_PENDING,
                max_deliver=-1,
            ),
        )

    async def _consume(
        self, nc: NatsClient, js: JetStreamContext, partition: int, halt: asyncio.Event
    ) -> None:
        """Fetch, store and acknowledge one partition's batches until ``halt`` is set."""
        delay_s = self.config.reconnect_first_s
        subscription = None
        while not halt.is_set():
            try:
                if subscription is None:
                    subscription = await js.pull_subscribe_bind(
                        durable=self.config.consumer(partition), stream=self.config.stream
                    )
                messages = await subscription.fetch(FETCH_BATCH, timeout=1.0)
            except TimeoutError:  # nothing to fetch (nats' own TimeoutError is one too)
                continue
            except NATS_LOST as exc:
                log.warning("partition %d: fetching failed (%s); again in %.1f s", partition, exc, delay_s)
                await sleep_unless(delay_s, halt)
                delay_s = min(delay_s * 2, self.config.reconnect_max_s)
                continue
            fetched = _Fetched(list(messages), asyncio.get_running_loop().create_future())
            self._commits.put_nowait(fetched)
            try:
                done = await fetched.done
            except Exception:  # logged by the committer; nothing of this fetch acknowledged
                done = [None] * len(messages)
            for message, committed in zip(messages, done, strict=True):
                if committed is None:
                    continue  # not stored: delivered again after ack_wait
                with contextlib.suppress(*NATS_LOST):  # unacknowledged: delivered again
                    await message.ack()
                    await nc.publish(self.config.committed_subject(partition), msgspec.json.encode(committed))
            if None in done:  # the store is away: wait, the rest comes back after ack_wait
                await sleep_unless(delay_s, halt)
                delay_s = min(delay_s * 2, self.config.reconnect_max_s)
            else:
                delay_s = self.config.reconnect_first_s
        if subscription is not None:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _committer(self, commits: asyncio.Queue[_Fetched | None]) -> None:
        """Store the fetches of every partition: all those that arrived while the last commit ran, in one.

        A group commit: with one fetch waiting it is stored at once, and the fetches that queue up while a
        commit runs (of this worker's other partitions) share the next transaction, so a steady stream of
        small fetches costs one commit per round, not one per fetch. Returns at ``None``.
        """
        while True:
            first = await commits.get()
            if first is None:
                return
            batch = [first]
            stop_after = False
            while not commits.empty():
                more = commits.get_nowait()
                if more is None:
                    stop_after = True
                    break
                batch.append(more)
            messages = [message for fetched in batch for message in fetched.messages]
            try:
                done = await asyncio.to_thread(self.handle_many, messages)
            except Exception as exc:  # a bug: nothing acknowledged, every message delivered again
                log.exception("storing %d message(s) failed", len(messages))
                for fetched in batch:
                    fetched.done.set_exception(exc)
                continue
            start = 0
            for fetched in batch:
                fetched.done.set_result(done[start : start + len(fetched.messages)])
                start += len(fetched.messages)
            if stop_after:
                return

    async def _give_back(
        self,
        partitions: list[int],
        consumers: dict[int, tuple[asyncio.Event, asyncio.Task[None]]],
        deriving: asyncio.Lock,
    ) -> None:
        """Give partitions over the fair share back: after the derivation round and their batches in hand."""
        try:
            async with deriving:  # never give a partition away while deriving its cars
                await self._stop_consumers(consumers, partitions)
                assert self.leases is not None
                await self.leases.release(partitions)
        except NATS_LOST as exc:
            log.warning("worker %s could not give partitions back (%s); they run out", self.worker_id, exc)
        finally:
            self._releasing = frozenset()

    @staticmethod
    async def _stop_consumers(
        consumers: dict[int, tuple[asyncio.Event, asyncio.Task[None]]], partitions: list[int]
    ) -> None:
        for partition in partitions:
            entry = consumers.pop(partition, None)
            if entry is not None:
                entry[0].set()
                await entry[1]

    async def _derive_loop(self, stop: asyncio.Event, deriving: asyncio.Lock) -> None:
        """Every ``derive_interval_s``: derive this worker's stale cars, a round at a time under the lock."""
        queue = self.derivations
        if queue is None:
            return
        while not stop.is_set():
            await sleep_unless(self._derive_interval_s, stop)
            if stop.is_set():
                return
            async with deriving:
                try:
                    reports = await asyncio.to_thread(queue.run_pending)
                except Exception:  # the store briefly away: next round
                    log.exception("a derivation round failed; retrying in %.0f s", self._derive_interval_s)
                    continue
            self.counters.derived_cars += len(reports)
