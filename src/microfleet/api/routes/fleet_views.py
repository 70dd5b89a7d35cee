"""The fleet page's views: utilisation by hour, the charging plan per charger, places with their cars.

docs/web.md. Utilisation and places cover the vehicles the caller sees (an operator: their fleet's; an
owner or driver: their own); the plan per charger is the fleet operator's or an admin's, like the plan.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from microfleet.api.auth import UserDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.domain.utilisation import STATUSES
from microfleet.services.fleet_views import ChargerTimeline, FleetViewService, PlaceActivity

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
    response_model=ChargerTimeline,
    summary="The fleet's charging plan per charger, with each site's limit",
    responses=_ERRORS,
)
def charger_timeline(fleet_id: FleetPath, user: UserDep, views: ViewsDep) -> ChargerTimeline:
    """Planned kW per charger connector per slot, summed per site against its grid limit.

    ``unplaced``: planned kW of cars on no known charger.
    """
    return views.charger_timeline(user, fleet_id)


@router.get(
    "/api/v1/fleet/places",
    response_model=list[PlaceActivity],
    summary="Places you see with your cars there now and their visits",
    responses=_ERRORS,
)
def places_activity(
    user: UserDep,
    views: ViewsDep,
    from_ms: FromMs,
    to_ms: ToMs,
    fleet_id: FleetQuery = None,
) -> list[PlaceActivity]:
    """Each place: cars whose last position is inside; drives that ended/started there; charges there.

    The row with ``place_id`` null is everything outside every place you see.
    """
    return views.places(user, fleet_id, from_ms, to_ms)
