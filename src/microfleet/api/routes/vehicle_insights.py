"""A car's longer view: its battery health week by week, its parked drain and its charging costs.

Parked drain and costs are served as the service's own dataclasses (one definition of each figure).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from microfleet.api.auth import VehicleDep
from microfleet.api.deps import InsightsDep, NowMsDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.summaries import Period
from microfleet.domain.time_zones import iana_zone
from microfleet.services.vehicle_insights import ChargingCosts, ParkedDrain

router = APIRouter(
    tags=["battery", "history"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}}
)
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
DAY_MS = 86_400_000

FromMs = Annotated[
    int | None, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (default: 30 days ago)")
]
ToMs = Annotated[int | None, Query(ge=0, le=INT64_MAX, description="window end, UTC epoch ms (default: now)")]
Tz = Annotated[str, Query(description="IANA time zone the periods are cut in, e.g. Asia/Shanghai")]


class SohPointOut(BaseModel):
    """The SoH estimate as it stood at ``ts_ms`` (its last session), with its 90 % band."""

    ts_ms: int
    soh_pct: float
    band_low_pct: float
    band_high_pct: float
    capacity_kwh: float
    sessions_used: int


class MeasuredOut(BaseModel):
    """One charge session's own capacity measurement, and as % of new (null: new capacity unknown)."""

    ts_ms: int
    capacity_kwh: float
    soh_pct: float | None
    delta_soc_pct: float
    anchored: bool


class BatteryHistoryOut(BaseModel):
    """The SoH week by week (stored at each refit, never refitted with later data) and the 80 % forecast."""

    vehicle_id: str
    available: bool
    reason: str | None = Field(description="why there is no trend yet (null when available)")
    model_version: str | None
    fitted_at_ms: int | None
    new_usable_kwh: float | None
    estimates: list[SohPointOut]
    measurements: list[MeasuredOut]
    soh_pct: float | None
    fade_pct_per_year: float | None
    fade_sigma_pct_per_year: float | None
    end_of_life_pct: float
    eol_ts_ms: int | None = Field(description="when the trend crosses end_of_life_pct (null: no forecast)")


def _range(from_ms: int | None, to_ms: int | None, now_ms: int, days: int) -> tuple[int, int]:
    end = now_ms + 1 if to_ms is None else to_ms
    return (end - days * DAY_MS if from_ms is None else from_ms), end


@router.get(
    "/api/v1/vehicles/{vehicle_id}/battery/history", response_model=BatteryHistoryOut, responses=_ERRORS
)
def battery_history(vehicle: VehicleDep, insights: InsightsDep) -> dict[str, Any]:
    """The SoH estimate at each week's last session (90 % band), each session's capacity, the 80 % forecast.

    Only what the battery refit stored is read (docs/web.md).
    """
    return asdict(insights.battery_history(vehicle.vehicle_id))


@router.get("/api/v1/vehicles/{vehicle_id}/parked-drain", response_model=ParkedDrain, responses=_ERRORS)
def parked_drain(
    vehicle: VehicleDep, insights: InsightsDep, now_ms: NowMsDep, from_ms: FromMs = None, to_ms: ToMs = None
) -> dict[str, Any]:
    """Energy lost while parked (vampire drain): each spell of 15 min or more, kWh and SoC points per day."""
    start, end = _range(from_ms, to_ms, now_ms, 30)
    return asdict(insights.parked_drain(vehicle.vehicle_id, start, end))


@router.get("/api/v1/vehicles/{vehicle_id}/charging-costs", response_model=ChargingCosts, responses=_ERRORS)
def charging_costs(
    vehicle: VehicleDep,
    insights: InsightsDep,
    now_ms: NowMsDep,
    period: Annotated[Period, Query(description="week or month")] = Period.WEEK,
    from_ms: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (default: a year ago)")
    ] = None,
    to_ms: ToMs = None,
    tz: Tz = "UTC",
) -> dict[str, Any]:
    """The car's charges per week or month in ``tz``: sessions, energy, and cost in each currency.

    A session is costed by the tariff of the place it charged at; one at a place without a tariff has none.
    """
    start, end = _range(from_ms, to_ms, now_ms, 365)
    return asdict(insights.charging_costs(vehicle.vehicle_id, period, start, end, iana_zone(tz)))
