"""An ingest worker's claim on the stale list: only the cars of the partitions it holds (docs/scale-out.md).

The list itself (``history_stale``) is the one :class:`~microfleet.store.telemetry_store.TelemetryStore`
fills in the transaction that stores a car's records; this claims from it by a predicate on the vehicle
id instead of the first cars in order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Engine, delete, select

from microfleet.store.schema import history_stale
from microfleet.store.telemetry_store import TelemetryStore


class StaleClaims:
    """Claims stale cars by a predicate; puts back and counts through the telemetry store."""

    def __init__(self, engine: Engine, telemetry: TelemetryStore) -> None:
        self._engine = engine
        self._telemetry = telemetry
        self._write_lock: AbstractContextManager[Any] = telemetry.write_lock()

    def claim_stale_of(
        self, wanted: Callable[[str], bool], limit: int, skip: Collection[str] = ()
    ) -> dict[str, int]:
        """Take up to ``limit`` stale vehicles that ``wanted`` accepts (none of ``skip``), with their start.

        The delete returns each mark's ``from_ms`` as it is when deleted, so a batch stored meanwhile (which
        can only lower it) is not missed.
        """
        with self._write_lock, self._engine.begin() as conn:
            listed = conn.scalars(select(history_stale.c.vehicle_id).order_by(history_stale.c.vehicle_id))
            chosen = [v for v in listed if v not in skip and wanted(v)][:limit]
            if not chosen:
                return {}
            rows = conn.execute(
                delete(history_stale)
                .where(history_stale.c.vehicle_id.in_(chosen))
                .returning(history_stale.c.vehicle_id, history_stale.c.from_ms)
            ).all()
        return {vehicle_id: from_ms for vehicle_id, from_ms in rows}

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        """Put a car back on the list (its derivation failed)."""
        self._telemetry.mark_stale(vehicle_id, from_ms)

    def stale_count(self) -> int:
        """How many cars are on the list, every worker's."""
        return self._telemetry.stale_count()
