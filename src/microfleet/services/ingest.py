"""The ingest use case: validate, dedupe within the batch, then store exactly once.

Every protocol adapter (``microfleet.ingest``) ends here: protocol-v1 bytes go to
:meth:`IngestService.ingest`, records an adapter decoded from its own format to
:meth:`IngestService.ingest_batch`. The service owns
the decisions; the store behind :class:`IngestStore` only executes them in one transaction (records in,
conflicts and rejections to quarantine, latest state updated).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

from microfleet.domain.telemetry import MAX_FUTURE_SKEW_MS, RejectionReason, TelemetryRecord
from microfleet.domain.telemetry_codec import (
    DecodedBatch,
    DecodeLimits,
    decode_batch,
    decode_ndjson,
    encode_record,
)
from microfleet.domain.validation import Rejection, VehicleScope, check_context

ItemStatus = Literal["accepted", "duplicate", "rejected"]


def record_digest(record: TelemetryRecord) -> int:
    """A signed 64-bit digest of the record's canonical encoding (fits a BIGINT column).

    MessagePack of the struct: fields in protocol order, absent signals omitted (so a signal added to v1
    later leaves old digests unchanged), and about twice as fast to produce as JSON.
    """
    digest = hashlib.blake2b(msgspec.msgpack.encode(record), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PendingRecord(msgspec.Struct, frozen=True):
    """A valid record on its way into the store, with its position in the batch and its digest.

    A struct, not a dataclass: one is built per record on the hot path, and msgspec builds it in C
    (0.03 ms per 500 records against a dataclass's 0.17 ms).
    """

    index: int
    record: TelemetryRecord
    digest: int


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    """What the store found: batch positions stored anew, already stored identically, or in conflict."""

    inserted: frozenset[int]
    duplicates: frozenset[int]
    conflicts: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """One request's valid records and rejections on their way into the store, with their origin."""

    records: Sequence[PendingRecord]
    rejections: Sequence[Rejection]
    source: str
    credential_vehicle_id: str | None
    received_at_ms: int


@dataclass(frozen=True, slots=True)
class BatchInput:
    """One protocol-v1 body to ingest, as :meth:`IngestService.ingest` takes it."""

    body: bytes
    content_type: str
    credential_vehicle_id: str
    source: str
    now_ms: int


class IngestStore(Protocol):
    """The store as the ingest service needs it."""

    def commit_batches(self, batches: Sequence[PendingBatch]) -> list[StoreOutcome]:
        """Commit several batches (of any vehicles) in one transaction, each as :meth:`commit_batch` would."""
        ...

    def commit_batch(
        self,
        records: Sequence[PendingRecord],
        rejections: Sequence[Rejection],
        *,
        source: str,
        credential_vehicle_id: str | None,
        received_at_ms: int,
        quarantine_conflicts: bool = True,
    ) -> StoreOutcome:
        """Store new records, quarantine rejections (and conflicts), all in one transaction."""
        ...


class ItemResult(msgspec.Struct, frozen=True):
    """The fate of one record of a batch (a struct: one per record, built and encoded in C)."""

    index: int
    vehicle_id: str | None
    ts_ms: int | None
    status: ItemStatus
    reason: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class IngestReport:
    """Per-record results of one request, in batch order, with totals."""

    results: list[ItemResult] = field(default_factory=list)
    accepted: int = field(init=False)  # records stored anew
    duplicate: int = field(init=False)  # records already stored identically (a re-send)
    rejected: int = field(init=False)  # records refused and kept in quarantine

    def __post_init__(self) -> None:
        statuses = [r.status for r in self.results]
        self.accepted = statuses.count("accepted")
        self.duplicate = statuses.count("duplicate")
        self.rejected = statuses.count("rejected")


def _split_batch_duplicates(
    pending: list[PendingRecord],
) -> tuple[list[PendingRecord], set[int], list[Rejection]]:
    """Keep the first of each key; later identical copies are duplicates, different ones conflicts."""
    if len({item.record.key for item in pending}) == len(pending):  # the usual case: nothing repeats
        return pending, set(), []
    first: dict[tuple[str, int], PendingRecord] = {}
    unique: list[PendingRecord] = []
    duplicates: set[int] = set()
    conflicts: list[Rejection] = []
    for item in pending:
        seen = first.get(item.record.key)
        if seen is None:
            first[item.record.key] = item
            unique.append(item)
        elif seen.digest == item.digest:
            duplicates.add(item.index)
        else:
            conflicts.append(
                Rejection(
                    item.index,
                    RejectionReason.CONFLICTING_DUPLICATE,
                    f"record {item.index}: ts_ms {item.record.ts_ms} appears earlier in this batch "
                    f"(record {seen.index}) with different values",
                    encode_record(item.record).decode(),
                    item.record.vehicle_id,
                    item.record.ts_ms,
                )
            )
    return unique, duplicates, conflicts


class IngestService:
    """Turn a device's request body into stored records and quarantined rejections."""

    def __init__(self, store: IngestStore, limits: DecodeLimits) -> None:
        self._store = store
        self._limits = limits

    def ingest(
        self,
        body: bytes,
        content_type: str,
        *,
        credential_vehicle_id: str,
        source: str,
        now_ms: int,
    ) -> IngestReport:
        """Ingest one protocol-v1 body (JSON array or NDJSON) sent with a vehicle's device credential."""
        decoded = decode_batch(body, content_type, self._limits)
        return self.ingest_batch(
            decoded, credential_vehicle_id=credential_vehicle_id, source=source, now_ms=now_ms
        )

    def ingest_batch(
        self, decoded: DecodedBatch, *, credential_vehicle_id: str, source: str, now_ms: int
    ) -> IngestReport:
        """Ingest records an adapter has decoded (with the items it refused), as :meth:`ingest` does."""
        return self._process(decoded.records, decoded.rejections, credential_vehicle_id, source, now_ms)

    def ingest_batches(self, batches: Sequence[BatchInput]) -> list[IngestReport]:
        """Ingest several bodies, of one or many vehicles, with one store commit; one report per body.

        Each body's records get the verdicts :meth:`ingest` would give them, in order (a record an earlier
        body of the same call stored is a duplicate, or a conflict if it differs). A body refused whole
        (more records than the limit) raises before anything is stored, so the caller can ingest the
        others on their own; a record the store cannot take fails the transaction, and with it the call.
        """
        prepared = [
            self._prepare(
                decode_batch(b.body, b.content_type, self._limits),
                b.credential_vehicle_id,
                b.source,
                b.now_ms,
            )
            for b in batches
        ]
        outcomes = self._store.commit_batches([p.batch for p in prepared])
        return [p.report(outcome) for p, outcome in zip(prepared, outcomes, strict=True)]

    def refuse(
        self,
        raw_text: str,
        reason: RejectionReason,
        detail: str,
        *,
        credential_vehicle_id: str | None,
        source: str,
        now_ms: int,
    ) -> IngestReport:
        """Quarantine a whole message an adapter cannot ingest (an unknown vehicle, an oversize payload)."""
        rejection = Rejection(0, reason, detail, raw_text)
        self._store.commit_batch(
            [], [rejection], source=source, credential_vehicle_id=credential_vehicle_id, received_at_ms=now_ms
        )
        return IngestReport([ItemResult(0, None, None, "rejected", reason.value, rejection.detail)])

    def replay(self, raw_text: str, *, credential_vehicle_id: str, source: str, now_ms: int) -> IngestReport:
        """Run one quarantined record's verbatim text through today's validator and store."""
        decoded = decode_ndjson(raw_text.encode(), self._limits)
        # A record refused again stays where it is: replay never adds a second quarantine row.
        return self._process(
            decoded.records, decoded.rejections, credential_vehicle_id, source, now_ms, requarantine=False
        )

    def _process(
        self,
        records: list[tuple[int, TelemetryRecord]],
        rejections: list[Rejection],
        credential_vehicle_id: str,
        source: str,
        now_ms: int,
        *,
        requarantine: bool = True,
    ) -> IngestReport:
        prepared = self._prepare(
            (records, rejections), credential_vehicle_id, source, now_ms, requarantine=requarantine
        )
        b = prepared.batch
        stored = self._store.commit_batch(
            b.records,
            b.rejections,
            source=source,
            credential_vehicle_id=credential_vehicle_id,
            received_at_ms=now_ms,
            quarantine_conflicts=requarantine,
        )
        return prepared.report(stored)

    @staticmethod
    def _prepare(
        decoded: DecodedBatch | tuple[list[tuple[int, TelemetryRecord]], list[Rejection]],
        credential_vehicle_id: str,
        source: str,
        now_ms: int,
        *,
        requarantine: bool = True,
    ) -> _Prepared:
        """Judge a decoded batch's records in their context; what goes to the store."""
        if isinstance(decoded, DecodedBatch):
            records, rejections = decoded.records, decoded.rejections
        else:
            records, rejections = decoded
        refused = list(rejections)
        latest_allowed_ms = now_ms + MAX_FUTURE_SKEW_MS
        if all(r.vehicle_id == credential_vehicle_id and r.ts_ms <= latest_allowed_ms for _, r in records):
            # The usual batch: the device's own records with a sane clock need no per-record context check.
            pending = [PendingRecord(i, r, record_digest(r)) for i, r in records]
        else:
            scope = VehicleScope(credential_vehicle_id)
            pending = []
            for index, record in records:
                outcome = check_context(record, index, "", now_ms=now_ms, scope=scope)
                if isinstance(outcome, Rejection):
                    refused.append(_with_text(outcome, record))
                else:
                    pending.append(PendingRecord(index, record, record_digest(record)))
        unique, batch_duplicates, batch_conflicts = _split_batch_duplicates(pending)
        refused.extend(batch_conflicts)
        batch = PendingBatch(
            unique, list(refused) if requarantine else [], source, credential_vehicle_id, now_ms
        )
        return _Prepared(batch, pending, refused, batch_duplicates)


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch judged and ready for the store, and what its report needs once the store answered."""

    batch: PendingBatch
    pending: list[PendingRecord]
    refused: list[Rejection]
    batch_duplicates: set[int]

    def report(self, stored: StoreOutcome) -> IngestReport:
        return _report(
            self.pending, [*self.refused, *stored.conflicts], stored.duplicates | self.batch_duplicates
        )


def _with_text(rejection: Rejection, record: TelemetryRecord) -> Rejection:
    if rejection.raw_text:
        return rejection
    return Rejection(
        rejection.index,
        rejection.reason,
        rejection.detail,
        encode_record(record).decode(),
        rejection.vehicle_id,
        rejection.ts_ms,
    )


def _report(
    pending: list[PendingRecord], refused: list[Rejection], duplicates: set[int] | frozenset[int]
) -> IngestReport:
    if not refused and not duplicates:  # the usual case: every record accepted, already in batch order
        return IngestReport(
            [ItemResult(p.index, p.record.vehicle_id, p.record.ts_ms, "accepted") for p in pending]
        )
    results: list[ItemResult] = [
        ItemResult(r.index, r.vehicle_id, r.ts_ms, "rejected", r.reason.value, r.detail) for r in refused
    ]
    rejected_at = {r.index for r in refused}
    for item in pending:
        if item.index in rejected_at:
            continue
        status: ItemStatus = "duplicate" if item.index in duplicates else "accepted"
        results.append(ItemResult(item.index, item.record.vehicle_id, item.record.ts_ms, status))
    results.sort(key=lambda r: r.index)
    return IngestReport(results)
