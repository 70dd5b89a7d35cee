"""Places as a use case: who sees and may change which places, suggestions from stops, enter/exit events.

A place's scope is one vehicle, one fleet, or every vehicle (global). Everyone reads the global places,
their fleet's, and those of every vehicle they see; owners and operators write their vehicles' places,
an operator their fleet's, an admin any (the rules are in :mod:`microfleet.domain.access`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import (
    Role,
    UserPrincipal,
    can_write_fleet_places,
    can_write_global_places,
    can_write_vehicle_places,
)
from microfleet.domain.places import (
    DiscoveredPlace,
    Place,
    PlaceEntered,
    PlaceExited,
    StoredPlace,
    geofence_events,
    suggest_places,
)
from microfleet.errors import NotFoundError, PermissionDeniedError
from microfleet.services.accounts import AccountService


class PlacePort(Protocol):
    """The places table (``microfleet.store.places_store.PlaceStore``); writes mark cars stale."""

    def put(self, place: Place, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> list[str]:
        """Check and store a place; returns the cars whose history is now stale."""
        ...

    def get(self, place_id: str) -> StoredPlace:
        """One place; :class:`NotFoundError` if there is none."""
        ...

    def delete(self, place_id: str) -> list[str]:
        """Delete a place; returns the cars whose history is now stale."""
        ...

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[StoredPlace]:
        """Global places, these fleets' and these vehicles' (``None``: every place)."""
        ...

    def applying_to(self, vehicle_id: str) -> list[Place]:
        """The places that apply to a vehicle: its own, its fleet's, the global ones."""
        ...


