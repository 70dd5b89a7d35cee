"""What happened: drives, charges, states and summaries per vehicle and per fleet; CSV/GeoJSON export."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, fields
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from microfleet.api.auth import ServicesDep, UserDep, VehicleDep
from microfleet.api.errors import ErrorBody
from microfleet.bootstrap import Services
from microfleet.domain.access import UserPrincipal
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.summaries import Period, summarise, summarise_by_zone
from microfleet.errors import InvalidInputError
from microfleet.store.history import HistoryStore, charge_from_row, drive_from_row

router = APIRouter(tags=["history"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01: "no upper bound" for a time window


def history_store(svc: ServicesDep) -> HistoryStore:
    """The derived-history store over the process's engine."""
    return HistoryStore(svc.engine)


HistoryDep = Annotated[HistoryStore, Depends(history_store)]
FromMs = Annotated[int, Query(ge=0, description="window start, UTC epoch ms (inclusive)")]
ToMs = Annotated[int, Query(ge=0, description="window end, UTC epoch ms (exclusive)")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="most rows returned")]
Tz = Annotated[str, Query(description="IANA time zone the periods are cut in, e.g. Asia/Shanghai")]


class StateOut(BaseModel):
    """One stretch of one status (offline, asleep, parked, driving, charging)."""

    vehicle_id: str
    status: str
    start_ts_ms: int
    end_ts_ms: int
    is_open: bool


class ExcludedOut(BaseModel):
    """A stored record the history leaves out because it contradicts its neighbours, and why."""

    vehicle_id: str
    ts_ms: int
    reason: str
    detail: str


class SummaryOut(BaseModel):
    """What one vehicle or fleet did in one period."""

    period_start: str
    vehicle_count: int
    drive_count: int
    distance_km: float
    drive_time_s: float
    drive_energy_kwh: float
    charge_count: int
    charge_energy_kwh: float
    cost: float
    currency: str | None
    efficiency_wh_per_km: float | None
    utilisation_share: float
    co2_avoided_kg: float


class ZoneSummaryOut(SummaryOut):
    """What a fleet did in one period in one zone: drives by the place they started in, charges by theirs."""

    zone_place_id: str | None
    zone_name: str


UNZONED = "unzoned"  # the zone of drives and charges outside every place


def _window(from_ms: int, to_ms: int) -> None:
    if to_ms <= from_ms:
        raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")


def _tz(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"unknown time zone {name!r}") from None


_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


# Drives and charge sessions are served as the domain's own dataclasses: one definition of each figure.
@router.get("/api/v1/vehicles/{vehicle_id}/drives", response_model=list[Drive], responses=_404)
def list_drives(
    vehicle: VehicleDep,
    store: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[Drive]:
    """A vehicle's drives that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [drive_from_row(r) for r in store.drives(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get("/api/v1/vehicles/{vehicle_id}/drives.csv", response_class=Response, responses=_404)
def export_drives_csv(
    vehicle: VehicleDep,
    store: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 10_000,
) -> Response:
    """A vehicle's drives as CSV, one row per drive (the route is left out; use GeoJSON for it)."""
    _window(from_ms, to_ms)
    rows = store.drives(vehicle.vehicle_id, from_ms, to_ms, limit)
    names = [f.name for f in fields(Drive) if f.name != "route"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(buf.getvalue(), media_type="text/csv")


@router.get("/api/v1/vehicles/{vehicle_id}/drives.geojson", response_class=Response, responses=_404)
def export_drives_geojson(
    vehicle: VehicleDep,
    store: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 10_000,
) -> Response:
    """A vehicle's drives as a GeoJSON FeatureCollection of LineStrings ([lon, lat] order, RFC 7946)."""
    _window(from_ms, to_ms)
    features = []
    for r in store.drives(vehicle.vehicle_id, from_ms, to_ms, limit):
        route = r.pop("route")
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in route]},
                "properties": r,
            }
        )
    body = json.dumps({"type": "FeatureCollection", "features": features})
    return Response(body, media_type="application/geo+json")


@router.get("/api/v1/vehicles/{vehicle_id}/charges", response_model=list[ChargeSession], responses=_404)
def list_charges(
    vehicle: VehicleDep,
    store: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[ChargeSession]:
    """A vehicle's charging sessions that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [charge_from_row(r) for r in store.charges(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get("/api/v1/vehicles/{vehicle_id}/states", response_model=list[StateOut], responses=_404)
def list_states(
    vehicle: VehicleDep,
    store: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[StateOut]:
    """A vehicle's state spans that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [StateOut(**r) for r in store.states(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get(
    "/api/v1/vehicles/{vehicle_id}/excluded-records", response_model=list[ExcludedOut], responses=_404
)
def list_excluded(vehicle: VehicleDep, store: HistoryDep, limit: Limit = 1000) -> list[ExcludedOut]:
    """Stored records the derived history leaves out (GPS jump, odometer backwards, ...), oldest first."""
    return [ExcludedOut(**r) for r in store.excluded(vehicle.vehicle_id, limit)]


