"""A vehicle's tracker key (the phone's OsmAnd / Traccar Client ``id``): issue or rotate, show masked, revoke.

For the vehicle's owners, the operator of its fleet and admins (``may_manage_tracker_key``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from microfleet.api.auth import UserDep
from microfleet.api.deps import TrackerKeysDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN

router = APIRouter(
    tags=["vehicles"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
VehicleIdPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")]
_PATH = "/api/v1/vehicles/{vehicle_id}/tracker-key"


class TrackerKeyOut(BaseModel):
    """A vehicle's new tracker key, shown this once; ``replaced``: the key it had has stopped working."""

    vehicle_id: str
    tracker_key: str
    replaced: bool


class TrackerKeyInfoOut(BaseModel):
    """A vehicle's tracker key, masked (its first characters), and when it was issued (UTC epoch ms)."""

    vehicle_id: str
    key_hint: str | None  # None: the vehicle has no key
    issued_at_ms: int | None


@router.post(_PATH, response_model=TrackerKeyOut, summary="Issue or rotate a vehicle's tracker key")
def issue_tracker_key(
    vehicle_id: VehicleIdPath, user: UserDep, keys: TrackerKeysDep, response: Response
) -> TrackerKeyOut:
    """Issue the vehicle a new tracker key, shown once; a key it had stops working at once."""
    issued = keys.issue_for(user, vehicle_id)
    response.headers["Cache-Control"] = "no-store"  # a secret: no cache keeps a copy (RFC 9111 §5.2.2.5)
    return TrackerKeyOut(vehicle_id=issued.vehicle_id, tracker_key=issued.key, replaced=issued.replaced)


@router.get(_PATH, response_model=TrackerKeyInfoOut, summary="A vehicle's tracker key, masked")
def show_tracker_key(vehicle_id: VehicleIdPath, user: UserDep, keys: TrackerKeysDep) -> TrackerKeyInfoOut:
    """Show whether the vehicle has a tracker key, its first characters and when it was issued."""
    info = keys.describe_for(user, vehicle_id)
    if info is None:
        return TrackerKeyInfoOut(vehicle_id=vehicle_id, key_hint=None, issued_at_ms=None)
    return TrackerKeyInfoOut(vehicle_id=vehicle_id, key_hint=info.key_hint, issued_at_ms=info.issued_at_ms)


@router.delete(_PATH, status_code=204, summary="Revoke a vehicle's tracker key")
def revoke_tracker_key(vehicle_id: VehicleIdPath, user: UserDep, keys: TrackerKeysDep) -> Response:
    """Revoke the vehicle's tracker key: the phone's next report is refused (404 if it has none)."""
    keys.revoke_for(user, vehicle_id)
    return Response(status_code=204)
