"""Maintenance in the store (migration 0019): the port ``MaintenanceStorePort`` of services/maintenance.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, delete, func, insert, or_, select, update

from microfleet.domain.access import Vehicle
from microfleet.services.maintenance import ServiceRecord, StoredFinding, StoredInterval
from microfleet.store.schema import (
    maintenance_findings as mf,
)
from microfleet.store.schema import (
    maintenance_intervals as mi,
)
from microfleet.store.schema import (
    maintenance_records as mr,
)
from microfleet.store.schema import (
    maintenance_thresholds as mt,
)
from microfleet.store.schema import (
    vehicle_latest,
    vehicles,
)


def _finding(m: Any) -> StoredFinding:
    return StoredFinding(
        m["vehicle_id"], m["detector"], m["condition"], m["verdict"], m["severity"], m["reason"], m["action"],
        m["score"], json.loads(m["evidence_json"]), m["learning_days_needed"], m["evaluated_at_ms"],
        m["data_to_ms"],
    )  # fmt: skip


def _record(m: Any) -> ServiceRecord:
    return ServiceRecord(
        m["record_id"],
        m["vehicle_id"],
        m["item"],
        m["done_at_ms"],
        m["odometer_km"],
        m["note"],
        m["created_by"],
    )


class MaintenanceStore:
    """Findings, intervals, service records and false-alarm marks."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    def replace_findings(self, vehicle_id: str, findings: Sequence[StoredFinding]) -> None:
        """Replace a car's findings in one transaction."""
        rows = [
            {
                "vehicle_id": vehicle_id, "detector": f.detector, "condition": f.condition,
                "verdict": f.verdict,
                "severity": f.severity, "reason": f.reason, "action": f.action, "score": f.score,
                "evidence_json": json.dumps(f.evidence, allow_nan=False, default=str),
                "learning_days_needed": f.learning_days_needed, "evaluated_at_ms": f.evaluated_at_ms,
                "data_to_ms": f.data_to_ms,
            }
            for f in {(f.detector, f.condition): f for f in findings}.values()
        ]  # fmt: skip
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(delete(mf).where(mf.c.vehicle_id == vehicle_id))
            if rows:
                conn.execute(insert(mf), rows)

    def findings(self, vehicle_ids: Sequence[str]) -> list[StoredFinding]:
        """The stored findings of these cars, by car, detector and condition."""
        if not vehicle_ids:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(mf)
                .where(mf.c.vehicle_id.in_(list(vehicle_ids)))
                .order_by(mf.c.vehicle_id, mf.c.detector, mf.c.condition)
            ).mappings()  # fmt: skip
            return [_finding(m) for m in rows]

    def vehicles(self) -> list[Vehicle]:
        """Every registered vehicle."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(vehicles.c.vehicle_id, vehicles.c.name, vehicles.c.model_id, vehicles.c.fleet_id,
                       vehicles.c.created_at_ms).order_by(vehicles.c.vehicle_id)
            ).all()  # fmt: skip
        return [Vehicle(*r) for r in rows]

    def due_vehicles(self, limit: int) -> list[str]:
        """Cars whose newest record is newer than their last evaluation's data (or never evaluated)."""
        evaluated = (
            select(mf.c.vehicle_id, func.max(mf.c.data_to_ms).label("upto"))
            .group_by(mf.c.vehicle_id)
            .subquery()
        )
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(vehicle_latest.c.vehicle_id)
                .outerjoin(evaluated, evaluated.c.vehicle_id == vehicle_latest.c.vehicle_id)
                .where(or_(evaluated.c.upto.is_(None), vehicle_latest.c.last_ts_ms > evaluated.c.upto))
                .order_by(vehicle_latest.c.vehicle_id)
                .limit(limit)
            ).all()
        return [r[0] for r in rows]

    def false_alarms(self, vehicle_id: str) -> dict[str, int]:
        """A car's false-alarm marks by detector."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(mt.c.detector, mt.c.false_alarms).where(mt.c.vehicle_id == vehicle_id))
            return {d: int(n) for d, n in rows}

    def add_false_alarm(self, vehicle_id: str, detector: str, now_ms: int) -> int:
        """Count one more false alarm of a detector on a car; return the new count."""
        where = (mt.c.vehicle_id == vehicle_id) & (mt.c.detector == detector)
        with self._write_lock, self._engine.begin() as conn:
            done = conn.execute(
                update(mt).where(where).values(false_alarms=mt.c.false_alarms + 1, updated_at_ms=now_ms)
            )
            if done.rowcount == 0:
                conn.execute(
                    insert(mt).values(
                        vehicle_id=vehicle_id, detector=detector, false_alarms=1, updated_at_ms=now_ms
                    )
                )
            return int(conn.execute(select(mt.c.false_alarms).where(where)).scalar_one())

    def add_interval(self, interval: StoredInterval, now_ms: int) -> StoredInterval:
        """Store an interval item; returns it with its id."""
        with self._write_lock, self._engine.begin() as conn:
            new_id = conn.execute(
                insert(mi).values(
                    vehicle_id=interval.vehicle_id, fleet_id=interval.fleet_id, item=interval.item,
                    every_km=interval.every_km, every_days=interval.every_days, created_at_ms=now_ms,
                ).returning(mi.c.interval_id)
            ).scalar_one()  # fmt: skip
        return StoredInterval(int(new_id), interval.vehicle_id, interval.fleet_id, interval.item,
                              interval.every_km, interval.every_days)  # fmt: skip

    def intervals(self, vehicle_id: str | None, fleet_id: str | None) -> list[StoredInterval]:
        """Interval items of a car and of its fleet, oldest first."""
        conds = [mi.c.vehicle_id == vehicle_id] if vehicle_id else []
        conds += [mi.c.fleet_id == fleet_id] if fleet_id else []
        if not conds:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(select(mi).where(or_(*conds)).order_by(mi.c.interval_id)).mappings()
            return [
                StoredInterval(m["interval_id"], m["vehicle_id"], m["fleet_id"], m["item"], m["every_km"],
                               m["every_days"])
                for m in rows
            ]  # fmt: skip

    def add_record(self, record: ServiceRecord) -> ServiceRecord:
        """Store a service record; returns it with its id."""
        with self._write_lock, self._engine.begin() as conn:
            new_id = conn.execute(
                insert(mr).values(
                    vehicle_id=record.vehicle_id, item=record.item, done_at_ms=record.done_at_ms,
                    odometer_km=record.odometer_km, note=record.note, created_by=record.created_by,
                ).returning(mr.c.record_id)
            ).scalar_one()  # fmt: skip
        r = record
        return ServiceRecord(
            int(new_id), r.vehicle_id, r.item, r.done_at_ms, r.odometer_km, r.note, r.created_by
        )

    def records(self, vehicle_ids: Sequence[str]) -> list[ServiceRecord]:
        """Service records of these cars, newest first."""
        if not vehicle_ids:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(mr).where(mr.c.vehicle_id.in_(list(vehicle_ids)))
                .order_by(mr.c.done_at_ms.desc(), mr.c.record_id.desc())
            ).mappings()  # fmt: skip
            return [_record(m) for m in rows]
