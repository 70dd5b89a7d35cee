"""The live feed's event log in the store: one table every process appends to and every API process reads.

Events are numbered by ``event_id`` in the order their transactions commit, so a reader that has seen id
``n`` has seen every earlier event: SQLite has one writer at a time; on PostgreSQL an append takes a
transaction-level advisory lock that is held until its commit, so ids are drawn in commit order (the price:
appending transactions commit one after another, docs/live.md). :class:`LiveEventStore` implements
:class:`microfleet.services.live.LiveEventLog`; :meth:`LiveEventStore.append_in` appends inside a
transaction another store opened (telemetry, commands, alerts), so what is announced is what was committed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
)

from microfleet.errors import StoreUnavailableError
from microfleet.services.live import LiveEvent, Signals, StoredLiveEvent, telemetry_event
from microfleet.store.schema import metadata, vehicle_latest_signals

live_events = Table(
    "live_events",
    metadata,
    # INTEGER on SQLite so the key is the rowid; AUTOINCREMENT so a pruned id is never drawn again.
    Column("event_id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_live_events_created_at_ms", "created_at_ms"),
    sqlite_autoincrement=True,
)

log = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for "drawing live event ids": any fixed 64-bit number no other lock uses.
_APPEND_LOCK_KEY = 0x6C697665_6576656E  # "liveeven"


# Read once per stored batch: built once, with an expanding parameter for the batch's vehicles.
_LATEST_SIGNALS_OF = select(
    vehicle_latest_signals.c.vehicle_id,
    vehicle_latest_signals.c.signal,
    vehicle_latest_signals.c.ts_ms,
    vehicle_latest_signals.c.value_json,
).where(vehicle_latest_signals.c.vehicle_id.in_(bindparam("vehicle_ids", expanding=True)))


class LiveEventStore:
    """The ``live_events`` table: append, read after an id, prune by age."""

    def __init__(
        self,
        engine: Engine,
        *,
        window_ms: int,
        prune_every_ms: int = 10_000,
        write_lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._window_ms = window_ms
        self._prune_every_ms = prune_every_ms
        self._next_prune_ms: int | None = None
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    def append_in(self, conn: Connection, events: Sequence[LiveEvent], now_ms: int) -> None:
        """Append ``events`` inside the caller's transaction; call it last, just before the commit."""
        if not events:
            return
        if self._postgres:  # held to the commit: ids are drawn in commit order (see the module's docstring)
            conn.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK_KEY)))
        conn.execute(
            insert(live_events),
            [
                {
                    "vehicle_id": e.vehicle_id,
                    "kind": e.kind,
                    "ts_ms": e.ts_ms,
                    "created_at_ms": now_ms,
                    "payload": json.dumps(e.payload, separators=(",", ":"), allow_nan=False),
                }
                for e in events
            ],
        )

    def telemetry_events(self, conn: Connection, newest: Mapping[str, Signals]) -> list[LiveEvent]:
        """One event per vehicle of a batch about to be committed: its newer fix and changed signals.

        ``newest`` is each vehicle's newest value of every signal in the batch (``newest_signals``).
        Reads the vehicles' latest state, so call it before the batch updates that state.
        """
        previous: dict[str, dict[str, tuple[int, str]]] = {v: {} for v in newest}
        rows = conn.execute(_LATEST_SIGNALS_OF, {"vehicle_ids": list(newest)})
        for vehicle_id, signal, ts_ms, value_json in rows:
            previous[vehicle_id][signal] = (ts_ms, value_json)
        events = []
        for vehicle_id, signals in newest.items():
            event = telemetry_event(vehicle_id, signals, previous[vehicle_id])
            if event is not None:
                events.append(event)
        return events

    def append(self, events: Sequence[LiveEvent], now_ms: int) -> None:
        """Append ``events`` in a transaction of their own."""
        if not events:
            return
        with self._write_lock, self._engine.begin() as conn:
            self.append_in(conn, events, now_ms)
        self.prune_if_due(now_ms)

    def after(self, event_id: int, limit: int) -> list[StoredLiveEvent]:
        """Up to ``limit`` events with an id above ``event_id``, oldest first."""
        query = (
            select(live_events)
            .where(live_events.c.event_id > event_id)
            .order_by(live_events.c.event_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [
                StoredLiveEvent(r.event_id, r.vehicle_id, r.kind, r.ts_ms, r.created_at_ms, r.payload)
                for r in conn.execute(query)
            ]

    def bounds(self) -> tuple[int, int] | None:
        """The oldest and the newest event id held; None while the log is empty."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(func.min(live_events.c.event_id), func.max(live_events.c.event_id))
            ).one()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def prune(self, before_ms: int) -> int:
        """Delete the events created before ``before_ms``, always keeping the newest; returns how many."""
        newest = select(func.max(live_events.c.event_id)).scalar_subquery()
        with self._write_lock, self._engine.begin() as conn:
            deleted = conn.execute(
                delete(live_events).where(
                    live_events.c.created_at_ms < before_ms, live_events.c.event_id < newest
                )
            ).rowcount
        return int(deleted)

    def prune_if_due(self, now_ms: int) -> None:
        """Prune events older than the resume window, at most once per ``prune_every_ms`` of ``now_ms``."""
        if self._next_prune_ms is not None and now_ms < self._next_prune_ms:
            return
        self._next_prune_ms = now_ms + self._prune_every_ms
        try:
            self.prune(now_ms - self._window_ms)
        except StoreUnavailableError as exc:  # best effort, after the caller's commit: never fail it
            log.warning("pruning live events failed (retried in %d s): %s", self._prune_every_ms // 1000, exc)
