"""What happened: drives, charges, states and summaries per vehicle and per fleet; CSV/GeoJSON export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import asdict, fields
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from microfleet.api.auth import UserDep, VehicleDep
from microfleet.api.deps import HistoryDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.api.precision import rounded, rounded_row
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.summaries import Period, Summary
from microfleet.domain.time_zones import iana_zone
from microfleet.errors import InvalidInputError

router = APIRouter(tags=["history"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

FAR_FUTURE_MS = 32_503_680_000_000  # 3000-01-01: "no upper bound" for a time window


FromMs = Annotated[int, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (inclusive)")]
ToMs = Annotated[int, Query(ge=0, le=INT64_MAX, description="window end, UTC epoch ms (exclusive)")]
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


def _window(from_ms: int, to_ms: int) -> None:
    if to_ms <= from_ms:
        raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")


_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


# Drives and charge sessions are served as the domain's own dataclasses: one definition of each figure.
@router.get("/api/v1/vehicles/{vehicle_id}/drives", response_model=list[Drive], responses=_404)
def list_drives(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[Drive]:
    """A vehicle's drives that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [rounded(d) for d in history.drives(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get("/api/v1/vehicles/{vehicle_id}/drives.csv", response_class=Response, responses=_404)
def export_drives_csv(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 10_000,
) -> Response:
    """A vehicle's drives as CSV, one row per drive (the route is left out; use GeoJSON for it)."""
    _window(from_ms, to_ms)
    rows = [asdict(rounded(d)) for d in history.drives(vehicle.vehicle_id, from_ms, to_ms, limit)]
    names = [f.name for f in fields(Drive) if f.name != "route"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(buf.getvalue(), media_type="text/csv")


@router.get("/api/v1/vehicles/{vehicle_id}/drives.geojson", response_class=Response, responses=_404)
def export_drives_geojson(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 10_000,
) -> Response:
    """A vehicle's drives as a GeoJSON FeatureCollection of LineStrings ([lon, lat] order, RFC 7946)."""
    _window(from_ms, to_ms)
    features = []
    for d in history.drives(vehicle.vehicle_id, from_ms, to_ms, limit):
        r = asdict(rounded(d))
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


GPX_NS = "http://www.topografix.com/GPX/1/1"


@router.get("/api/v1/vehicles/{vehicle_id}/drives.gpx", response_class=Response, responses=_404)
def export_drives_gpx(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 10_000,
) -> Response:
    """A vehicle's drives as GPX 1.1: one track per drive, named by its start (UTC), for maps and trackers.

    A drive's route keeps its points' positions, not their times, so the track points carry no ``<time>``.
    """
    _window(from_ms, to_ms)
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "Microfleet"})
    for d in history.drives(vehicle.vehicle_id, from_ms, to_ms, limit):
        r = rounded(d)
        trk = ET.SubElement(root, f"{{{GPX_NS}}}trk")
        start = dt.datetime.fromtimestamp(r.start_ts_ms / 1000, dt.UTC)
        ET.SubElement(trk, f"{{{GPX_NS}}}name").text = start.isoformat(timespec="milliseconds")
        ET.SubElement(trk, f"{{{GPX_NS}}}src").text = vehicle.vehicle_id  # vehicle ids are [A-Za-z0-9._-]
        ET.SubElement(trk, f"{{{GPX_NS}}}type").text = "drive"
        seg = ET.SubElement(trk, f"{{{GPX_NS}}}trkseg")
        for lat, lon in r.route:
            ET.SubElement(seg, f"{{{GPX_NS}}}trkpt", {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
    body = ET.tostring(root, encoding="unicode", xml_declaration=True)
    return Response(body, media_type="application/gpx+xml")


@router.get("/api/v1/vehicles/{vehicle_id}/charges", response_model=list[ChargeSession], responses=_404)
def list_charges(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[ChargeSession]:
    """A vehicle's charging sessions that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [rounded(c) for c in history.charges(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get("/api/v1/vehicles/{vehicle_id}/states", response_model=list[StateOut], responses=_404)
def list_states(
    vehicle: VehicleDep,
    history: HistoryDep,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    limit: Limit = 1000,
) -> list[StateOut]:
    """A vehicle's state spans that started in ``[from_ms, to_ms)``, oldest first."""
    _window(from_ms, to_ms)
    return [StateOut(**r) for r in history.states(vehicle.vehicle_id, from_ms, to_ms, limit)]


@router.get(
    "/api/v1/vehicles/{vehicle_id}/excluded-records", response_model=list[ExcludedOut], responses=_404
)
def list_excluded(vehicle: VehicleDep, history: HistoryDep, limit: Limit = 1000) -> list[ExcludedOut]:
    """Stored records the derived history leaves out (GPS jump, odometer backwards, ...), oldest first."""
    return [ExcludedOut(**r) for r in history.excluded(vehicle.vehicle_id, limit)]


def _summary_out(s: Summary) -> dict[str, Any]:
    return {**rounded_row(asdict(s)), "period_start": s.period_start.isoformat()}


@router.get("/api/v1/vehicles/{vehicle_id}/summary", response_model=list[SummaryOut], responses=_404)
def vehicle_summary(
    vehicle: VehicleDep,
    history: HistoryDep,
    period: Period = Period.DAY,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    tz: Tz = "UTC",
) -> list[SummaryOut]:
    """Distance, drive time, energy, cost, efficiency, utilisation and CO2 avoided per period."""
    _window(from_ms, to_ms)
    out = history.vehicle_summary(vehicle.vehicle_id, period, from_ms, to_ms, iana_zone(tz))
    return [SummaryOut(**_summary_out(s)) for s in out]


@router.get("/api/v1/fleet/summary", response_model=list[SummaryOut], responses=_404)
def fleet_summary(
    user: UserDep,
    history: HistoryDep,
    period: Period = Period.DAY,
    fleet_id: Annotated[str | None, Query(description="only this fleet's vehicles")] = None,
    from_ms: FromMs = 0,
    to_ms: ToMs = FAR_FUTURE_MS,
    tz: Tz = "UTC",
) -> list[SummaryOut]:
    """Per-period totals over every vehicle you may see (operators: your fleet), summed."""
    _window(from_ms, to_ms)
    out = history.fleet_summary(user, fleet_id, period, from_ms, to_ms, iana_zone(tz))
    return [SummaryOut(**_summary_out(s)) for s in out]


@router.get("/api/v1/fleet/summary/zones", response_model=list[ZoneSummaryOut], responses=_404)
def fleet_summary_by_zone(
    user: UserDep,
    history: HistoryDep,
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
    return [
        ZoneSummaryOut(**_summary_out(z.summary), zone_place_id=z.place_id, zone_name=z.name)
        for z in history.zone_summary(user, fleet_id, period, from_ms, to_ms, iana_zone(tz))
    ]
