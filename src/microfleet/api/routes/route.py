"""Energy-aware routing: the fastest and the energy-optimal route between two points for a visible car."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from microfleet.api.auth import UserDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import RouteInputError
from microfleet.services.route_energy import RouteAnswer, RouteEnergyService

router = APIRouter(tags=["routes"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


async def _service(request: Request) -> RouteEnergyService:
    service: RouteEnergyService = request.app.state.services.route_energy
    return service


RouteEnergyDep = Annotated[RouteEnergyService, Depends(_service)]
Point = Annotated[str, Query(max_length=64, description="WGS84 'lat,lon' in degrees, e.g. 31.2304,121.4737")]


class RouteLegOut(BaseModel):
    """One route: its objective, its path as [lat, lon] pairs, length, time and energy band."""

    objective: str
    path_lat_lon_deg: list[tuple[float, float]]
    distance_km: float
    duration_min: float
    energy_p10_kwh: float
    energy_p50_kwh: float
    energy_p90_kwh: float


class RoundTripOut(BaseModel):
    """Whether the car makes it there and back on its charge (P90 energy, above a 5 % reserve)."""

    possible: bool
    needed_kwh_p90: float
    available_kwh: float
    charger_lat_lon_deg: tuple[float, float] | None
    charger_note: str


class RouteOut(BaseModel):
    """The chosen route, the other objective's, the trade-off and the energy model the answer rests on."""

    objective: str
    vehicle_id: str | None
    drives_learned: int
    route: RouteLegOut
    alternative: RouteLegOut
    kwh_saved_by_energy_route: float
    minutes_added_by_energy_route: float
    round_trip: RoundTripOut | None
    model_basis: str
    model_version: str
    ambient_temp_c: float
    ambient_source: str
    hour_local: float


def _point(text: str, name: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise RouteInputError(f"{name} must be 'lat,lon' in degrees, got {text!r}") from None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise RouteInputError(f"{name} {text!r} is not a WGS84 latitude and longitude")
    return lat, lon


def _r(x: float, digits: int) -> float:
    return round(float(x), digits)


def _out(a: RouteAnswer, service: RouteEnergyService) -> RouteOut:
    def leg(x: Any) -> RouteLegOut:
        return RouteLegOut(
            objective=x.objective,
            path_lat_lon_deg=[(_r(la, 6), _r(lo, 6)) for la, lo in x.path],
            distance_km=_r(x.distance_km, 3), duration_min=_r(x.duration_min, 1),
            energy_p10_kwh=_r(x.energy_p10_kwh, 3), energy_p50_kwh=_r(x.energy_p50_kwh, 3),
            energy_p90_kwh=_r(x.energy_p90_kwh, 3),
        )  # fmt: skip

    rt = None
    if a.round_trip is not None:
        g = service.graph()
        c = a.round_trip.charger_node
        rt = RoundTripOut(
            possible=a.round_trip.possible,
            needed_kwh_p90=_r(a.round_trip.needed_kwh_p90, 3),
            available_kwh=_r(a.round_trip.available_kwh, 3),
            charger_lat_lon_deg=None if c is None else (float(g.lat_deg[c]), float(g.lon_deg[c])),
            charger_note=a.round_trip.charger_note,
        )
    return RouteOut(
        objective=a.objective, vehicle_id=a.vehicle_id, drives_learned=a.drives_learned, route=leg(a.route),
        alternative=leg(a.alternative),
        kwh_saved_by_energy_route=_r(a.kwh_saved_by_energy_route, 3),
        minutes_added_by_energy_route=_r(a.minutes_added_by_energy_route, 1), round_trip=rt,
        model_basis=a.model_basis, model_version=a.model_version, ambient_temp_c=_r(a.ambient_temp_c, 1),
        ambient_source=a.ambient_source, hour_local=_r(a.hour_local, 2),
    )  # fmt: skip


@router.get("/api/v1/route", response_model=RouteOut, responses=_ERRORS)
def get_route(
    user: UserDep,
    service: RouteEnergyDep,
    from_: Annotated[str, Query(alias="from", max_length=64, description="origin 'lat,lon' (WGS84 degrees)")],
    to: Point,
    objective: Annotated[Literal["energy", "time"], Query(description="which route to put first")] = "energy",
    vehicle_id: Annotated[
        str | None,
        Query(pattern=VEHICLE_ID_PATTERN, description="a car you see: its own energy model (else the prior)"),
    ] = None,
    soc_pct: Annotated[
        float | None, Query(ge=0, le=100, description="the car's SoC now: can it go there and back?")
    ] = None,
    ambient_temp_c: Annotated[float | None, Query(ge=-50, le=60, description="forecast °C")] = None,
    hour_local: Annotated[float | None, Query(ge=0, lt=24, description="departure hour, local")] = None,
) -> RouteOut:
    """Fastest and energy-optimal routes with the minutes-vs-kWh trade-off and each route's P10/P50/P90 kWh.

    With ``vehicle_id`` the energy comes from that car's model, calibrated on its own drives (404 if you do
    not see it); without, from a generic catalogue prior, labelled as such in ``model_basis``. A point more
    than 300 m from the road graph, or a destination it cannot reach, is refused with 422.
    """
    answer = service.route(
        user,
        _point(from_, "from"),
        _point(to, "to"),
        objective=objective,
        vehicle_id=vehicle_id,
        soc_pct=soc_pct,
        ambient_temp_c=ambient_temp_c,
        hour_local=hour_local,
    )
    return _out(answer, service)
