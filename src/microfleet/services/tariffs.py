"""Tariffs as a use case: the built-in examples and users' own, who sees and may change which.

A user tariff's scope is one vehicle, one fleet, or every vehicle (global), and the rules are the places'
(:mod:`microfleet.domain.access`), since a tariff, like a place carrying it, sets what charges cost:
everyone reads the built-in examples, the global tariffs, their fleet's and those of every vehicle they
see (and those vehicles' fleets); owners and operators write their vehicles' tariffs, an operator their
fleet's, an admin any. Built-in examples are read-only. Changing a tariff re-costs every charge at a place
naming it; a tariff a place names cannot be deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from microfleet.domain.access import (
    Role,
    UserPrincipal,
    can_write_fleet_places,
    can_write_global_places,
    can_write_vehicle_places,
)
from microfleet.domain.tariffs import (
    DayAheadTariff,
    StoredTariff,
    Tariff,
    example_tariff_ids,
    example_tariffs,
    parse_day_ahead_csv,
    tariff_kind,
    with_day_ahead,
)
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.services.accounts import AccountService


class TariffPort(Protocol):
    """The tariffs table (``microfleet.store.tariffs_store.TariffStore``); a change marks cars stale."""

    def create(self, tariff: Tariff, *, vehicle_id: str | None = None, fleet_id: str | None = None) -> None:
        """Store a new user tariff (:class:`ConflictError` if its id is taken or built in)."""
        ...

    def get(self, tariff_id: str) -> StoredTariff:
        """One user tariff; :class:`NotFoundError` if there is none."""
        ...

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[StoredTariff]:
        """Global user tariffs, these fleets' and these vehicles' (``None``: every one)."""
        ...

    def replace(self, tariff: Tariff) -> list[str]:
        """Replace a user tariff's definition; returns the cars whose history is now stale."""
        ...

    def delete(self, tariff_id: str) -> None:
        """Delete a user tariff no place names (:class:`ConflictError` naming the places otherwise)."""
        ...


@dataclass(frozen=True, slots=True)
class DayAheadImport:
    """What an upload of day-ahead prices did: how many it read, the tariff now, the cars re-costed."""

    read: int
    stored: StoredTariff
    stale: list[str]


