"""A car's learned routes and its forecast: routine trips, energy per trip, insights, the next trips."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from microfleet.api.auth import VehicleDep
from microfleet.api.deps import RoutesDep
from microfleet.api.errors import ErrorBody
from microfleet.intelligence.trip_forecast import Forecast, RouteBook, TripEnergy

router = APIRouter(tags=["routes"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01: beyond it no calendar arithmetic is safe
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
Tz = Annotated[str, Query(description="IANA time zone of the car's days, e.g. Asia/Shanghai")]


class LearnedPlaceOut(BaseModel):
    """A place of the car: a stored place (with its name) or one learned from its stops (name null)."""

    place_id: str
    name: str | None
    lat_deg: float
    lon_deg: float
    spread_m: float  # Rayleigh sigma of its visits; a stop beyond ~3x this is a new place
    visits: int


class EnergyOut(BaseModel):
    """A trip's energy P10 / P50 / P90 and what it was estimated from."""

    p10_kwh: float
    p50_kwh: float
    p90_kwh: float
    basis: str


class TripOut(BaseModel):
    """A routine trip: made at least three times between two known places."""

    origin_place_id: str
    destination_place_id: str
    count: int
    weekday_count: int
    weekend_count: int
    usual_departure_local: str  # HH:MM, the median
    departure_median_min: float  # minutes after local midnight
    departure_p10_min: float
    departure_p90_min: float
    distance_median_km: float
    duration_median_s: float
    energy: EnergyOut | None
    energy_drives: int
    route: list[tuple[float, float]]  # [lat, lon] of the drive most like the trip's median


class InsightOut(BaseModel):
    """A finding in plain words from the car's own drives, with the figures behind it."""

    origin_place_id: str
    destination_place_id: str
    day: str
    text: str
    early_departure_min: float
    late_departure_min: float
    extra_energy_share: float
    early_drives: int
    late_drives: int


class RoutesOut(BaseModel):
    """What the car's drives of the last 12 weeks teach; ``needs_more_drives`` says how many are missing."""

    vehicle_id: str
    status: str
    drives: int
    drives_needed: int
    newest_drive_ts_ms: int | None
    time_zone: str
    energy_per_km_p50_kwh: float | None
    places: list[LearnedPlaceOut]
    trips: list[TripOut]
    insights: list[InsightOut]


class AlternativeOut(BaseModel):
    """Another destination the trip may go to, with its probability (``unknown``: a new place)."""

    place_id: str
    probability_share: float


class PredictedTripOut(BaseModel):
    """One predicted trip: where to (or ``unknown``), how likely, when it leaves, what it will use."""

    origin_place_id: str | None
    destination_place_id: str
    probability_share: float
    alternatives: list[AlternativeOut]
    depart_ts_ms: int
    depart_p10_ts_ms: int
    depart_p90_ts_ms: int
    energy: EnergyOut | None


class ForecastOut(BaseModel):
    """The car's next trips and the SoC it needs by the first departure (P90 energy plus a reserve)."""

    vehicle_id: str
    status: str
    drives: int
    drives_needed: int
    newest_drive_ts_ms: int | None
    at_ts_ms: int
    time_zone: str
    current_place_id: str | None
    trips: list[PredictedTripOut]
    energy_p50_kwh: float | None
    energy_p90_kwh: float | None
    usable_kwh: float | None
    soc_needed_pct: float | None
    reserve_pct: float


def _r(x: float | None, places: int) -> float | None:
    return None if x is None else round(x, places)


def _energy(e: TripEnergy | None) -> EnergyOut | None:
    if e is None:
        return None
    return EnergyOut(
        p10_kwh=round(e.p10_kwh, 3), p50_kwh=round(e.p50_kwh, 3), p90_kwh=round(e.p90_kwh, 3), basis=e.basis
    )


