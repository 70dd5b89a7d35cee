"""Places and geofences: create, list and delete them, places suggested from stops, enter/exit events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microfleet.api.auth import UserDep, VehicleDep
from microfleet.api.deps import PlacesDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.places import (
    MAX_RADIUS_M,
    MAX_VERTICES,
    MIN_RADIUS_M,
    MIN_VERTICES,
    Circle,
    Place,
    PlaceEntered,
    PlaceKind,
    Polygon,
    StoredPlace,
    new_place_id,
)
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import InvalidInputError

router = APIRouter(tags=["places"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01: "no upper bound" for a time window
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="WGS84 latitude, degrees")]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="WGS84 longitude, degrees")]
IdText = Annotated[str, Field(pattern=VEHICLE_ID_PATTERN)]


class CircleGeometry(BaseModel):
    """A circle: centre and radius."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["circle"]
    lat_deg: Lat
    lon_deg: Lon
    radius_m: float = Field(ge=MIN_RADIUS_M, le=MAX_RADIUS_M, allow_inf_nan=False)


class PolygonGeometry(BaseModel):
    """A polygon: its vertices as ``[lat_deg, lon_deg]`` pairs, the ring closed implicitly."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["polygon"]
    vertices_lat_lon_deg: list[tuple[Lat, Lon]] = Field(min_length=MIN_VERTICES, max_length=MAX_VERTICES)


Geometry = Annotated[CircleGeometry | PolygonGeometry, Field(discriminator="type")]


class PlaceIn(BaseModel):
    """A place to create, for exactly one of: a vehicle, a fleet, or every vehicle (``is_global``)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["home", "work", "depot", "charger", "other"] = "other"
    geometry: Geometry
    tariff_id: str | None = Field(None, max_length=64, description="an example tariff (docs/history.md)")
    vehicle_id: IdText | None = None
    fleet_id: str | None = Field(None, min_length=1, max_length=64)
    is_global: bool = False

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        name = name.strip()
        if not name or not name.isprintable() or not _is_utf8(name):
            raise ValueError("a name is printable text, not blank")
        return name

    @field_validator("fleet_id")
    @classmethod
    def _fleet_printable(cls, fleet_id: str | None) -> str | None:
        if fleet_id is not None and not (fleet_id.isprintable() and _is_utf8(fleet_id)):
            raise ValueError("a fleet id is printable text")
        return fleet_id

    @model_validator(mode="after")
    def _one_scope(self) -> PlaceIn:
        if [self.vehicle_id is not None, self.fleet_id is not None, self.is_global].count(True) != 1:
            raise ValueError("give exactly one of vehicle_id, fleet_id or is_global: true")
        return self


class PlaceOut(BaseModel):
    """A stored place and the scope it applies to."""

    place_id: str
    name: str
    kind: PlaceKind
    geometry: Geometry
    tariff_id: str | None
    scope: Literal["vehicle", "fleet", "global"]
    vehicle_id: str | None
    fleet_id: str | None


class SuggestedPlaceOut(BaseModel):
    """A place where the vehicle stops often and no known place covers: POST it as a circle to keep it."""

    lat_deg: float
    lon_deg: float
    radius_m: float
    visits: int


class PlaceEventOut(BaseModel):
    """The vehicle entered or left a place at ``ts_ms``."""

    ts_ms: int
    event: Literal["entered", "exited"]
    place_id: str
    place_name: str


class PlaceEventsOut(BaseModel):
    """Enter/exit events in a window; ask again with ``from_ms=next_from_ms`` for the rest."""

    vehicle_id: str
    inside_at_start: list[str]
    events: list[PlaceEventOut]
    next_from_ms: int | None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON allows and no store can keep
        return False
    return True


def _out(p: StoredPlace) -> PlaceOut:
    g = p.place.geometry
    geometry: CircleGeometry | PolygonGeometry = (
        CircleGeometry(type="circle", lat_deg=g.lat_deg, lon_deg=g.lon_deg, radius_m=g.radius_m)
        if isinstance(g, Circle)
        else PolygonGeometry(type="polygon", vertices_lat_lon_deg=list(g.vertices))
    )
    return PlaceOut(
        place_id=p.place.place_id,
        name=p.place.name,
        kind=p.place.kind,
        geometry=geometry,
        tariff_id=p.place.tariff_id,
        scope=p.scope,
        vehicle_id=p.vehicle_id,
        fleet_id=p.fleet_id,
    )


