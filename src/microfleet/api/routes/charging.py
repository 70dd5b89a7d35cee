"""Charging: a fleet's sites and OCPP chargers, and its charging plan (operators of the fleet, admins).

docs/charging.md. A charger's Basic-auth password for ``/ocpp/{charge_point_id}`` is returned once, when
the charger is registered; only its hash is kept.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from microfleet.api.auth import UserDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.charge_points import POINT_ID_PATTERN, ChargePoint, ChargingSite, StoredPlan
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.services.charge_points import ChargePointService
from microfleet.services.charging import ChargingService

router = APIRouter(tags=["charging"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
FleetPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the fleet's id")]
SitePath = Annotated[str, Path(pattern=POINT_ID_PATTERN, description="the site's id")]


async def _points(request: Request) -> ChargePointService:
    return request.app.state.services.charge_points  # type: ignore[no-any-return]


async def _charging(request: Request) -> ChargingService:
    return request.app.state.services.charging  # type: ignore[no-any-return]


PointsDep = Annotated[ChargePointService, Depends(_points)]
ChargingDep = Annotated[ChargingService, Depends(_charging)]


class SiteIn(BaseModel):
    """A depot of the fleet behind one grid connection."""

    model_config = ConfigDict(extra="forbid")
    site_id: str = Field(pattern=POINT_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    power_limit_kw: float = Field(gt=0, le=100_000, description="the grid connection's limit, kW")


class SiteOut(BaseModel):
    """A site."""

    site_id: str
    fleet_id: str
    name: str
    power_limit_kw: float


class ChargePointIn(BaseModel):
    """An OCPP 1.6J charger at the site; ``charge_point_id`` is its OCPP identity (the URL's last segment)."""

    model_config = ConfigDict(extra="forbid")
    charge_point_id: str = Field(pattern=POINT_ID_PATTERN)
    connectors: int = Field(1, ge=1, le=10)
    max_kw: float = Field(gt=0, le=400, description="per connector, kW")
    min_current_a: float = Field(6.0, ge=0, le=100, description="IEC 61851-1: 6 A")
    phases: int = Field(3, description="1 or 3")
    voltage_v: float = Field(230.0, ge=100, le=1000, description="phase voltage, V")
    smart: bool = Field(True, description="follows SetChargingProfile; false: the car is commanded instead")


class ChargePointOut(BaseModel):
    """A charger and what it last said."""

    charge_point_id: str
    site_id: str
    connectors: int
    max_kw: float
    min_current_a: float
    phases: int
    voltage_v: float
    smart: bool
    status: str
    status_at_ms: int | None
    last_seen_ms: int | None
    vendor: str | None
    model: str | None
    config: dict[str, str]


class ChargePointCreated(ChargePointOut):
    """A registered charger with its Basic-auth password for ``/ocpp/{charge_point_id}``, shown this once."""

    password: str


class CarPlanOut(BaseModel):
    """One car's planned grid kW per slot and why."""

    vehicle_id: str
    power_kw: list[float]
    explanation: str


class BookingPlanOut(BaseModel):
    """What the plan gives one booking: the energy and SoC expected at its start, any shortfall."""

    booking_id: str
    vehicle_id: str
    start_ms: int
    need_kwh: float
    expected_kwh: float
    expected_soc_pct: float
    shortfall_kwh: float


class PlanOut(BaseModel):
    """A fleet's charging plan: slots of ``slot_s`` from ``start_ms``, per car per slot kW, its figures."""

    plan_id: int
    fleet_id: str
    created_at_ms: int
    trigger: str
    status: str
    start_ms: int
    slot_s: int
    currency: str
    cost: float
    peak_kw: float
    peak_kw_by_site: dict[str, float]
    carbon_kg: float | None
    losses_kwh: float
    energy_kwh: float
    gap: float | None
    cars: list[CarPlanOut]
    bookings: list[BookingPlanOut]
    uncontrolled: list[str] = Field(description="chargers the plan cannot steer (they rejected a profile)")


def _site(s: ChargingSite) -> SiteOut:
    return SiteOut(site_id=s.site_id, fleet_id=s.fleet_id, name=s.name, power_limit_kw=s.power_limit_kw)


def _point(p: ChargePoint) -> dict[str, Any]:
    return {
        "charge_point_id": p.charge_point_id,
        "site_id": p.site_id,
        "connectors": p.connectors,
        "max_kw": p.max_kw,
        "min_current_a": p.min_current_a,
        "phases": p.phases,
        "voltage_v": p.voltage_v,
        "smart": p.smart,
        "status": p.status.value,
        "status_at_ms": p.status_at_ms,
        "last_seen_ms": p.last_seen_ms,
        "vendor": p.vendor,
        "model": p.model,
        "config": p.config,
    }


def plan_out(plan: StoredPlan) -> PlanOut:
    """The API's view of a stored plan."""
    body = plan.plan
    return PlanOut(
        plan_id=plan.plan_id,
        fleet_id=plan.fleet_id,
        created_at_ms=plan.created_at_ms,
        trigger=plan.trigger,
        status=plan.status,
        start_ms=body["start_ms"],
        slot_s=body["slot_s"],
        currency=body["currency"],
        cost=round(plan.cost, 4),
        peak_kw=round(plan.peak_kw, 3),
        peak_kw_by_site=body["peak_kw_by_site"],
        carbon_kg=plan.carbon_kg,
        losses_kwh=round(plan.losses_kwh, 3),
        energy_kwh=body["energy_kwh"],
        gap=plan.gap,
        cars=[CarPlanOut(**c) for c in body["cars"]],
        bookings=[BookingPlanOut(**b) for b in body["bookings"]],
        uncontrolled=body.get("uncontrolled", []),
    )


@router.get(
    "/api/v1/fleets/{fleet_id}/charging-plan",
    response_model=PlanOut,
    summary="The fleet's charging plan",
    responses=_ERRORS,
)
def get_plan(fleet_id: FleetPath, user: UserDep, charging: ChargingDep) -> PlanOut:
    """The current plan (made now if there is none): kW per car per 15-minute slot, SoC at each booking."""
    return plan_out(charging.plan_for(user, fleet_id))


@router.post(
    "/api/v1/fleets/{fleet_id}/charging-plan",
    response_model=PlanOut,
    summary="Re-plan the fleet's charging now",
    responses=_ERRORS,
)
async def replan(fleet_id: FleetPath, user: UserDep, request: Request, charging: ChargingDep) -> PlanOut:
    """Plan again from the stores now (the same inputs keep the plan) and send it to the chargers."""
    points: ChargePointService = request.app.state.services.charge_points
    await run_in_threadpool(points.require_fleet_operator, user, fleet_id)
    worker = request.app.state.services.charging_worker
    plans = await worker.run_once({fleet_id: "request"})
    return plan_out(plans[0])


@router.get(
    "/api/v1/fleets/{fleet_id}/charging-sites",
    response_model=list[SiteOut],
    summary="The fleet's charging sites",
    responses=_ERRORS,
)
def list_sites(fleet_id: FleetPath, user: UserDep, points: PointsDep) -> list[SiteOut]:
    """The fleet's depots with their grid limits."""
    return [_site(s) for s in points.sites_for(user, fleet_id)]


@router.post(
    "/api/v1/fleets/{fleet_id}/charging-sites",
    response_model=SiteOut,
    status_code=201,
    summary="Register a charging site",
    responses={**_ERRORS, 409: {"model": ErrorBody}},
)
def add_site(fleet_id: FleetPath, body: SiteIn, user: UserDep, points: PointsDep) -> SiteOut:
    """Register a depot of the fleet with its grid connection's limit."""
    return _site(points.add_site_for(user, fleet_id, body.site_id, body.name, body.power_limit_kw))


@router.get(
    "/api/v1/fleets/{fleet_id}/charge-points",
    response_model=list[ChargePointOut],
    summary="The fleet's chargers",
    responses=_ERRORS,
)
def list_charge_points(fleet_id: FleetPath, user: UserDep, points: PointsDep) -> list[ChargePointOut]:
    """Every charger at the fleet's sites, with its last status and configuration keys."""
    return [ChargePointOut(**_point(p)) for p in points.charge_points_for(user, fleet_id)]


@router.post(
    "/api/v1/charging-sites/{site_id}/charge-points",
    response_model=ChargePointCreated,
    status_code=201,
    summary="Register an OCPP charger",
    responses={**_ERRORS, 409: {"model": ErrorBody}},
)
def add_charge_point(
    site_id: SitePath, body: ChargePointIn, user: UserDep, points: PointsDep
) -> ChargePointCreated:
    """Register a charger at a site; the answer holds its password for ``/ocpp/{id}``, shown only now."""
    point, password = points.add_charge_point_for(
        user,
        site_id,
        body.charge_point_id,
        connectors=body.connectors,
        max_kw=body.max_kw,
        min_current_a=body.min_current_a,
        phases=body.phases,
        voltage_v=body.voltage_v,
        smart=body.smart,
    )
    return ChargePointCreated(**_point(point), password=password)
