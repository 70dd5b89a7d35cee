"""The telemetry columns driver scores read: speed, position, course, pack power and ambient temperature."""

from __future__ import annotations

import numpy as np
from sqlalchemy import Engine, select

from microfleet.services.driving import DriveSignals
from microfleet.store.schema import telemetry

_COLUMNS = ("speed_kmh", "lat_deg", "lon_deg", "heading_deg", "pack_voltage_v", "pack_current_a",
            "ambient_temp_c")  # fmt: skip


class DriveSignalStore:
    """Reads one car's window of telemetry as :class:`DriveSignals` (NULL = NaN)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def signals(self, vehicle_id: str, from_ms: int, to_ms: int) -> DriveSignals:
        """The car's records in ``[from_ms, to_ms)`` in time order."""
        query = (
            select(telemetry.c.ts_ms, *(telemetry.c[name] for name in _COLUMNS))
            .where(telemetry.c.vehicle_id == vehicle_id)
            .where(telemetry.c.ts_ms >= from_ms)
            .where(telemetry.c.ts_ms < to_ms)
            .order_by(telemetry.c.ts_ms)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        cols = [
            np.array([np.nan if r[k + 1] is None else float(r[k + 1]) for r in rows], dtype=np.float64)
            for k in range(len(_COLUMNS))
        ]
        return DriveSignals(ts, *cols)
