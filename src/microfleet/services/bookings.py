"""Bookings as a use case: operators and admins book cars for drivers; drivers see their own bookings.

A booking is what lets a driver command a car (services/commands.py): only during its window, never
outside it. It does not let the driver see the car: that is a grant, as for any other user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.bookings import Booking, check_window, may_manage_bookings
from microfleet.errors import NotFoundError, PermissionDeniedError
from microfleet.services.accounts import AccountService


class BookingPort(Protocol):
    """Bookings in the store (``microfleet.store.commands_store.BookingStore``)."""

    def add(
        self, vehicle_id: str, user_name: str, start_ms: int, end_ms: int, *, created_by: str, now_ms: int
    ) -> Booking:
        """Store a booking of a driver; :class:`ConflictError` if it overlaps a live booking of the car."""
        ...

    def get(self, booking_id: int) -> Booking | None:
        """A booking by id."""
        ...

    def cancel(self, booking_id: int, now_ms: int) -> Booking:
        """Cancel a booking (kept, for the audit); cancelling twice changes nothing."""
        ...

    def search(
        self, *, vehicle_ids: Sequence[str] | None, user_id: int | None, include_cancelled: bool
    ) -> list[Booking]:
        """Bookings of these vehicles (all if None) and of this user (any if None), by start."""
        ...

    def active(self, vehicle_id: str, user_id: int, now_ms: int) -> Booking | None:
        """The user's booking holding the vehicle at ``now_ms``, if any."""
        ...


class BookingService:
    """Create, list and cancel bookings, for a user allowed to, or for the installation's administrator."""

    def __init__(self, store: BookingPort, accounts: AccountService, clock: Callable[[], int]) -> None:
        self._store = store
        self._accounts = accounts
        self._clock = clock

    def create_for(
        self, user: UserPrincipal, vehicle_id: str, driver: str, start_ms: int, end_ms: int
    ) -> Booking:
        """Book a car for a driver: its fleet's operator or an admin (else 403, or 404 if unseen)."""
        vehicle = self._accounts.vehicle_for(user, vehicle_id)
        if not may_manage_bookings(user, vehicle):
            raise PermissionDeniedError("only the operator of the car's fleet or an admin books it")
        return self._create(vehicle_id, driver, start_ms, end_ms, f"user:{user.name}")

    def create(self, vehicle_id: str, driver: str, start_ms: int, end_ms: int) -> Booking:
        """Book a car for a driver (``microfleet bookings add``, the installation's administrator)."""
        self._accounts.require_vehicle(vehicle_id)
        return self._create(vehicle_id, driver, start_ms, end_ms, "cli")

    def _create(self, vehicle_id: str, driver: str, start_ms: int, end_ms: int, created_by: str) -> Booking:
        now_ms = self._clock()
        check_window(start_ms, end_ms, now_ms)
        return self._store.add(vehicle_id, driver, start_ms, end_ms, created_by=created_by, now_ms=now_ms)

    def list_for(self, user: UserPrincipal, vehicle_id: str | None = None) -> list[Booking]:
        """The bookings a user may see: a driver their own; an operator their fleet's cars'; admins all."""
        if vehicle_id is not None:
            self._accounts.vehicle_for(user, vehicle_id)
        if user.role is Role.DRIVER:
            ids = None if vehicle_id is None else [vehicle_id]
            return self._store.search(vehicle_ids=ids, user_id=user.user_id, include_cancelled=True)
        if user.role is Role.ADMIN:
            ids = None if vehicle_id is None else [vehicle_id]
            return self._store.search(vehicle_ids=ids, user_id=None, include_cancelled=True)
        if user.role is Role.OWNER:
            raise PermissionDeniedError("bookings are listed by drivers (their own), operators and admins")
        managed = [
            v.vehicle_id
            for v in self._accounts.visible_vehicles(user)
            if may_manage_bookings(user, v) and vehicle_id in (None, v.vehicle_id)
        ]
        if vehicle_id is not None and not managed:
            raise PermissionDeniedError("only the operator of the car's fleet or an admin lists its bookings")
        return self._store.search(vehicle_ids=managed, user_id=None, include_cancelled=True)

    def list_all(self, vehicle_id: str | None = None) -> list[Booking]:
        """Every booking, of one car if given (the installation's administrator)."""
        ids = None if vehicle_id is None else [vehicle_id]
        return self._store.search(vehicle_ids=ids, user_id=None, include_cancelled=True)

    def cancel_for(self, user: UserPrincipal, booking_id: int) -> Booking:
        """Cancel a booking: the operator of the car's fleet or an admin (404 for one they cannot see)."""
        booking = self._store.get(booking_id)
        hidden = booking is None or not self._accounts.can_see(user, booking.vehicle_id)
        if booking is not None and not hidden and user.role is Role.DRIVER:
            hidden = booking.user_id != user.user_id  # another driver's booking: as if none
        if booking is None or hidden:
            raise NotFoundError(f"booking {booking_id} does not exist")
        vehicle = self._accounts.vehicle_for(user, booking.vehicle_id)
        if not may_manage_bookings(user, vehicle):
            raise PermissionDeniedError(
                "only the operator of the car's fleet or an admin cancels its bookings"
            )
        return self._store.cancel(booking_id, self._clock())

    def cancel(self, booking_id: int) -> Booking:
        """Cancel a booking (the installation's administrator)."""
        if self._store.get(booking_id) is None:
            raise NotFoundError(f"booking {booking_id} does not exist")
        return self._store.cancel(booking_id, self._clock())
