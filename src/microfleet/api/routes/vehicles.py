"""Vehicles as their users see them: the list, one vehicle with its latest state, its positions.

And the rotation of a vehicle's device credential, by those who look after its telematics unit.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from microfleet.api.auth import UserDep, VehicleDep
from microfleet.api.deps import AccountsDep, VehiclesDep
from microfleet.api.errors import INT64_MAX, ErrorBody
from microfleet.domain.telemetry import SIGNAL_NAMES, VEHICLE_ID_PATTERN
from microfleet.errors import InvalidInputError

router = APIRouter(tags=["vehicles"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class VehicleOut(BaseModel):
    """A vehicle the caller may see."""

    vehicle_id: str
    name: str
    model_id: str | None
    fleet_id: str | None
    created_at_ms: int


class SignalValue(BaseModel):
    """The newest value of one signal and when it was measured (UTC epoch ms)."""

    value: Any
    ts_ms: int


class LatestState(BaseModel):
    """The newest value of every signal the vehicle has sent."""

    last_ts_ms: int
    record_count: int
    signals: dict[str, SignalValue]


class VehicleDetail(VehicleOut):
    """A vehicle with its latest state (None until it has sent telemetry)."""

    latest: LatestState | None


class Position(BaseModel):
    """One position fix."""

    ts_ms: int
    lat_deg: float
    lon_deg: float
    speed_kmh: float | None
    heading_deg: float | None
    altitude_m: float | None
    gps_hdop: float | None


class PositionPageOut(BaseModel):
    """A page of positions, oldest first; ask again with ``from_ms=next_from_ms`` for the next."""

    vehicle_id: str
    positions: list[Position]
    next_from_ms: int | None


@router.get("/api/v1/vehicles", response_model=list[VehicleOut], summary="Vehicles you may see")
def list_vehicles(user: UserDep, accounts: AccountsDep) -> list[VehicleOut]:
    """List the vehicles granted to you or your fleet (all of them for an admin)."""
    return [VehicleOut(**asdict(v)) for v in accounts.visible_vehicles(user)]


class FleetLatestOut(BaseModel):
    """A visible vehicle's id and latest state (None until it has sent telemetry)."""

    vehicle_id: str
    latest: LatestState | None


@router.get(
    "/api/v1/fleet/latest",
    response_model=list[FleetLatestOut],
    summary="The latest state of every vehicle you may see, in one answer",
    responses={422: {"model": ErrorBody}},
)
def fleet_latest(
    user: UserDep,
    accounts: AccountsDep,
    vehicles: VehiclesDep,
    signals: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="comma-separated signal names to keep (e.g. lat_deg,lon_deg); all if absent",
        ),
    ] = None,
) -> Response:
    """One request for a fleet map's first draw: a request per car does not scale to thousands of cars."""
    wanted: set[str] | None = None
    if signals is not None:
        wanted = {name.strip() for name in signals.split(",") if name.strip()}
        unknown = sorted(wanted - set(SIGNAL_NAMES))
        if unknown:
            raise InvalidInputError(f"unknown signal name(s): {', '.join(unknown[:5])}")
    ids = [v.vehicle_id for v in accounts.visible_vehicles(user)]
    latest = vehicles.latest_states(ids, wanted)
    # Encoded directly (the shape is FleetLatestOut's, as the document says): validating 10,000 cars' states
    # as models took longer than reading them from the store (bench/dashboard.py).
    body = msgspec.json.encode([{"vehicle_id": vid, "latest": latest.get(vid)} for vid in ids])
    return Response(content=body, media_type="application/json")


@router.get(
    "/api/v1/vehicles/{vehicle_id}",
    response_model=VehicleDetail,
    summary="One vehicle with its latest state",
    responses={404: {"model": ErrorBody}},
)
def get_vehicle(vehicle: VehicleDep, vehicles: VehiclesDep) -> VehicleDetail:
    """Show a vehicle and the newest value of each of its signals."""
    latest = vehicles.latest_state(vehicle.vehicle_id)
    return VehicleDetail(
        **asdict(vehicle),
        latest=LatestState.model_validate(latest) if latest else None,
    )


@router.get(
    "/api/v1/vehicles/{vehicle_id}/positions",
    response_model=PositionPageOut,
    summary="A vehicle's positions in a time window",
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def get_positions(
    vehicle: VehicleDep,
    vehicles: VehiclesDep,
    from_ms: Annotated[int, Query(ge=0, le=INT64_MAX, description="window start, UTC epoch ms (inclusive)")],
    to_ms: Annotated[int, Query(ge=0, le=INT64_MAX, description="window end, UTC epoch ms (exclusive)")],
    limit: Annotated[int, Query(ge=1, le=10_000, description="most positions in this page")] = 1000,
) -> PositionPageOut:
    """Page through the positions a vehicle reported in ``[from_ms, to_ms)``."""
    if to_ms <= from_ms:
        raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")
    page = vehicles.positions(vehicle.vehicle_id, from_ms, to_ms, limit)
    return PositionPageOut(
        vehicle_id=vehicle.vehicle_id,
        positions=[Position(**p) for p in page.positions],
        next_from_ms=page.next_from_ms,
    )


class DeviceCredentialOut(BaseModel):
    """A vehicle's new device credential, shown this once, and until when the replaced one still works."""

    vehicle_id: str
    device_credential: str
    previous_valid_until_ms: int | None


@router.post(
    "/api/v1/vehicles/{vehicle_id}/device-credential",
    response_model=DeviceCredentialOut,
    summary="Rotate a vehicle's device credential",
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def rotate_device_credential(
    vehicle_id: Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")],
    user: UserDep,
    accounts: AccountsDep,
    response: Response,
    end_previous_now: Annotated[
        bool,
        Query(description="stop the replaced credential at once (it leaked) instead of after the overlap"),
    ] = False,
) -> DeviceCredentialOut:
    """Issue the vehicle a new device credential, shown once.

    The replaced one keeps working until ``previous_valid_until_ms`` (None: stopped at once), and a rotation
    before then ends the one before it. Admins rotate any vehicle's credential, an operator those of their
    own fleet's vehicles.
    """
    rotated = accounts.rotate_device_credential_for(user, vehicle_id, end_previous_now=end_previous_now)
    response.headers["Cache-Control"] = "no-store"  # a secret: no cache keeps a copy (RFC 9111 §5.2.2.5)
    return DeviceCredentialOut(
        vehicle_id=rotated.vehicle_id,
        device_credential=rotated.token,
        previous_valid_until_ms=rotated.previous_valid_until_ms,
    )
