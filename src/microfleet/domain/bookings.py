"""Bookings of the car-sharing model: a driver holds one car for a time window, and commands it only then."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.errors import InvalidInputError

# A booking of up to 31 days covers a month's rental; longer is a grant, not a booking (Microfleet's choice).
MAX_BOOKING_MS: Final = 31 * 86_400_000


@dataclass(frozen=True, slots=True)
class Booking:
    """``user_id`` holds ``vehicle_id`` from ``start_ms`` to ``end_ms`` (UTC epoch ms, end excluded)."""

    booking_id: int
    vehicle_id: str
    user_id: int
    user_name: str
    start_ms: int
    end_ms: int
    created_by: str
    created_at_ms: int
    cancelled_at_ms: int | None

    def active_at(self, now_ms: int) -> bool:
        """Tell whether the booking holds the car at ``now_ms``."""
        return self.cancelled_at_ms is None and self.start_ms <= now_ms < self.end_ms


def check_window(start_ms: int, end_ms: int, now_ms: int) -> None:
    """Refuse a window that is empty, too long or already over."""
    if end_ms <= start_ms:
        raise InvalidInputError("a booking must end after it starts")
    if end_ms - start_ms > MAX_BOOKING_MS:
        raise InvalidInputError(f"a booking lasts at most {MAX_BOOKING_MS // 86_400_000} days")
    if end_ms <= now_ms:
        raise InvalidInputError("a booking must end in the future")


def may_manage_bookings(user: UserPrincipal, vehicle: Vehicle) -> bool:
    """Admins book any car; an operator, the cars of their own fleet (owners and drivers do not)."""
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.OPERATOR and user.fleet_id is not None and vehicle.fleet_id == user.fleet_id
