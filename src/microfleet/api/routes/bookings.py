"""Bookings of the car-sharing model: a driver holds a car for a window and commands it only then.

Operators book their fleet's cars for drivers, admins any car; a driver lists their own bookings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from microfleet.api.auth import UserDep
from microfleet.api.deps import BookingsDep
from microfleet.api.errors import INT32_MAX, INT64_MAX, ErrorBody
from microfleet.domain.bookings import Booking
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN

router = APIRouter(
    tags=["bookings"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)
VehicleIdPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")]
Ms = Annotated[int, Field(ge=0, le=INT64_MAX, description="UTC epoch ms")]


class BookingIn(BaseModel):
    """A booking to make: which driver (user name) holds the car, from ``start_ms`` to ``end_ms``."""

    model_config = ConfigDict(extra="forbid")
    driver: str = Field(min_length=1, max_length=200, description="the driver's user name")
    start_ms: Ms
    end_ms: Ms


class BookingOut(BaseModel):
    """A booking; ``cancelled_at_ms`` is set once it was cancelled (it is kept for the audit)."""

    booking_id: int
    vehicle_id: str
    driver: str
    start_ms: int
    end_ms: int
    created_by: str
    created_at_ms: int
    cancelled_at_ms: int | None


def _out(b: Booking) -> BookingOut:
    return BookingOut(
        booking_id=b.booking_id,
        vehicle_id=b.vehicle_id,
        driver=b.user_name,
        start_ms=b.start_ms,
        end_ms=b.end_ms,
        created_by=b.created_by,
        created_at_ms=b.created_at_ms,
        cancelled_at_ms=b.cancelled_at_ms,
    )


@router.post(
    "/api/v1/vehicles/{vehicle_id}/bookings",
    response_model=BookingOut,
    status_code=201,
    summary="Book a car for a driver",
)
def create_booking(
    vehicle_id: VehicleIdPath, body: BookingIn, user: UserDep, bookings: BookingsDep
) -> BookingOut:
    """Book the car for a driver (its fleet's operator or an admin); 409 if it is booked then already."""
    return _out(bookings.create_for(user, vehicle_id, body.driver, body.start_ms, body.end_ms))


@router.get("/api/v1/bookings", response_model=list[BookingOut], summary="List bookings")
def list_bookings(
    user: UserDep,
    bookings: BookingsDep,
    vehicle_id: Annotated[
        str | None, Query(pattern=VEHICLE_ID_PATTERN, description="only this vehicle's bookings")
    ] = None,
) -> list[BookingOut]:
    """A driver's own bookings; an operator's fleet's cars' bookings; every booking for an admin."""
    return [_out(b) for b in bookings.list_for(user, vehicle_id)]


@router.delete("/api/v1/bookings/{booking_id}", response_model=BookingOut, summary="Cancel a booking")
def cancel_booking(
    booking_id: Annotated[int, Path(ge=1, le=INT32_MAX)], user: UserDep, bookings: BookingsDep
) -> BookingOut:
    """Cancel a booking (its car's fleet operator or an admin): the driver's commands are refused from now."""
    return _out(bookings.cancel_for(user, booking_id))
