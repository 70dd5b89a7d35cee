"""The quarantine: every refused record, verbatim, with its reason, source and receive time."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine, select, update

from microfleet.services.quarantine import QuarantineEntry
from microfleet.store.schema import quarantine

# What an entry shows: every column but the idempotency key, which is the store's business only.
_ENTRY_COLUMNS = tuple(c for c in quarantine.c if c.name != "dedup_key")


class QuarantineStore:
    """List quarantined records and mark them replayed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
        query = select(*_ENTRY_COLUMNS).where(quarantine.c.quarantine_id > after_id)
        if vehicle_ids is not None:
            # By the credential that sent it, never the vehicle a record names: a device may post under
            # any id, and its raw payload (positions included) belongs to the sender's people only.
            query = query.where(quarantine.c.credential_vehicle_id.in_(list(vehicle_ids)))
        if reason is not None:
            query = query.where(quarantine.c.reason == reason)
        if not include_replayed:
            query = query.where(quarantine.c.replayed_at_ms.is_(None))
        query = query.order_by(quarantine.c.quarantine_id).limit(limit)
        with self._engine.connect() as conn:
            return [QuarantineEntry(**row._mapping) for row in conn.execute(query)]

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
