"""The quarantine: every refused record, verbatim, with its reason, source and receive time."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, Select, func, select, update

from microfleet.services.quarantine import QuarantineEntry, QuarantinePage
from microfleet.store.schema import quarantine

# What an entry shows: every column but the idempotency key, which is the store's business only.
_ENTRY_COLUMNS = tuple(c for c in quarantine.c if c.name != "dedup_key")
_PAGE_CHUNK_ROWS = 100


class QuarantineStore:
    """List quarantined records and mark them replayed."""

    def __init__(
        self, engine: Engine, *, page_max_bytes: int = 1024 * 1024, text_max_bytes: int = 16 * 1024
    ) -> None:
        self._engine = engine
        self._page_max_bytes = page_max_bytes
        self._text_max_bytes = text_max_bytes

    def list(
        self,
        *,
        vehicle_ids: Collection[str] | None,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> list[QuarantineEntry]:
        """Records in arrival order sent with these vehicles' credentials (None: every record, admin)."""
        query = _filtered(select(*_ENTRY_COLUMNS), vehicle_ids, reason, include_replayed)
        query = query.where(quarantine.c.quarantine_id > after_id).order_by(quarantine.c.quarantine_id)
        with self._engine.connect() as conn:
            return [QuarantineEntry(**row._mapping) for row in conn.execute(query.limit(limit))]

    def page(
        self,
        *,
        vehicle_ids: Collection[str] | None,
        reason: str | None = None,
        after_id: int = 0,
        limit: int = 100,
        include_replayed: bool = True,
    ) -> QuarantinePage:
        """A page as :meth:`list` orders them, bounded in rows and in bytes of text (raw text and detail).

        A page ends before the row that would take its texts past ``page_max_bytes`` (it always holds
        one row). Rows are read in chunks with their raw text cut in the query to the per-row cap, so a
        row quarantined before the cap existed never reaches memory whole (its detail says it was cut).
        """
        text_cap = self._text_max_bytes
        columns = [c for c in _ENTRY_COLUMNS if c.name != "raw_text"]
        query = _filtered(
            select(
                *columns,
                func.substr(quarantine.c.raw_text, 1, text_cap).label("raw_text"),
                func.length(quarantine.c.raw_text).label("raw_chars"),
            ),
            vehicle_ids,
            reason,
            include_replayed,
        ).order_by(quarantine.c.quarantine_id)
        items: list[QuarantineEntry] = []
        used = 0
        last_id = after_id
        with self._engine.connect() as conn:
            while True:
                chunk = min(limit + 1 - len(items), _PAGE_CHUNK_ROWS)
                rows = conn.execute(query.where(quarantine.c.quarantine_id > last_id).limit(chunk)).all()
                for row in rows:
                    if len(items) == limit:
                        return QuarantinePage(items, items[-1].quarantine_id)
                    entry = _entry(row._mapping, text_cap)
                    size = len(entry.raw_text.encode()) + len(entry.detail.encode())
                    if items and used + size > self._page_max_bytes:
                        return QuarantinePage(items, items[-1].quarantine_id)
                    items.append(entry)
                    used += size
                if len(rows) < chunk:
                    return QuarantinePage(items, None)
                last_id = rows[-1].quarantine_id

    def get(self, quarantine_id: int) -> QuarantineEntry | None:
        """One quarantined record by id."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(*_ENTRY_COLUMNS).where(quarantine.c.quarantine_id == quarantine_id)
            ).first()
        return QuarantineEntry(**row._mapping) if row else None

    def mark_replayed(self, quarantine_id: int, status: str, at_ms: int) -> None:
        """Record that a quarantined record was replayed and what became of it."""
        with self._engine.begin() as conn:
            conn.execute(
                update(quarantine)
                .where(quarantine.c.quarantine_id == quarantine_id)
                .values(replayed_at_ms=at_ms, replay_status=status)
            )


def _filtered(
    query: Select[Any], vehicle_ids: Collection[str] | None, reason: str | None, include_replayed: bool
) -> Select[Any]:
    if vehicle_ids is not None:
        # By the credential that sent it, never the vehicle a record names: a device may post under
        # any id, and its raw payload (positions included) belongs to the sender's people only.
        query = query.where(quarantine.c.credential_vehicle_id.in_(list(vehicle_ids)))
    if reason is not None:
        query = query.where(quarantine.c.reason == reason)
    if not include_replayed:
        query = query.where(quarantine.c.replayed_at_ms.is_(None))
    return query


def _entry(values: Any, text_cap: int) -> QuarantineEntry:
    fields = dict(values)
    raw_chars = fields.pop("raw_chars")
    entry = QuarantineEntry(**fields)
    if raw_chars is not None and raw_chars > text_cap:  # quarantined before rows were capped
        return replace(
            entry,
            detail=f"{entry.detail} [shown: the first {text_cap} of its {raw_chars} characters]",
        )
    return entry
