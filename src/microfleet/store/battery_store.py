"""Each car's fitted battery models (``battery_states``, migration 0016): the port ``BatteryStates``."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, insert, or_, select

from microfleet.services.battery import StoredBattery
from microfleet.store.history import history_charges, history_drives
from microfleet.store.schema import battery_states, vehicles


def _row(m: Any) -> StoredBattery:
    return StoredBattery(
        vehicle_id=m["vehicle_id"],
        model_version=m["model_version"],
        fitted_at_ms=m["fitted_at_ms"],
        data_from_ms=m["data_from_ms"],
        data_to_ms=m["data_to_ms"],
        charges_seen=m["charges_seen"],
        drives_seen=m["drives_seen"],
        state=json.loads(m["state_json"]),
    )


class BatteryStore:
    """Read and replace cars' fitted battery states; find the cars whose history moved since their fit."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    def get(self, vehicle_id: str) -> StoredBattery | None:
        """A car's stored state, None before its first fit."""
        with self._engine.connect() as conn:
            m = conn.execute(
                select(battery_states).where(battery_states.c.vehicle_id == vehicle_id)
            ).mappings()
            row = m.first()
        return _row(row) if row is not None else None

    def put(self, state: StoredBattery) -> None:
        """Replace a car's state in one transaction."""
        text = json.dumps(state.state, allow_nan=False, separators=(",", ":"))
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(delete(battery_states).where(battery_states.c.vehicle_id == state.vehicle_id))
            conn.execute(
                insert(battery_states).values(
                    vehicle_id=state.vehicle_id,
                    model_version=state.model_version,
                    fitted_at_ms=state.fitted_at_ms,
                    data_from_ms=state.data_from_ms,
                    data_to_ms=state.data_to_ms,
                    charges_seen=state.charges_seen,
                    drives_seen=state.drives_seen,
                    state_json=text,
                )
            )

    def all_states(self) -> list[StoredBattery]:
        """Every car's stored state."""
        with self._engine.connect() as conn:
            return [_row(m) for m in conn.execute(select(battery_states)).mappings()]

    def due(self, limit: int) -> list[str]:
        """Cars with a drive or charge newer than their stored window (or with history and never fitted)."""
        b = battery_states.c
        newer = []
        for t in (history_charges, history_drives):
            newer.append(
                exists().where(
                    t.c.vehicle_id == vehicles.c.vehicle_id,
                    or_(b.data_to_ms.is_(None), t.c.start_ts_ms > b.data_to_ms),
                )
            )
        q = (
            select(vehicles.c.vehicle_id)
            .select_from(vehicles.outerjoin(battery_states, and_(b.vehicle_id == vehicles.c.vehicle_id)))
            .where(or_(*newer))
            .order_by(vehicles.c.vehicle_id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [str(v) for v in conn.execute(q).scalars()]

    def model_of(self, vehicle_id: str) -> str | None:
        """The car's catalogue model id (None: unknown car or no model)."""
        with self._engine.connect() as conn:
            row = conn.execute(select(vehicles.c.model_id).where(vehicles.c.vehicle_id == vehicle_id)).first()
        return None if row is None or row[0] is None else str(row[0])
