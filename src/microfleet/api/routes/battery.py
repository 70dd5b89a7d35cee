"""A car's battery: state of charge with its uncertainty, health with its band, range, advice, pack alerts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from microfleet.api.auth import VehicleDep
from microfleet.api.deps import BatteryDep
from microfleet.api.errors import ErrorBody
from microfleet.services.battery import report_json

router = APIRouter(tags=["battery"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}


class AdviceOut(BaseModel):
    """One piece of battery care advice: what to do, why, its source and the car's numbers behind it."""

    code: str
    title: str
    reason: str
    source: str
    numbers: dict[str, float | int | None]


class ChargeBoundsOut(BaseModel):
    """The band a charging plan should keep this pack in, and whether a full charge is due (LFP)."""

    target_low_pct: float
    target_high_pct: float
    full_charge_due: bool


class BatteryOut(BaseModel):
    """A car's battery now. A figure Microfleet cannot give yet has ``available: false`` and a reason."""

    vehicle_id: str
    model_version: str | None
    fitted_at_ms: int | None
    data_from_ms: int | None
    data_to_ms: int | None
    chemistry: str | None
    soc: dict[str, Any]
    soh: dict[str, Any]
    range: dict[str, Any]
    resistance: dict[str, Any]
    advice: list[AdviceOut]
    charge_bounds: ChargeBoundsOut
    alerts: list[dict[str, Any]]
    fleet: dict[str, Any] | None


TripKm = Annotated[
    float | None, Query(gt=0, le=10_000, description="a planned trip's distance (km): adds a verdict")
]


@router.get("/api/v1/vehicles/{vehicle_id}/battery", response_model=BatteryOut, responses=_404)
def vehicle_battery(vehicle: VehicleDep, battery: BatteryDep, trip_km: TripKm = None) -> dict[str, Any]:
    """SoC (with 1-sigma), SoH (with a 90 % band), range P10/P50/P90 km, care advice and pack alerts.

    Every result names the model version and the data window it was fitted on; with too little history
    a figure says how much more is needed instead of a number.
    """
    return report_json(battery.report(vehicle.vehicle_id, trip_km))