def _history_of(
    store: HistoryStore, vehicle_ids: list[str], from_ms: int, to_ms: int
) -> tuple[list[Drive], list[ChargeSession]]:
    """Every drive and charge session of these vehicles that started in ``[from_ms, to_ms)``."""
    drives: list[Drive] = []
    charges: list[ChargeSession] = []
    for vid in vehicle_ids:
        drives += [drive_from_row(r) for r in store.drives(vid, from_ms, to_ms, 1_000_000)]
        charges += [charge_from_row(r) for r in store.charges(vid, from_ms, to_ms, 1_000_000)]
    return drives, charges


def _fleet_vehicle_ids(user: UserPrincipal, svc: Services, fleet_id: str | None) -> list[str]:
    """The vehicles a fleet summary covers: those the caller sees, of one fleet if asked."""
    return [
        v.vehicle_id
        for v in svc.accounts.visible_vehicles(user)
        if fleet_id is None or v.fleet_id == fleet_id
    ]


def _summaries(
    store: HistoryStore, vehicle_ids: list[str], period: Period, from_ms: int, to_ms: int, tz: ZoneInfo
) -> list[SummaryOut]:
    drives, charges = _history_of(store, vehicle_ids, from_ms, to_ms)
    out = summarise(drives, charges, period, vehicle_count=max(1, len(vehicle_ids)), tz=tz)
    return [SummaryOut(**{**asdict(s), "period_start": s.period_start.isoformat()}) for s in out]


@router.get("/api/v1/vehicles/{vehicle_id}/summary", response_model=list[SummaryOut], responses=_404)
def vehicle_summary(
    vehicle: VehicleDep,
    store: HistoryDep,
    period: Period = Period.DAY,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    tz: Tz = "UTC",
) -> list[SummaryOut]:
    """Distance, drive time, energy, cost, efficiency, utilisation and CO2 avoided per period."""
    _window(from_ms, to_ms)
    return _summaries(store, [vehicle.vehicle_id], period, from_ms, to_ms, _tz(tz))


@router.get("/api/v1/fleet/summary", response_model=list[SummaryOut], responses=_404)
def fleet_summary(
    user: UserDep,
    svc: ServicesDep,
    store: HistoryDep,
    period: Period = Period.DAY,
    fleet_id: Annotated[str | None, Query(description="only this fleet's vehicles")] = None,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    tz: Tz = "UTC",
) -> list[SummaryOut]:
    """Per-period totals over every vehicle you may see (operators: your fleet), summed."""
    _window(from_ms, to_ms)
    ids = _fleet_vehicle_ids(user, svc, fleet_id)
    return _summaries(store, ids, period, from_ms, to_ms, _tz(tz))


@router.get("/api/v1/fleet/summary/zones", response_model=list[ZoneSummaryOut], responses=_404)
def fleet_summary_by_zone(
    user: UserDep,
    svc: ServicesDep,
    store: HistoryDep,
    period: Period = Period.DAY,
    fleet_id: Annotated[str | None, Query(description="only this fleet's vehicles")] = None,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    tz: Tz = "UTC",
) -> list[ZoneSummaryOut]:
    """Per-period totals per zone: drives by the place they started in, charges by where they charged.

    Zones are named places (by name within a period); ``unzoned`` holds what happened outside every place.
    The zones of a period sum to the fleet summary's figures, utilisation included.
    """
    _window(from_ms, to_ms)
    zone = _tz(tz)
    ids = _fleet_vehicle_ids(user, svc, fleet_id)
    drives, charges = _history_of(store, ids, from_ms, to_ms)
    names = {p.place.place_id: p.place.name for p in svc.places.visible(None)}
    out = []
    for z in summarise_by_zone(drives, charges, period, vehicle_count=max(1, len(ids)), tz=zone):
        s = asdict(z.summary)
        s["period_start"] = z.summary.period_start.isoformat()
        pid = z.zone_place_id
        name = UNZONED if pid is None else names.get(pid, pid)  # a place deleted since: its id
        out.append(ZoneSummaryOut(**s, zone_place_id=pid, zone_name=name))
    return sorted(out, key=lambda z: (z.period_start, z.zone_place_id is None, z.zone_name))
