"""Driver scores: a driver's own score, a fleet's drivers for its operator, one drive's harsh events.

The score is Tesla's published Safety Score Beta v1.0 formula over harsh braking and turning; events,
speeding against OpenStreetMap limits and the energy factor come beside it (docs/driver-score.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from microfleet.api.auth import UserDep
from microfleet.api.deps import DrivingDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.services.driver_scores import DriverScore
from microfleet.services.driving import DriveAssessment, FleetDriverScores

router = APIRouter(
    tags=["driving"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)
Days = Annotated[int, Query(ge=1, le=90, description="the period: this many days up to now")]


class TipOut(BaseModel):
    """One piece of coaching and the energy it would have saved (kWh; null when not an energy tip)."""

    advice: str
    saves_kwh: float | None


class DriverScoreOut(BaseModel):
    """A driver's period: Tesla-formula score, its factors, events per 100 km, speeding, energy, coaching."""

    driver: str
    status: str
    message: str
    drives: int
    assessed_drives: int
    distance_km: float
    safety_score: float | None
    hard_braking_pct: float
    aggressive_turning_pct: float
    events_per_100km: dict[str, float]
    speeding_share: float | None
    energy_factor: float | None
    excess_kwh: float
    coaching: list[TipOut]


class FleetScoresOut(BaseModel):
    """Every driver of a fleet over the period; drives outside any booking are counted, not scored."""

    fleet_id: str
    from_ms: int
    to_ms: int
    drivers: list[DriverScoreOut]
    unattributed_drives: int


class EventOut(BaseModel):
    """One harsh acceleration, braking or cornering."""

    kind: str
    start_ts_ms: int
    end_ts_ms: int
    peak_g: float
    speed_kmh: float


class DriveEventsOut(BaseModel):
    """One drive's harsh events, Tesla factors, score, speeding and traction energy."""

    vehicle_id: str
    start_ts_ms: int
    end_ts_ms: int
    driver: str | None
    distance_km: float
    assessed: bool
    note: str
    events: list[EventOut]
    hard_braking_pct: float
    aggressive_turning_pct: float
    safety_score: float | None
    speeding_share: float | None
    max_speed_over_limit_kmh: float
    traction_kwh: float | None


def _r(x: float | None, digits: int = 3) -> Any:
    return None if x is None else round(x, digits)


def _score(s: DriverScore) -> DriverScoreOut:
    return DriverScoreOut(
        driver=s.driver,
        status=s.status,
        message=s.message,
        drives=s.drives,
        assessed_drives=s.assessed_drives,
        distance_km=round(s.distance_km, 2),
        safety_score=_r(s.safety_score, 1),
        hard_braking_pct=round(s.hard_braking_pct, 2),
        aggressive_turning_pct=round(s.aggressive_turning_pct, 2),
        events_per_100km={k: round(v, 2) for k, v in s.events_per_100km.items()},
        speeding_share=_r(s.speeding_share),
        energy_factor=_r(s.energy_factor),
        excess_kwh=round(s.excess_kwh, 2),
        coaching=[TipOut(advice=t.advice, saves_kwh=_r(t.saves_kwh, 2)) for t in s.coaching],
    )


@router.get("/api/v1/drivers/me/score", response_model=DriverScoreOut)
def my_score(user: UserDep, driving: DrivingDep, days: Days = 30) -> DriverScoreOut:
    """The caller's own driver score over the drives of their bookings (no one else's)."""
    return _score(driving.my_score(user, days))


@router.get("/api/v1/fleets/{fleet_id}/driver-scores", response_model=FleetScoresOut)
def fleet_scores(
    user: UserDep,
    driving: DrivingDep,
    fleet_id: Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the fleet's id")],
    days: Days = 30,
) -> FleetScoresOut:
    """Every driver of a fleet: for its operator or an admin."""
    f: FleetDriverScores = driving.fleet_scores_for(user, fleet_id, days)
    return FleetScoresOut(
        fleet_id=f.fleet_id,
        from_ms=f.from_ms,
        to_ms=f.to_ms,
        drivers=[_score(s) for s in f.drivers],
        unattributed_drives=f.unattributed_drives,
    )


@router.get("/api/v1/vehicles/{vehicle_id}/drives/{drive_id}/events", response_model=DriveEventsOut)
def drive_events(
    user: UserDep,
    driving: DrivingDep,
    vehicle_id: Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")],
    drive_id: Annotated[
        int, Path(ge=0, le=INT64_MAX - 1, description="the drive's id: its start, UTC epoch ms")
    ],
) -> DriveEventsOut:
    """One drive's harsh events and score; a driver sees only drives of their own bookings."""
    a: DriveAssessment = driving.drive_events(user, vehicle_id, drive_id)
    return DriveEventsOut(
        vehicle_id=a.vehicle_id,
        start_ts_ms=a.start_ts_ms,
        end_ts_ms=a.end_ts_ms,
        driver=a.driver,
        distance_km=round(a.distance_km, 3),
        assessed=a.assessed,
        note=a.note,
        events=[
            EventOut(
                kind=e.kind,
                start_ts_ms=e.start_ts_ms,
                end_ts_ms=e.end_ts_ms,
                peak_g=round(e.peak_g, 3),
                speed_kmh=round(e.speed_kmh, 1),
            )
            for e in a.events
        ],
        hard_braking_pct=round(a.hard_braking_pct, 2),
        aggressive_turning_pct=round(a.aggressive_turning_pct, 2),
        safety_score=_r(a.safety_score, 1),
        speeding_share=_r(a.speeding_share),
        max_speed_over_limit_kmh=round(a.max_speed_over_limit_kmh, 1),
        traction_kwh=_r(a.traction_kwh),
    )
