"""The fleet page's views: utilisation by hour, the charging plan per charger, places with their cars.

docs/web.md. Utilisation and places cover the vehicles the caller sees (an operator: their fleet's; an
owner or driver: their own); the plan per charger is the fleet operator's or an admin's, like the plan.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from microfleet.api.auth import UserDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.domain.utilisation import STATUSES
from microfleet.services.fleet_views import FleetViewService

router = APIRouter(tags=["fleet"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
FleetPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the fleet's id")]
FleetQuery = Annotated[
    str | None, Query(pattern=VEHICLE_ID_PATTERN, description="only this fleet's vehicles (of those you see)")
]
FromMs = Annotated[int, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (inclusive)")]
ToMs = Annotated[int, Query(ge=0, le=INT64_MAX, description="window end, UTC epoch ms (exclusive)")]


async def _views(request: Request) -> FleetViewService:
    return request.app.state.services.fleet_views  # type: ignore[no-any-return]


ViewsDep = Annotated[FleetViewService, Depends(_views)]


class UtilisationOut(BaseModel):
    """One bucket: the share (0..1) of the cars' time in each state, and in use / available."""

    start_ms: int
    vehicle_count: int
    driving: float
    charging: float
    parked: float
    asleep: float
    offline: float
    unknown: float = Field(description="time no derived state covers (before a car's first record)")
    in_use: float = Field(description="driving")
    available: float = Field(description="parked, asleep or charging: standing where a booking can take it")


class ConnectorOut(BaseModel):
    """A charger's connector: the car plugged in (null: free) and its planned grid kW per slot."""

    charge_point_id: str
    connector_id: int
    max_kw: float
    vehicle_id: str | None
    power_kw: list[float]


class SitePlanOut(BaseModel):
    """A site: its grid limit, the plan's peak there, planned kW summed per slot, and its connectors."""

    site_id: str
    name: str
    power_limit_kw: float
    planned_peak_kw: float
    total_kw: list[float]
    connectors: list[ConnectorOut]


class ChargerTimelineOut(BaseModel):
    """The fleet's current charging plan per charger: slots of ``slot_s`` from ``start_ms``."""

    plan_id: int
    created_at_ms: int
    start_ms: int
    slot_s: int
    sites: list[SitePlanOut]
    unplaced: dict[str, list[float]] = Field(description="planned kW of cars on no known charger")


class PlaceActivityOut(BaseModel):
    """A place you see, your cars there now (last position), and the window's arrivals, departures, charges.

    The row with ``place_id`` null is everything outside every place you see.
    """

    place_id: str | None
    name: str
    kind: str
    scope: str
    lat_deg: float | None
    lon_deg: float | None
    cars_now: list[str]
    arrivals: int
    departures: int
    charges: int
    charged_kwh: float


@router.get(
    "/api/v1/fleet/utilisation",
    response_model=list[UtilisationOut],
    summary="Utilisation and availability per hour of the vehicles you see",
    responses=_ERRORS,
)
def utilisation(
    user: UserDep,
    views: ViewsDep,
    from_ms: FromMs,
    to_ms: ToMs,
    fleet_id: FleetQuery = None,
    bucket_s: Annotated[int, Query(ge=300, le=86_400, description="bucket length, s")] = 3600,
) -> list[UtilisationOut]:
    """Per bucket, the share of car-time driving, charging, parked, asleep, offline, from derived states."""
    out = []
    for b in views.utilisation(user, fleet_id, from_ms, to_ms, bucket_s):
        shares = {s: round(b.shares[s], 4) for s in STATUSES}
        out.append(
            UtilisationOut(
                start_ms=b.start_ms,
                vehicle_count=b.vehicle_count,
                **shares,
                in_use=round(b.in_use_share, 4),
                available=round(b.available_share, 4),
            )
        )
    return out


@router.get(
    "/api/v1/fleets/{fleet_id}/charging-plan/chargers",
    response_model=ChargerTimelineOut,
    summary="The fleet's charging plan per charger, with each site's limit",
    responses=_ERRORS,
)
def charger_timeline(fleet_id: FleetPath, user: UserDep, views: ViewsDep) -> ChargerTimelineOut:
    """Planned kW per charger connector per slot, summed per site against its grid limit."""
    return ChargerTimelineOut(**asdict(views.charger_timeline(user, fleet_id)))


@router.get(
    "/api/v1/fleet/places",
    response_model=list[PlaceActivityOut],
    summary="Places you see with your cars there now and their visits",
    responses=_ERRORS,
)
def places_activity(
    user: UserDep,
    views: ViewsDep,
    from_ms: FromMs,
    to_ms: ToMs,
    fleet_id: FleetQuery = None,
) -> list[PlaceActivityOut]:
    """Each place: cars whose last position is inside; drives that ended/started there; charges there."""
    return [PlaceActivityOut(**asdict(p)) for p in views.places(user, fleet_id, from_ms, to_ms)]
