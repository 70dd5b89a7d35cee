"""Charging sites, OCPP charge points, their transactions and the fleet's charging plans in the store.

A charge point's Basic-auth password is stored only as its SHA-256 (the password is 256-bit random, so a
fast hash is enough, as for API tokens). A plan is one row: its figures in columns, the plan in JSON.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from microfleet.domain.access import Vehicle
from microfleet.domain.charge_points import (
    ChargePoint,
    ChargingSite,
    ChargingTransaction,
    PointStatus,
    StoredPlan,
)
from microfleet.errors import ConflictError, NotFoundError
from microfleet.store.schema import (
    charge_points,
    charging_plans,
    charging_sites,
    charging_transactions,
    fleets,
    vehicles,
)


class ChargingStore:
    """Sites, charge points, transactions and plans (the ports of ``services.charging``)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    # --- sites and charge points ---------------------------------------------------------------------

    def add_site(self, site: ChargingSite, now_ms: int) -> None:
        """Store a site (:class:`NotFoundError` for an unknown fleet, :class:`ConflictError` if taken)."""
        with self._write_lock, self._engine.begin() as conn:
            if (
                conn.execute(select(fleets.c.fleet_id).where(fleets.c.fleet_id == site.fleet_id)).first()
                is None
            ):
                raise NotFoundError(f"fleet {site.fleet_id} does not exist")
            try:
                conn.execute(
                    insert(charging_sites).values(
                        site_id=site.site_id,
                        fleet_id=site.fleet_id,
                        name=site.name,
                        power_limit_kw=site.power_limit_kw,
                        created_at_ms=now_ms,
                    )
                )
            except IntegrityError as exc:
                raise ConflictError(f"site {site.site_id} exists already") from exc

    def site(self, site_id: str) -> ChargingSite | None:
        """One site, if it exists."""
        with self._engine.connect() as conn:
            row = conn.execute(select(charging_sites).where(charging_sites.c.site_id == site_id)).first()
        return None if row is None else _site(row)

    def sites(self, fleet_id: str) -> list[ChargingSite]:
        """A fleet's sites, by id."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(charging_sites)
                .where(charging_sites.c.fleet_id == fleet_id)
                .order_by(charging_sites.c.site_id)
            ).all()
        return [_site(r) for r in rows]

    def add_charge_point(self, point: ChargePoint, password_sha256: str, now_ms: int) -> None:
        """Store a charge point at an existing site (:class:`ConflictError` if its identity is taken)."""
        with self._write_lock, self._engine.begin() as conn:
            try:
                conn.execute(
                    insert(charge_points).values(
                        charge_point_id=point.charge_point_id,
                        site_id=point.site_id,
                        connectors=point.connectors,
                        max_kw=point.max_kw,
                        min_current_a=point.min_current_a,
                        phases=point.phases,
                        voltage_v=point.voltage_v,
                        smart=point.smart,
                        password_sha256=password_sha256,
                        status=PointStatus.OFFLINE.value,
                        config_json="{}",
                        created_at_ms=now_ms,
                    )
                )
            except IntegrityError as exc:
                raise ConflictError(f"charge point {point.charge_point_id} exists already") from exc

    def charge_point(self, charge_point_id: str) -> ChargePoint | None:
        """One charge point, if it exists."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(charge_points).where(charge_points.c.charge_point_id == charge_point_id)
            ).first()
        return None if row is None else _point(row)

    def charge_points(self, site_ids: Sequence[str]) -> list[ChargePoint]:
        """The charge points of these sites, by identity."""
        if not site_ids:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(charge_points)
                .where(charge_points.c.site_id.in_(list(site_ids)))
                .order_by(charge_points.c.charge_point_id)
            ).all()
        return [_point(r) for r in rows]

    def verify_password(self, charge_point_id: str, password_sha256: str) -> ChargePoint | None:
        """The charge point whose stored password hash this is (compared in constant time), else None."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(charge_points).where(charge_points.c.charge_point_id == charge_point_id)
            ).first()
        if row is None or not hmac.compare_digest(row.password_sha256, password_sha256):
            return None
        return _point(row)

    def fleet_of_point(self, charge_point_id: str) -> str | None:
        """The fleet owning the site of a charge point."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(charging_sites.c.fleet_id)
                .join(charge_points, charge_points.c.site_id == charging_sites.c.site_id)
                .where(charge_points.c.charge_point_id == charge_point_id)
            ).scalar_one_or_none()

    def record_boot(self, charge_point_id: str, vendor: str, model: str, now_ms: int) -> None:
        """Note a BootNotification: the charger's vendor and model, seen now."""
        self._update_point(charge_point_id, vendor=vendor[:64], model=model[:64], last_seen_ms=now_ms)

    def record_config(self, charge_point_id: str, config: dict[str, str]) -> None:
        """Keep what GetConfiguration answered."""
        self._update_point(charge_point_id, config_json=json.dumps(config, sort_keys=True))

    def record_status(self, charge_point_id: str, status: PointStatus, now_ms: int) -> None:
        """Note a StatusNotification (the charger's, connector 0, or its only connector's)."""
        self._update_point(charge_point_id, status=status.value, status_at_ms=now_ms, last_seen_ms=now_ms)

    def record_seen(self, charge_point_id: str, now_ms: int) -> None:
        """Note that the charger spoke (a Heartbeat or any message)."""
        self._update_point(charge_point_id, last_seen_ms=now_ms)

    def _update_point(self, charge_point_id: str, **values: Any) -> None:
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(charge_points)
                .where(charge_points.c.charge_point_id == charge_point_id)
                .values(**values)
            )

    # --- transactions ---------------------------------------------------------------------------------

    def start_transaction(
        self, charge_point_id: str, connector_id: int, id_tag: str, start_ms: int, meter_start_wh: int
    ) -> ChargingTransaction:
        """Open a transaction; its car is the vehicle whose id is the id tag, if there is one."""
        with self._write_lock, self._engine.begin() as conn:
            known = conn.execute(select(vehicles.c.vehicle_id).where(vehicles.c.vehicle_id == id_tag)).first()
            vehicle_id = id_tag if known is not None else None
            transaction_id = conn.execute(
                insert(charging_transactions)
                .values(
                    charge_point_id=charge_point_id,
                    connector_id=connector_id,
                    id_tag=id_tag,
                    vehicle_id=vehicle_id,
                    start_ms=start_ms,
                    meter_start_wh=meter_start_wh,
                )
                .returning(charging_transactions.c.transaction_id)
            ).scalar_one()
        return ChargingTransaction(
            transaction_id, charge_point_id, connector_id, id_tag, vehicle_id, start_ms, meter_start_wh
        )

    def stop_transaction(
        self, charge_point_id: str, transaction_id: int, stop_ms: int, meter_stop_wh: int, reason: str
    ) -> ChargingTransaction | None:
        """Close this charge point's open transaction; None if it has no such open transaction."""
        t = charging_transactions
        with self._write_lock, self._engine.begin() as conn:
            done = conn.execute(
                update(t)
                .where(
                    t.c.transaction_id == transaction_id,
                    t.c.charge_point_id == charge_point_id,
                    t.c.stop_ms.is_(None),
                )
                .values(stop_ms=stop_ms, meter_stop_wh=meter_stop_wh, stop_reason=reason[:32], power_kw=0.0)
            )
            if done.rowcount == 0:
                return None
            row = conn.execute(select(t).where(t.c.transaction_id == transaction_id)).one()
        return _transaction(row)

    def record_meter(
        self,
        charge_point_id: str,
        transaction_id: int,
        power_kw: float | None,
        energy_wh: float | None,
        at_ms: int,
    ) -> None:
        """Keep a transaction's latest metered power and energy register."""
        t = charging_transactions
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.transaction_id == transaction_id, t.c.charge_point_id == charge_point_id)
                .values(power_kw=power_kw, energy_wh=energy_wh, meter_at_ms=at_ms)
            )

    def open_transactions(self, charge_point_ids: Sequence[str]) -> list[ChargingTransaction]:
        """The transactions still open at these charge points."""
        if not charge_point_ids:
            return []
        t = charging_transactions
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(t)
                .where(t.c.charge_point_id.in_(list(charge_point_ids)), t.c.stop_ms.is_(None))
                .order_by(t.c.transaction_id)
            ).all()
        return [_transaction(r) for r in rows]

    # --- plans ----------------------------------------------------------------------------------------

    def save_plan(self, plan: StoredPlan) -> StoredPlan:
        """Store a plan (its ``plan_id`` is given by the store) and return it as stored."""
        p = charging_plans
        with self._write_lock, self._engine.begin() as conn:
            plan_id = conn.execute(
                insert(p)
                .values(
                    fleet_id=plan.fleet_id,
                    created_at_ms=plan.created_at_ms,
                    inputs_sha256=plan.inputs_sha256,
                    trigger=plan.trigger[:32],
                    status=plan.status[:32],
                    cost=plan.cost,
                    peak_kw=plan.peak_kw,
                    carbon_kg=plan.carbon_kg,
                    losses_kwh=plan.losses_kwh,
                    gap=plan.gap,
                    plan_json=json.dumps(plan.plan, separators=(",", ":")),
                )
                .returning(p.c.plan_id)
            ).scalar_one()
        return StoredPlan(
            plan_id,
            plan.fleet_id,
            plan.created_at_ms,
            plan.inputs_sha256,
            plan.trigger,
            plan.status,
            plan.cost,
            plan.peak_kw,
            plan.carbon_kg,
            plan.losses_kwh,
            plan.gap,
            plan.plan,
        )

    def latest_plan(self, fleet_id: str) -> StoredPlan | None:
        """The fleet's newest plan, if it has one."""
        p = charging_plans
        with self._engine.connect() as conn:
            row = conn.execute(
                select(p).where(p.c.fleet_id == fleet_id).order_by(p.c.plan_id.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return StoredPlan(
            row.plan_id,
            row.fleet_id,
            row.created_at_ms,
            row.inputs_sha256,
            row.trigger,
            row.status,
            row.cost,
            row.peak_kw,
            row.carbon_kg,
            row.losses_kwh,
            row.gap,
            json.loads(row.plan_json),
        )

    def fleet_vehicles(self, fleet_id: str) -> list[Vehicle]:
        """The fleet's registered cars."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(vehicles).where(vehicles.c.fleet_id == fleet_id).order_by(vehicles.c.vehicle_id)
            ).all()
        return [Vehicle(r.vehicle_id, r.name, r.model_id, r.fleet_id, r.created_at_ms) for r in rows]

    def fleets_with_sites(self) -> list[str]:
        """Every fleet that has at least one site (the re-planning worker's list)."""
        with self._engine.connect() as conn:
            return list(conn.execute(select(charging_sites.c.fleet_id).distinct()).scalars())


def _site(row: Row[Any]) -> ChargingSite:
    return ChargingSite(row.site_id, row.fleet_id, row.name, row.power_limit_kw)


def _point(row: Row[Any]) -> ChargePoint:
    return ChargePoint(
        charge_point_id=row.charge_point_id,
        site_id=row.site_id,
        connectors=row.connectors,
        max_kw=row.max_kw,
        min_current_a=row.min_current_a,
        phases=row.phases,
        voltage_v=row.voltage_v,
        smart=bool(row.smart),
        status=PointStatus(row.status),
        status_at_ms=row.status_at_ms,
        last_seen_ms=row.last_seen_ms,
        vendor=row.vendor,
        model=row.model,
        config=json.loads(row.config_json),
    )


def _transaction(row: Row[Any]) -> ChargingTransaction:
    return ChargingTransaction(
        transaction_id=row.transaction_id,
        charge_point_id=row.charge_point_id,
        connector_id=row.connector_id,
        id_tag=row.id_tag,
        vehicle_id=row.vehicle_id,
        start_ms=row.start_ms,
        meter_start_wh=row.meter_start_wh,
        stop_ms=row.stop_ms,
        meter_stop_wh=row.meter_stop_wh,
        stop_reason=row.stop_reason,
        power_kw=row.power_kw,
        energy_wh=row.energy_wh,
    )
