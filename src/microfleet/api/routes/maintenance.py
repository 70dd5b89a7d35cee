"""Maintenance: a car's detector answers and due service, false alarms, service records, the fleet's week.

docs/maintenance.md. Every figure comes from :class:`MaintenanceService`; detectors run off the request path
(the maintenance worker), so a GET reads what the last evaluation stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from microfleet.api.auth import UserDep, VehicleDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.telemetry import EARLIEST_TS_MS, VEHICLE_ID_PATTERN
from microfleet.services.maintenance import MaintenanceService, ServiceRecord, VehicleMaintenance

router = APIRouter(tags=["maintenance"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
FleetPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the fleet's id")]


async def _maintenance(request: Request) -> MaintenanceService:
    return request.app.state.services.maintenance  # type: ignore[no-any-return]


MaintenanceDep = Annotated[MaintenanceService, Depends(_maintenance)]


class FindingOut(BaseModel):
    """A detector's latest answer: verdict (ok, suspected, learning, no_signal), reason and evidence."""

    detector: str
    condition: str
    verdict: str
    severity: str
    reason: str
    action: str
    score: float
    evidence: dict[str, Any]
    learning_days_needed: float | None
    evaluated_at_ms: int
    data_to_ms: int | None


class DueOut(BaseModel):
    """An interval or condition item and how soon it is due (negative: overdue)."""

    item: str
    kind: str
    severity: str
    due_in_days: float | None
    due_in_km: float | None
    reason: str
    pressing: bool


class RecordOut(BaseModel):
    """Service done on a car."""

    record_id: int
    vehicle_id: str
    item: str
    done_at_ms: int
    odometer_km: float | None
    note: str


class MaintenanceOut(BaseModel):
    """A car's maintenance: detector answers, due items, service records, false-alarm marks."""

    vehicle_id: str
    findings: list[FindingOut]
    due: list[DueOut]
    records: list[RecordOut]
    false_alarms: dict[str, int]


class RecordIn(BaseModel):
    """Service done: the item (as named in the intervals), when, and the odometer then."""

    model_config = ConfigDict(extra="forbid")
    item: str = Field(min_length=1, max_length=64)
    done_at_ms: int = Field(ge=EARLIEST_TS_MS, le=10**14)
    odometer_km: float | None = Field(default=None, ge=0, le=2_000_000)
    note: str = Field(default="", max_length=1000)


class FalseAlarmIn(BaseModel):
    """The condition of the maintenance alert that was a false alarm (e.g. 'tyre:fl', '12v')."""

    model_config = ConfigDict(extra="forbid")
    condition: str = Field(min_length=1, max_length=64)


class IntervalIn(BaseModel):
    """An interval item of a fleet: every N km and/or every N days."""

    model_config = ConfigDict(extra="forbid")
    item: str = Field(min_length=1, max_length=64)
    every_km: float | None = Field(default=None, gt=0, le=1_000_000)
    every_days: float | None = Field(default=None, gt=0, le=3650)


class VisitOut(BaseModel):
    """A car pulled in this week: when, what for, booking minutes it moves."""

    vehicle_id: str
    start_ms: int
    end_ms: int
    items: list[str]
    disrupted_booking_min: float
    severity: str


class PlanOut(BaseModel):
    """The fleet's week: visits, pressing cars without a slot, and every car's due items."""

    fleet_id: str
    visits: list[VisitOut]
    unplaced: list[str]
    cars: list[MaintenanceOut]


def _record(r: ServiceRecord) -> RecordOut:
    return RecordOut(record_id=r.record_id, vehicle_id=r.vehicle_id, item=r.item, done_at_ms=r.done_at_ms,
                     odometer_km=r.odometer_km, note=r.note)  # fmt: skip


def _out(m: VehicleMaintenance) -> MaintenanceOut:
    return MaintenanceOut(
        vehicle_id=m.vehicle_id,
        findings=[FindingOut(detector=f.detector, condition=f.condition, verdict=f.verdict,
                             severity=f.severity, reason=f.reason, action=f.action, score=f.score,
                             evidence=dict(f.evidence),
                             learning_days_needed=f.learning_days_needed, evaluated_at_ms=f.evaluated_at_ms,
                             data_to_ms=f.data_to_ms) for f in m.findings],
        due=[DueOut(item=d.item, kind=d.kind, severity=d.severity, due_in_days=d.due_in_days,
                    due_in_km=d.due_in_km, reason=d.reason, pressing=d.pressing) for d in m.due],
        records=[_record(r) for r in m.records],
        false_alarms=m.false_alarms,
    )  # fmt: skip


@router.get("/api/v1/vehicles/{vehicle_id}/maintenance", response_model=MaintenanceOut, responses=_ERRORS)
def vehicle_maintenance(vehicle: VehicleDep, user: UserDep, maintenance: MaintenanceDep) -> MaintenanceOut:
    """Each detector's latest answer (with its reason and data), the car's due service and its records."""
    return _out(maintenance.vehicle_maintenance(user, vehicle.vehicle_id))


@router.post(
    "/api/v1/vehicles/{vehicle_id}/maintenance/false-alarms", responses=_ERRORS, status_code=201,
)  # fmt: skip
def false_alarm(
    vehicle: VehicleDep, body: FalseAlarmIn, user: UserDep, maintenance: MaintenanceDep
) -> dict[str, Any]:
    """Mark a maintenance alert a false alarm: it is resolved; its detector's thresholds for the car rise."""
    return maintenance.mark_false_alarm(user, vehicle.vehicle_id, body.condition)


@router.post(
    "/api/v1/vehicles/{vehicle_id}/service-records", response_model=RecordOut, responses=_ERRORS,
    status_code=201,
)  # fmt: skip
def add_service_record(
    vehicle: VehicleDep, body: RecordIn, user: UserDep, maintenance: MaintenanceDep
) -> RecordOut:
    """Record service done (owners, the fleet's operator, admins; not drivers)."""
    rec = maintenance.add_record_as(user, vehicle.vehicle_id, body.item, body.done_at_ms, body.odometer_km,
                                    body.note)  # fmt: skip
    return _record(rec)


@router.post("/api/v1/fleets/{fleet_id}/service-intervals", responses=_ERRORS, status_code=201)
def add_service_interval(
    fleet_id: FleetPath, body: IntervalIn, user: UserDep, maintenance: MaintenanceDep
) -> dict[str, Any]:
    """Set an interval item for the fleet's cars (its operator or an admin)."""
    iv = maintenance.add_interval_as(user, fleet_id, body.item, body.every_km, body.every_days)
    return {"interval_id": iv.interval_id, "fleet_id": iv.fleet_id, "item": iv.item, "every_km": iv.every_km,
            "every_days": iv.every_days}  # fmt: skip


@router.get("/api/v1/fleets/{fleet_id}/service-plan", response_model=PlanOut, responses=_ERRORS)
def service_plan(fleet_id: FleetPath, user: UserDep, maintenance: MaintenanceDep) -> PlanOut:
    """Which cars to pull in this week and when (fewest booking minutes moved), and each car's due items."""
    plan, cars = maintenance.service_plan_for(user, fleet_id)
    return PlanOut(
        fleet_id=fleet_id,
        visits=[VisitOut(vehicle_id=v.vehicle_id, start_ms=v.start_ms, end_ms=v.end_ms, items=list(v.items),
                         disrupted_booking_min=v.disrupted_booking_min, severity=v.severity)
                for v in plan.visits],
        unplaced=plan.unplaced,
        cars=[_out(c) for c in cars],
    )  # fmt: skip