def _clock(minutes: float) -> str:
    m = round(minutes) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def routes_out(vehicle_id: str, tz: str, book: RouteBook) -> RoutesOut:
    """The route book as the API shows it (figures rounded to their measurement's precision)."""
    return RoutesOut(
        vehicle_id=vehicle_id,
        status=book.status,
        drives=book.drives,
        drives_needed=book.drives_needed,
        newest_drive_ts_ms=book.newest_drive_ts_ms,
        time_zone=tz,
        energy_per_km_p50_kwh=_r(book.kwh_per_km[1], 4) if book.kwh_per_km else None,
        places=[
            LearnedPlaceOut(
                place_id=p.place_id,
                name=p.name,
                lat_deg=round(p.lat_deg, 6),
                lon_deg=round(p.lon_deg, 6),
                spread_m=round(p.sigma_m, 1),
                visits=p.visits,
            )
            for p in book.places
        ],
        trips=[
            TripOut(
                origin_place_id=t.origin,
                destination_place_id=t.destination,
                count=t.count,
                weekday_count=t.weekday_count,
                weekend_count=t.weekend_count,
                usual_departure_local=_clock(t.departure_median_min),
                departure_median_min=round(t.departure_median_min, 1),
                departure_p10_min=round(t.departure_p10_min, 1),
                departure_p90_min=round(t.departure_p90_min, 1),
                distance_median_km=round(t.distance_km_median, 3),
                duration_median_s=round(t.duration_s_median, 1),
                energy=_energy(e),
                energy_drives=t.energy_samples,
                route=[(round(a, 6), round(b, 6)) for a, b in t.route],
            )
            for t, e in book.trips
        ],
        insights=[
            InsightOut(
                origin_place_id=i.origin,
                destination_place_id=i.destination,
                day=i.day,
                text=i.text,
                early_departure_min=round(i.early_departure_min, 1),
                late_departure_min=round(i.late_departure_min, 1),
                extra_energy_share=round(i.extra_share, 4),
                early_drives=i.early_drives,
                late_drives=i.late_drives,
            )
            for i in book.insights
        ],
    )


def forecast_out(vehicle_id: str, tz: str, fc: Forecast) -> ForecastOut:
    """The forecast as the API shows it."""
    return ForecastOut(
        vehicle_id=vehicle_id,
        status=fc.status,
        drives=fc.drives,
        drives_needed=fc.drives_needed,
        newest_drive_ts_ms=fc.newest_drive_ts_ms,
        at_ts_ms=fc.at_ts_ms,
        time_zone=tz,
        current_place_id=fc.current_place,
        trips=[
            PredictedTripOut(
                origin_place_id=t.origin,
                destination_place_id=t.destination,
                probability_share=round(t.probability, 4),
                alternatives=[
                    AlternativeOut(place_id=k, probability_share=round(v, 4)) for k, v in t.alternatives
                ],
                depart_ts_ms=t.depart_ts_ms,
                depart_p10_ts_ms=t.depart_p10_ts_ms,
                depart_p90_ts_ms=t.depart_p90_ts_ms,
                energy=_energy(t.energy),
            )
            for t in fc.trips
        ],
        energy_p50_kwh=_r(fc.energy_p50_kwh, 3),
        energy_p90_kwh=_r(fc.energy_p90_kwh, 3),
        usable_kwh=_r(fc.usable_kwh, 3),
        soc_needed_pct=_r(fc.soc_needed_pct, 2),
        reserve_pct=fc.reserve_pct,
    )


@router.get("/api/v1/vehicles/{vehicle_id}/routes", response_model=RoutesOut, responses=_404)
def vehicle_routes(vehicle: VehicleDep, routes: RoutesDep, tz: Tz = "UTC") -> RoutesOut:
    """The car's places, routine trips (counts, usual departure, energy P10/P50/P90) and insights."""
    return routes_out(vehicle.vehicle_id, tz, routes.routes(vehicle, tz))


@router.get("/api/v1/vehicles/{vehicle_id}/forecast", response_model=ForecastOut, responses=_404)
def vehicle_forecast(
    vehicle: VehicleDep,
    routes: RoutesDep,
    tz: Tz = "UTC",
    at_ms: Annotated[
        int | None,
        Query(ge=0, le=FAR_FUTURE_MS, description="forecast from this UTC epoch ms (default: now)"),
    ] = None,
) -> ForecastOut:
    """The car's predicted next trips with probabilities, departure times, energy and the SoC needed."""
    return forecast_out(vehicle.vehicle_id, tz, routes.forecast(vehicle, tz, at_ms))
