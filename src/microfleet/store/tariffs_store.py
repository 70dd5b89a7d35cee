"""Users' own tariffs in the store, for one vehicle, one fleet or everyone, beside the built-in examples.

A place names a tariff by id (``places.tariff_id``): a built-in example, or a user tariff whose scope
holds every car the place applies to (a global tariff fits any place; a fleet's, the fleet's places and
those of its cars; a vehicle's, that vehicle's places). Changing a tariff re-costs the charges at every
place naming it, so the same transaction marks those cars' history stale from its first record; a
tariff a place names cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Index,
    String,
    Table,
    Text,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)

from microfleet.domain.tariffs import (
    StoredTariff,
    Tariff,
    example_tariff_ids,
    load_example_tariff,
    tariff_from_json,
    tariff_kind,
    tariff_to_json,
)
from microfleet.errors import ConflictError, InvalidInputError, NotFoundError
from microfleet.store.places_store import places
from microfleet.store.schema import metadata, vehicle_latest, vehicles
from microfleet.store.scopes import scope_is, visible_in
from microfleet.store.stale import mark_context_changed

# Every derivation of a car reads the tariffs its places name, and listing reads a scope's: a bound per
# scope keeps both cheap (and one account from filling the store). Microfleet's choice.
MAX_TARIFFS_PER_SCOPE: Final = 100

tariffs = Table(
    "tariffs",
    metadata,
    Column("tariff_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("fleet_id", String(64), nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    # The tariff's JSON spec (domain.tariffs.tariff_to_json), a day-ahead series included.
    Column("tariff_json", Text, nullable=False),
    Index("ix_tariffs_fleet", "fleet_id"),
    Index("ix_tariffs_vehicle", "vehicle_id"),
)


class TariffStore:
    """Create, list, replace and delete user tariffs; a change marks the cars charging under it stale."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()
        self._pg = engine.dialect.name == "postgresql"

    def create(self, tariff: Tariff, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> None:
        """Store a new tariff; its id may be neither a built-in example's nor another tariff's."""
        if vehicle_id is not None and fleet_id is not None:
            raise InvalidInputError("a tariff belongs to one vehicle, one fleet, or everyone: not both")
        if tariff.tariff_id in example_tariff_ids():
            raise ConflictError(
                f"tariff id {tariff.tariff_id!r} is a built-in example tariff; choose another"
            )
        with self._write_lock, self._engine.begin() as conn:
            taken = conn.execute(select(tariffs.c.tariff_id).where(tariffs.c.tariff_id == tariff.tariff_id))
            if taken.first() is not None:
                raise ConflictError(f"tariff id {tariff.tariff_id!r} is taken; choose another")
            in_scope = conn.execute(
                select(func.count()).select_from(tariffs).where(scope_is(tariffs, vehicle_id, fleet_id))
            ).scalar_one()
            if in_scope >= MAX_TARIFFS_PER_SCOPE:
                raise InvalidInputError(f"this scope already holds {MAX_TARIFFS_PER_SCOPE} tariffs")
            conn.execute(
                insert(tariffs),
                [
                    {
                        "tariff_id": tariff.tariff_id,
                        "kind": tariff_kind(tariff),
                        "fleet_id": fleet_id,
                        "vehicle_id": vehicle_id,
                        "tariff_json": tariff_to_json(tariff),
                    }
                ],
            )

    def get(self, tariff_id: str) -> StoredTariff:
        """One user tariff by id."""
        with self._engine.connect() as conn:
            row = conn.execute(select(tariffs).where(tariffs.c.tariff_id == tariff_id)).first()
        if row is None:
            raise NotFoundError(f"tariff {tariff_id!r} does not exist")
        return _stored(row._mapping)

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[StoredTariff]:
        """User tariffs of these vehicles, of these fleets, and global ones (``vehicle_ids`` None: all)."""
        query = select(tariffs).order_by(tariffs.c.tariff_id)
        if vehicle_ids is not None:
            query = query.where(visible_in(tariffs, vehicle_ids, fleet_ids))
        with self._engine.connect() as conn:
            return [_stored(r._mapping) for r in conn.execute(query)]

    def replace(self, tariff: Tariff) -> list[str]:
        """Replace a user tariff's definition (its scope stays); returns the cars now stale."""
        with self._write_lock, self._engine.begin() as conn:
            done = conn.execute(
                update(tariffs)
                .where(tariffs.c.tariff_id == tariff.tariff_id)
                .values(kind=tariff_kind(tariff), tariff_json=tariff_to_json(tariff))
            )
            if done.rowcount == 0:
                raise NotFoundError(f"tariff {tariff.tariff_id!r} does not exist")
            return self._mark_stale(conn, tariff.tariff_id)

    def delete(self, tariff_id: str) -> None:
        """Delete a user tariff no place names (a :class:`ConflictError` lists the places that do)."""
        with self._write_lock, self._engine.begin() as conn:
            row = conn.execute(
                select(tariffs.c.tariff_id).where(tariffs.c.tariff_id == tariff_id).with_for_update()
            ).first()
            if row is None:
                raise NotFoundError(f"tariff {tariff_id!r} does not exist")
            names = [
                str(n)
                for n in conn.execute(
                    select(places.c.name).where(places.c.tariff_id == tariff_id).order_by(places.c.name)
                ).scalars()
            ]
            if names:
                raise ConflictError(
                    f"tariff {tariff_id!r} is in use by {len(names)} place(s): {', '.join(names)}; "
                    "give them another tariff or delete them first"
                )
            conn.execute(delete(tariffs).where(tariffs.c.tariff_id == tariff_id))

    def _mark_stale(self, conn: Connection, tariff_id: str) -> list[str]:
        """Mark every car with telemetry that a place naming this tariff applies to stale from its start."""
        scopes = conn.execute(
            select(places.c.vehicle_id, places.c.fleet_id).where(places.c.tariff_id == tariff_id)
        ).all()
        if not scopes:
            return []
        query = select(vehicle_latest.c.vehicle_id).order_by(vehicle_latest.c.vehicle_id)
        if not any(v is None and f is None for v, f in scopes):
            cars = sorted({v for v, _ in scopes if v is not None})
            fleets = sorted({f for v, f in scopes if v is None and f is not None})
            in_fleets = select(vehicles.c.vehicle_id).where(vehicles.c.fleet_id.in_(fleets))
            query = query.where(
                or_(
                    vehicle_latest.c.vehicle_id.in_(cars) if cars else false(),
                    vehicle_latest.c.vehicle_id.in_(in_fleets.scalar_subquery()) if fleets else false(),
                )
            )
        ids = [str(v) for v in conn.execute(query).scalars()]
        mark_context_changed(conn, ids)
        return ids


def _fits_place(vehicle_id: str | None, fleet_id: str | None, conn: Connection) -> ColumnElement[bool]:
    """User tariffs a place of this scope may name: those whose scope holds every car the place applies to."""
    c = tariffs.c
    fits = scope_is(tariffs, None, None)
    if vehicle_id is not None:
        car_fleet = conn.execute(
            select(vehicles.c.fleet_id).where(vehicles.c.vehicle_id == vehicle_id)
        ).scalar_one_or_none()
        fits = fits | (c.vehicle_id == vehicle_id)
        if car_fleet is not None:
            fits = fits | ((c.fleet_id == car_fleet) & c.vehicle_id.is_(None))
    elif fleet_id is not None:
        fits = fits | ((c.fleet_id == fleet_id) & c.vehicle_id.is_(None))
    return fits


def check_place_tariff(
    conn: Connection, tariff_id: str, vehicle_id: str | None, fleet_id: str | None
) -> None:
    """Refuse a place of this scope naming a tariff that is neither built in nor fits the place.

    The tariff's row is read ``FOR SHARE`` on PostgreSQL, so a delete of it waits for this transaction
    and then finds the place naming it.
    """
    if tariff_id in example_tariff_ids():
        return
    fits = _fits_place(vehicle_id, fleet_id, conn)
    found = conn.execute(
        select(tariffs.c.tariff_id).where(tariffs.c.tariff_id == tariff_id, fits).with_for_update(read=True)
    ).first()
    if found is None:
        own = conn.execute(select(tariffs.c.tariff_id).where(fits).order_by(tariffs.c.tariff_id)).scalars()
        known = ", ".join([*example_tariff_ids(), *own])
        raise InvalidInputError(f"unknown tariff {tariff_id!r} for this place; known tariffs: {known}")


def tariffs_named(conn: Connection, tariff_ids: Iterable[str]) -> dict[str, Tariff]:
    """The built-in and user tariffs with these ids, read on ``conn`` (ids of neither are left out).

    A stored tariff that no longer passes the rules it was checked against is left out too: the
    charges under it stay uncosted rather than the car's whole history failing to derive.
    """
    wanted = set(tariff_ids)
    out: dict[str, Tariff] = {t: load_example_tariff(t) for t in example_tariff_ids() if t in wanted}
    users = wanted - set(out)
    if users:
        rows = conn.execute(
            select(tariffs.c.tariff_id, tariffs.c.tariff_json).where(tariffs.c.tariff_id.in_(users))
        )
        for tariff_id, text in rows:
            try:
                out[str(tariff_id)] = tariff_from_json(text)
            except InvalidInputError:
                continue
    return out


def _stored(row: Any) -> StoredTariff:
    return StoredTariff(tariff_from_json(row["tariff_json"]), row["vehicle_id"], row["fleet_id"])