class TariffService:
    """List, create, replace and delete tariffs with their access rules; import day-ahead prices."""

    def __init__(self, store: TariffPort, accounts: AccountService) -> None:
        self._store = store
        self._accounts = accounts

    # --- as a user of the API ---------------------------------------------------------------------------

    def visible_to(self, user: UserPrincipal) -> list[StoredTariff]:
        """The built-in examples, then the user tariffs the user sees (all of them for an admin)."""
        if user.role is Role.ADMIN:
            return [*example_tariffs(), *self._store.visible(None)]
        seen = self._accounts.visible_vehicles(user)
        fleets = {v.fleet_id for v in seen if v.fleet_id} | ({user.fleet_id} if user.fleet_id else set())
        return [*example_tariffs(), *self._store.visible([v.vehicle_id for v in seen], fleets)]

    def get_as(self, user: UserPrincipal, tariff_id: str) -> StoredTariff:
        """A built-in example or a user tariff the user sees (404 otherwise)."""
        for stored in self.visible_to(user):
            if stored.tariff.tariff_id == tariff_id:
                return stored
        raise NotFoundError(f"tariff {tariff_id!r} does not exist or is not shared with you")

    def create(
        self, user: UserPrincipal, tariff: Tariff, *, vehicle_id: str | None, fleet_id: str | None
    ) -> StoredTariff:
        """Create a tariff of a scope the user may write."""
        self._may_write(user, vehicle_id, fleet_id)
        self._store.create(tariff, vehicle_id=vehicle_id, fleet_id=fleet_id)
        return StoredTariff(tariff, vehicle_id, fleet_id)

    def replace_as(self, user: UserPrincipal, tariff: Tariff) -> StoredTariff:
        """Replace a tariff the user sees and may write; a day-ahead tariff keeps its series.

        The charges at every place naming it are re-costed.
        """
        stored = self._writable(user, tariff.tariff_id)
        tariff = _keeping_series(stored.tariff, tariff)
        self._store.replace(tariff)
        return replace(stored, tariff=tariff)

    def delete_as(self, user: UserPrincipal, tariff_id: str) -> None:
        """Delete a tariff the user sees and may write, and that no place names."""
        self._writable(user, tariff_id)
        self._store.delete(tariff_id)

    def import_day_ahead_as(
        self, user: UserPrincipal, tariff_id: str, csv_text: str, *, replace_all: bool = False
    ) -> DayAheadImport:
        """Add (or with ``replace_all``, replace) a day-ahead tariff's prices from CSV; re-costs charges."""
        self._writable(user, tariff_id)
        return self.import_day_ahead(tariff_id, csv_text, replace_all=replace_all)

    def _writable(self, user: UserPrincipal, tariff_id: str) -> StoredTariff:
        """The tariff, if the user sees it and may change it (404 unseen, 403 built in or not theirs)."""
        stored = self.get_as(user, tariff_id)
        if stored.builtin:
            raise PermissionDeniedError(f"tariff {tariff_id!r} is a built-in example and cannot be changed")
        self._may_write(user, stored.vehicle_id, stored.fleet_id)
        return stored

    def _may_write(self, user: UserPrincipal, vehicle_id: str | None, fleet_id: str | None) -> None:
        """Refuse a user who may not write a tariff of this scope (404 for an unseen vehicle)."""
        if vehicle_id is not None:
            self._accounts.vehicle_for(user, vehicle_id)
            if not can_write_vehicle_places(user):
                raise PermissionDeniedError(f"a {user.role.value} may not change a vehicle's tariffs")
        elif fleet_id is not None:
            if not can_write_fleet_places(user, fleet_id):
                raise PermissionDeniedError("only the fleet's operator or an admin may change its tariffs")
            self._accounts.require_fleet(fleet_id)
        elif not can_write_global_places(user):
            raise PermissionDeniedError("only an admin may change tariffs that apply to every vehicle")

    # --- as the installation's administrator (CLI) ------------------------------------------------------

    def all(self) -> list[StoredTariff]:
        """The built-in examples, then every user tariff."""
        return [*example_tariffs(), *self._store.visible(None)]

    def get(self, tariff_id: str) -> StoredTariff:
        """A built-in example or a user tariff."""
        for stored in example_tariffs():
            if stored.tariff.tariff_id == tariff_id:
                return stored
        return self._store.get(tariff_id)

    def add(
        self, tariff: Tariff, *, vehicle_id: str | None = None, fleet_id: str | None = None
    ) -> StoredTariff:
        """Add a tariff for an existing vehicle, an existing fleet, or everyone."""
        if vehicle_id is not None:
            self._accounts.require_vehicle(vehicle_id)
        if fleet_id is not None:
            self._accounts.require_fleet(fleet_id)
        self._store.create(tariff, vehicle_id=vehicle_id, fleet_id=fleet_id)
        return StoredTariff(tariff, vehicle_id, fleet_id)

    def delete(self, tariff_id: str) -> None:
        """Delete a user tariff no place names."""
        if tariff_id in example_tariff_ids():
            raise PermissionDeniedError(f"tariff {tariff_id!r} is a built-in example and cannot be changed")
        self._store.delete(tariff_id)

    def import_day_ahead(self, tariff_id: str, csv_text: str, *, replace_all: bool = False) -> DayAheadImport:
        """Add (or replace) a stored day-ahead tariff's prices from CSV; returns what it did."""
        if tariff_id in example_tariff_ids():
            raise PermissionDeniedError(f"tariff {tariff_id!r} is a built-in example and cannot be changed")
        stored = self._store.get(tariff_id)
        if not isinstance(stored.tariff, DayAheadTariff):
            raise InvalidInputError(
                f"tariff {tariff_id!r} is a {tariff_kind(stored.tariff)} tariff; day-ahead prices go to a "
                "day_ahead tariff"
            )
        points = parse_day_ahead_csv(csv_text, stored.tariff.interval_min)
        tariff = with_day_ahead(stored.tariff, points, replace_all=replace_all)
        stale = self._store.replace(tariff)
        return DayAheadImport(len(points), replace(stored, tariff=tariff), stale)


def _keeping_series(old: Tariff, new: Tariff) -> Tariff:
    """A replacement day-ahead tariff keeps the prices already uploaded (checked against its interval)."""
    if isinstance(old, DayAheadTariff) and isinstance(new, DayAheadTariff) and old.starts_ms:
        return with_day_ahead(new, list(zip(old.starts_ms, old.prices, strict=True)))
    return new
