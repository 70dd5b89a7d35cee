"""Bookings of the car-sharing model in the store (migration 0012)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    and_,
    insert,
    select,
    update,
)

from microfleet.domain.access import Role
from microfleet.domain.bookings import Booking
from microfleet.errors import ConflictError, InvalidInputError, NotFoundError
from microfleet.store.schema import metadata, users, vehicles

_TEXT_MAX = 200

bookings = Table(
    "bookings",
    metadata,
    Column("booking_id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("cancelled_at_ms", BigInteger, nullable=True),
    CheckConstraint("end_ms > start_ms", name="window"),
    Index("ix_bookings_vehicle_start", "vehicle_id", "start_ms"),
    Index("ix_bookings_user", "user_id"),
)


class BookingStore:
    """Bookings (the booking service's ``BookingPort`` and the command service's ``BookingReads``)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        self._write_lock = write_lock if write_lock is not None else nullcontext()
        self._pg = engine.dialect.name == "postgresql"

    def add(
        self, vehicle_id: str, user_name: str, start_ms: int, end_ms: int, *, created_by: str, now_ms: int
    ) -> Booking:
        """Store a driver's booking; :class:`ConflictError` if it overlaps a live booking of the car."""
        with self._write_lock, self._engine.begin() as conn:
            user = conn.execute(
                select(users.c.user_id, users.c.role).where(users.c.name == user_name)
            ).first()
            if user is None:
                raise NotFoundError(f"user {user_name!r} does not exist")
            if user.role != Role.DRIVER.value:
                raise InvalidInputError(f"{user_name!r} is not a driver: bookings are for drivers")
            lock = select(vehicles.c.vehicle_id).where(vehicles.c.vehicle_id == vehicle_id)
            if self._pg:  # two operators booking the same car at once: one waits for the other
                lock = lock.with_for_update()
            if conn.execute(lock).first() is None:
                raise NotFoundError(f"vehicle {vehicle_id!r} does not exist")
            clash = conn.execute(
                select(bookings.c.booking_id).where(
                    bookings.c.vehicle_id == vehicle_id,
                    bookings.c.cancelled_at_ms.is_(None),
                    and_(bookings.c.start_ms < end_ms, bookings.c.end_ms > start_ms),
                )
            ).first()
            if clash is not None:
                raise ConflictError(f"vehicle {vehicle_id!r} is already booked then (booking {clash[0]})")
            result = conn.execute(
                insert(bookings).values(
                    vehicle_id=vehicle_id,
                    user_id=user.user_id,
                    start_ms=start_ms,
                    end_ms=end_ms,
                    created_by=created_by[:_TEXT_MAX],
                    created_at_ms=now_ms,
                )
            )
            booking_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        found = self.get(booking_id)
        assert found is not None
        return found

    def get(self, booking_id: int) -> Booking | None:
        """A booking by id."""
        rows = self._select(bookings.c.booking_id == booking_id)
        return rows[0] if rows else None

    def cancel(self, booking_id: int, now_ms: int) -> Booking:
        """Mark a booking cancelled (kept for the audit); a cancelled one stays as it was."""
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(bookings)
                .where(bookings.c.booking_id == booking_id, bookings.c.cancelled_at_ms.is_(None))
                .values(cancelled_at_ms=now_ms)
            )
        found = self.get(booking_id)
        if found is None:
            raise NotFoundError(f"booking {booking_id} does not exist")
        return found

    def search(
        self, *, vehicle_ids: Sequence[str] | None, user_id: int | None, include_cancelled: bool
    ) -> list[Booking]:
        """Bookings of these vehicles (all if None) and this user (any if None), by start."""
        conditions: list[Any] = []
        if vehicle_ids is not None:
            if not vehicle_ids:
                return []
            conditions.append(bookings.c.vehicle_id.in_(list(vehicle_ids)))
        if user_id is not None:
            conditions.append(bookings.c.user_id == user_id)
        if not include_cancelled:
            conditions.append(bookings.c.cancelled_at_ms.is_(None))
        return self._select(*conditions)

    def active(self, vehicle_id: str, user_id: int, now_ms: int) -> Booking | None:
        """The user's booking holding the vehicle at ``now_ms``, if any."""
        rows = self._select(
            bookings.c.vehicle_id == vehicle_id,
            bookings.c.user_id == user_id,
            bookings.c.cancelled_at_ms.is_(None),
            bookings.c.start_ms <= now_ms,
            bookings.c.end_ms > now_ms,
        )
        return rows[0] if rows else None

    def _select(self, *conditions: Any) -> list[Booking]:
        query = (
            select(bookings, users.c.name)
            .join(users, users.c.user_id == bookings.c.user_id)
            .where(*conditions)
            .order_by(bookings.c.start_ms, bookings.c.booking_id)
        )
        with self._engine.connect() as conn:
            return [
                Booking(
                    r.booking_id,
                    r.vehicle_id,
                    r.user_id,
                    r.name,
                    r.start_ms,
                    r.end_ms,
                    r.created_by,
                    r.created_at_ms,
                    r.cancelled_at_ms,
                )
                for r in conn.execute(query)
            ]
