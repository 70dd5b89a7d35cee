"""Named places (geofences) in the store, for one vehicle, one fleet or everyone.

Creating or deleting a place changes which place a drive starts or ends at and what a charge costs, so
the same transaction marks the history of every car the place applies to stale from its first record:
the deriver recomputes it, and a crash in between loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from microfleet.domain.places import Circle, Place, PlaceKind, Polygon, StoredPlace, check_geometry
from microfleet.errors import InvalidInputError, NotFoundError
from microfleet.store.schema import metadata, vehicle_latest, vehicles
from microfleet.store.scopes import scope_is, visible_in
from microfleet.store.stale import mark_context_changed

# Every derivation locates each drive's ends among all places that apply to the car: a bound per scope
# keeps that cheap (and one account from filling the store).
MAX_PLACES_PER_SCOPE: Final = 1000

places = Table(
    "places",
    metadata,
    Column("place_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("fleet_id", String(64), nullable=True),
    Column("vehicle_id", String(64), nullable=True),
    # {"circle": [lat_deg, lon_deg, radius_m]} or {"polygon": [[lat_deg, lon_deg], ...]}
    Column("geometry_json", Text, nullable=False),
    Column("tariff_id", String(64), nullable=True),
    Index("ix_places_fleet", "fleet_id"),
    Index("ix_places_vehicle", "vehicle_id"),
)


class PlaceStore:
    """Create, list and delete places; every write marks the affected cars' history stale."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()
        self._pg = engine.dialect.name == "postgresql"

    def put(self, place: Place, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> list[str]:
        """Check and store a place (created or replaced); returns the cars whose history is now stale."""
        if vehicle_id is not None and fleet_id is not None:
            raise InvalidInputError("a place belongs to one vehicle, one fleet, or everyone: not both")
        check_geometry(place.geometry)
        with self._write_lock, self._engine.begin() as conn:
            if place.tariff_id is not None:  # a built-in example, or a user tariff that fits this scope
                from microfleet.store.tariffs_store import check_place_tariff  # (it imports this module)

                check_place_tariff(conn, place.tariff_id, vehicle_id, fleet_id)
            old = conn.execute(select(places).where(places.c.place_id == place.place_id)).first()
            conn.execute(delete(places).where(places.c.place_id == place.place_id))
            in_scope = conn.execute(
                select(func.count()).select_from(places).where(scope_is(places, vehicle_id, fleet_id))
            ).scalar_one()
            if in_scope >= MAX_PLACES_PER_SCOPE:
                raise InvalidInputError(f"this scope already holds {MAX_PLACES_PER_SCOPE} places")
            conn.execute(insert(places), [_row(place, vehicle_id, fleet_id)])
            stale = self._mark_stale(conn, vehicle_id, fleet_id)
            if old is not None:
                stale = sorted(set(stale) | set(self._mark_stale(conn, old.vehicle_id, old.fleet_id)))
        return stale

    def get(self, place_id: str) -> StoredPlace:
        """One place by id."""
        with self._engine.connect() as conn:
            row = conn.execute(select(places).where(places.c.place_id == place_id)).first()
        if row is None:
            raise NotFoundError(f"place {place_id!r} does not exist")
        return stored_place(row._mapping)

    def delete(self, place_id: str) -> list[str]:
        """Delete a place; returns the cars whose history is now stale."""
        with self._write_lock, self._engine.begin() as conn:
            row = conn.execute(select(places).where(places.c.place_id == place_id)).first()
            if row is None:
                raise NotFoundError(f"place {place_id!r} does not exist")
            conn.execute(delete(places).where(places.c.place_id == place_id))
            return self._mark_stale(conn, row.vehicle_id, row.fleet_id)

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[StoredPlace]:
        """Places of these vehicles, of these fleets, and global ones (``vehicle_ids`` None: every place)."""
        query = select(places).order_by(places.c.name, places.c.place_id)
        if vehicle_ids is not None:
            query = query.where(visible_in(places, vehicle_ids, fleet_ids))
        with self._engine.connect() as conn:
            return [stored_place(r._mapping) for r in conn.execute(query)]

    def applying_to(self, vehicle_id: str) -> list[Place]:
        """The places that apply to one vehicle: its own, its fleet's and global ones."""
        with self._engine.connect() as conn:
            return places_of_vehicle(conn, vehicle_id)

    def _mark_stale(self, conn: Connection, vehicle_id: str | None, fleet_id: str | None) -> list[str]:
        """Mark every car with telemetry that a place of this scope applies to stale from its start."""
        query = select(vehicle_latest.c.vehicle_id).order_by(vehicle_latest.c.vehicle_id)
        if vehicle_id is not None:
            query = query.where(vehicle_latest.c.vehicle_id == vehicle_id)
        elif fleet_id is not None:
            in_fleet = select(vehicles.c.vehicle_id).where(vehicles.c.fleet_id == fleet_id)
            query = query.where(vehicle_latest.c.vehicle_id.in_(in_fleet.scalar_subquery()))
        ids = [str(v) for v in conn.execute(query).scalars()]
        mark_context_changed(conn, ids)
        return ids


def places_of_vehicle(conn: Connection, vehicle_id: str) -> list[Place]:
    """The places that apply to a vehicle (its own, its fleet's, global), read on ``conn``."""
    fleet_id = conn.execute(
        select(vehicles.c.fleet_id).where(vehicles.c.vehicle_id == vehicle_id)
    ).scalar_one_or_none()
    q = select(places).where(
        (places.c.vehicle_id == vehicle_id)
        | ((places.c.fleet_id == fleet_id) & places.c.fleet_id.is_not(None))
        | (places.c.vehicle_id.is_(None) & places.c.fleet_id.is_(None))
    )
    return [stored_place(r._mapping).place for r in conn.execute(q.order_by(places.c.place_id))]


def _row(place: Place, vehicle_id: str | None, fleet_id: str | None) -> dict[str, Any]:
    g = place.geometry
    geometry = (
        {"circle": [g.lat_deg, g.lon_deg, g.radius_m]}
        if isinstance(g, Circle)
        else {"polygon": [list(v) for v in g.vertices]}
    )
    return {
        "place_id": place.place_id,
        "name": place.name,
        "kind": place.kind.value,
        "fleet_id": fleet_id,
        "vehicle_id": vehicle_id,
        "geometry_json": json.dumps(geometry),
        "tariff_id": place.tariff_id,
    }


def stored_place(row: Any) -> StoredPlace:
    """A :class:`StoredPlace` from a row of the ``places`` table."""
    g = json.loads(row["geometry_json"])
    geometry: Circle | Polygon = (
        Circle(*g["circle"])
        if "circle" in g
        else Polygon(tuple((float(a), float(b)) for a, b in g["polygon"]))
    )
    place = Place(row["place_id"], row["name"], PlaceKind(row["kind"]), geometry, row["tariff_id"])
    return StoredPlace(place, row["vehicle_id"], row["fleet_id"])