class StopsAndFixes(Protocol):
    """Where a vehicle stopped and where it was (``microfleet.store.history.HistoryStore``)."""

    def stop_positions(self, vehicle_id: str, from_ms: int, to_ms: int) -> list[tuple[float, float]]:
        """Where the vehicle's drives that started in ``[from_ms, to_ms)`` ended."""
        ...

    def fixes(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[tuple[int, float, float]]:
        """Position fixes ``(ts_ms, lat_deg, lon_deg)`` in ``[from_ms, to_ms)``, less excluded records."""
        ...


@dataclass(frozen=True, slots=True)
class PlaceEvents:
    """Enter/exit events in a window of fixes; the next page starts at ``next_from_ms`` (None: no more)."""

    inside_at_start: list[str]
    events: list[PlaceEntered | PlaceExited]
    names: dict[str, str]
    next_from_ms: int | None


class PlaceService:
    """Create, list and delete places with their access rules; suggest places; enter/exit events."""

    def __init__(self, store: PlacePort, accounts: AccountService, history: StopsAndFixes) -> None:
        self._store = store
        self._accounts = accounts
        self._history = history

    # --- as a user of the API ---------------------------------------------------------------------------

    def visible_to(self, user: UserPrincipal) -> list[StoredPlace]:
        """Global places, the user's fleet's, and every place that applies to a vehicle they see."""
        if user.role is Role.ADMIN:
            return self._store.visible(None)
        seen = self._accounts.visible_vehicles(user)
        fleets = {v.fleet_id for v in seen if v.fleet_id} | ({user.fleet_id} if user.fleet_id else set())
        return self._store.visible([v.vehicle_id for v in seen], fleets)

    def visible_for_vehicle(self, user: UserPrincipal, vehicle_id: str) -> list[StoredPlace]:
        """The places the user sees that apply to one vehicle they see."""
        fleet_id = self._accounts.vehicle_for(user, vehicle_id).fleet_id
        return [
            p
            for p in self.visible_to(user)
            if p.vehicle_id == vehicle_id
            or p.scope == "global"
            or (p.scope == "fleet" and p.fleet_id == fleet_id)
        ]

    def create(
        self, user: UserPrincipal, place: Place, *, vehicle_id: str | None, fleet_id: str | None
    ) -> StoredPlace:
        """Create a place of a scope the user may write; the cars it applies to are re-derived."""
        self._may_write(user, vehicle_id, fleet_id)
        self._store.put(place, vehicle_id=vehicle_id, fleet_id=fleet_id)
        return StoredPlace(place, vehicle_id, fleet_id)

    def delete_as(self, user: UserPrincipal, place_id: str) -> None:
        """Delete a place the user sees and may write (404 for one they do not see)."""
        if not any(p.place.place_id == place_id for p in self.visible_to(user)):
            raise NotFoundError(f"place {place_id!r} does not exist or is not shared with you")
        stored = self._store.get(place_id)
        self._may_write(user, stored.vehicle_id, stored.fleet_id)
        self._store.delete(place_id)

    def _may_write(self, user: UserPrincipal, vehicle_id: str | None, fleet_id: str | None) -> None:
        """Refuse a user who may not write a place of this scope (404 for an unseen vehicle)."""
        if vehicle_id is not None:
            self._accounts.vehicle_for(user, vehicle_id)
            if not can_write_vehicle_places(user):
                raise PermissionDeniedError(f"a {user.role.value} may not change a vehicle's places")
        elif fleet_id is not None:
            if not can_write_fleet_places(user, fleet_id):
                raise PermissionDeniedError("only the fleet's operator or an admin may change its places")
            self._accounts.require_fleet(fleet_id)
        elif not can_write_global_places(user):
            raise PermissionDeniedError("only an admin may change places that apply to every vehicle")

    # --- as the installation's administrator (CLI) ------------------------------------------------------

    def add(self, place: Place, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> list[str]:
        """Add a place for an existing vehicle, an existing fleet, or everyone; returns cars to re-derive."""
        if vehicle_id is not None:
            self._accounts.require_vehicle(vehicle_id)
        if fleet_id is not None:
            self._accounts.require_fleet(fleet_id)
        return self._store.put(place, vehicle_id=vehicle_id, fleet_id=fleet_id)

    def put(self, place: Place, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> list[str]:
        """Store a place (created or replaced) as given; returns the cars to re-derive."""
        return self._store.put(place, vehicle_id=vehicle_id, fleet_id=fleet_id)

    def get(self, place_id: str) -> StoredPlace:
        """One place."""
        return self._store.get(place_id)

    def delete(self, place_id: str) -> list[str]:
        """Delete a place; returns the cars whose history is re-derived without it."""
        return self._store.delete(place_id)

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[StoredPlace]:
        """Global places, these fleets' and these vehicles' (``None``: every place)."""
        return self._store.visible(vehicle_ids, fleet_ids)

    def applying_to(self, vehicle_id: str) -> list[Place]:
        """The places that apply to a vehicle."""
        return self._store.applying_to(vehicle_id)

    # --- learnt from the vehicle's history ---------------------------------------------------------------

    def suggestions(
        self, vehicle_id: str, *, radius_m: float, min_visits: int, from_ms: int = 0, to_ms: int = 2**62
    ) -> list[DiscoveredPlace]:
        """Where the vehicle's drives often end and no place that applies to it covers yet."""
        stops = self._history.stop_positions(vehicle_id, from_ms, to_ms)
        return suggest_places(stops, self._store.applying_to(vehicle_id), radius_m, min_visits)

    def events(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> PlaceEvents:
        """Enter/exit events from up to ``limit`` position fixes against the places that apply."""
        fixes = self._history.fixes(vehicle_id, from_ms, to_ms, limit + 1)
        # A next page starts at this page's last fix, its baseline: no event is lost or doubled.
        next_from_ms = fixes[limit - 1][0] if len(fixes) > limit else None
        fixes = fixes[:limit]
        known = self._store.applying_to(vehicle_id)
        first = fixes[0] if fixes else None
        inside = sorted(p.place_id for p in known if first and p.geometry.contains(first[1], first[2]))
        return PlaceEvents(
            inside_at_start=inside,
            events=geofence_events(vehicle_id, known, fixes),
            names={p.place_id: p.name for p in known},
            next_from_ms=next_from_ms,
        )