@router.post(
    "/api/v1/places",
    response_model=PlaceOut,
    status_code=201,
    summary="Create a place (geofence)",
    responses=_ERRORS,
)
def create_place(body: PlaceIn, user: UserDep, places: PlacesDep) -> PlaceOut:
    """Create a place for a vehicle you see, your fleet (operators) or everyone (admins).

    The history of every car it applies to is re-derived, so drives and charges name the place and
    charges there are costed with its tariff.
    """
    g = body.geometry
    geometry = (
        Circle(g.lat_deg, g.lon_deg, g.radius_m)
        if isinstance(g, CircleGeometry)
        else Polygon(tuple((lat, lon) for lat, lon in g.vertices_lat_lon_deg))
    )
    place = Place(new_place_id(), body.name, PlaceKind(body.kind), geometry, body.tariff_id)
    return _out(places.create(user, place, vehicle_id=body.vehicle_id, fleet_id=body.fleet_id))


@router.get("/api/v1/places", response_model=list[PlaceOut], summary="Places you may see", responses=_ERRORS)
def list_places(
    user: UserDep,
    places: PlacesDep,
    vehicle_id: Annotated[
        str | None, Query(pattern=VEHICLE_ID_PATTERN, description="only places that apply to this vehicle")
    ] = None,
) -> list[PlaceOut]:
    """List global places, your fleet's, and the places of every vehicle you see (all for an admin)."""
    if vehicle_id is not None:
        return [_out(p) for p in places.visible_for_vehicle(user, vehicle_id)]
    return [_out(p) for p in places.visible_to(user)]


@router.delete(
    "/api/v1/places/{place_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a place",
    responses={404: {"model": ErrorBody}},
)
def delete_place(
    place_id: Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the place's id")],
    user: UserDep,
    places: PlacesDep,
) -> Response:
    """Delete a place you may change; the history of the cars it applied to is re-derived without it."""
    places.delete_as(user, place_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/vehicles/{vehicle_id}/places/suggested",
    response_model=list[SuggestedPlaceOut],
    summary="Places where a vehicle stops often",
    responses=_ERRORS,
)
def suggested_places(
    vehicle: VehicleDep,
    places: PlacesDep,
    radius_m: Annotated[float, Query(ge=50, le=1000, description="cluster radius (DBSCAN eps), m")] = 150.0,
    min_visits: Annotated[int, Query(ge=2, le=1000, description="stops needed to make a place")] = 3,
    from_ms: Annotated[int, Query(ge=0, le=INT64_MAX, description="drives from, UTC epoch ms")] = 0,
    to_ms: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="drives until, UTC epoch ms")
    ] = FAR_FUTURE_MS,
) -> list[SuggestedPlaceOut]:
    """Cluster where the vehicle's drives ended; places already covered by a known place are left out."""
    found = places.suggestions(
        vehicle.vehicle_id, radius_m=radius_m, min_visits=min_visits, from_ms=from_ms, to_ms=to_ms
    )
    return [
        SuggestedPlaceOut(lat_deg=p.lat_deg, lon_deg=p.lon_deg, radius_m=p.radius_m, visits=p.visits)
        for p in found
    ]


@router.get(
    "/api/v1/vehicles/{vehicle_id}/place-events",
    response_model=PlaceEventsOut,
    summary="When a vehicle entered and left its places",
    responses=_ERRORS,
)
def place_events(
    vehicle: VehicleDep,
    places: PlacesDep,
    from_ms: Annotated[int, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (inclusive)")],
    to_ms: Annotated[int, Query(ge=0, le=INT64_MAX, description="window end, UTC epoch ms (exclusive)")],
    limit: Annotated[
        int, Query(ge=2, le=100_000, description="most position fixes read in this page")
    ] = 10_000,
) -> PlaceEventsOut:
    """Enter/exit events from the vehicle's positions against the places that apply to it."""
    if to_ms <= from_ms:
        raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")
    found = places.events(vehicle.vehicle_id, from_ms, to_ms, limit)
    return PlaceEventsOut(
        vehicle_id=vehicle.vehicle_id,
        inside_at_start=found.inside_at_start,
        events=[
            PlaceEventOut(
                ts_ms=e.ts_ms,
                event="entered" if isinstance(e, PlaceEntered) else "exited",
                place_id=e.place_id,
                place_name=found.names[e.place_id],
            )
            for e in found.events
        ],
        next_from_ms=found.next_from_ms,
    )
