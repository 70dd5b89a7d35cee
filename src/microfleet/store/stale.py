"""Marking cars whose derived history must be derived again because their context changed.

A place or a tariff changes what every drive and charge of the cars it applies to is named and costs,
without any new record: such a car is marked with :data:`CONTEXT_CHANGED_MS`, which outranks any record
time (the mark keeps the earliest), and the deriver derives its whole history again instead of a window.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from microfleet.domain.derivation import CONTEXT_CHANGED_MS
from microfleet.store.schema import history_stale


def mark_context_changed(conn: Connection, vehicle_ids: Sequence[str]) -> None:
    """Mark these cars for a whole re-derivation, in the caller's transaction."""
    if not vehicle_ids:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    upsert = insert(history_stale).on_conflict_do_update(
        index_elements=["vehicle_id"], set_={"from_ms": CONTEXT_CHANGED_MS}
    )
    conn.execute(upsert, [{"vehicle_id": v, "from_ms": CONTEXT_CHANGED_MS} for v in vehicle_ids])
