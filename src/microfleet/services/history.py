"""Derived history as its readers see it: a car's drives, charges and states, and fleet summaries.

Every read here is of vehicles the caller may see: per-vehicle reads take a vehicle the entry point
resolved with :meth:`AccountService.vehicle_for`; fleet figures cover the user's
:meth:`AccountService.fleet_vehicle_ids`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from microfleet.domain.access import UserPrincipal
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.places import StoredPlace
from microfleet.domain.summaries import Period, Summary, summarise, summarise_by_zone
from microfleet.services.accounts import AccountService

UNZONED = "unzoned"  # the zone of drives and charges outside every place
ALL_ROWS = 1_000_000  # a summary reads every drive and charge of its window


class HistoryReads(Protocol):
    """The derived-history tables (``microfleet.store.history.HistoryStore``)."""

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """Charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def states(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """State spans that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def excluded(self, vehicle_id: str, limit: int) -> list[dict[str, Any]]:
        """Records left out of the history, with their reasons."""
        ...


class PlaceNames(Protocol):
    """Every stored place (``microfleet.store.places_store.PlaceStore``), to name summary zones."""

    def visible(self, vehicle_ids: None) -> list[StoredPlace]:
        """Every place (``None``: no visibility filter)."""
        ...


@dataclass(frozen=True, slots=True)
class NamedZoneSummary:
    """A period summary of one zone, with the zone's name (``unzoned`` outside every place)."""

    summary: Summary
    place_id: str | None
    name: str


class HistoryService:
    """Reads of derived history and the summaries built from it."""

    def __init__(self, store: HistoryReads, places: PlaceNames, accounts: AccountService) -> None:
        self._store = store
        self._places = places
        self._accounts = accounts

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """A vehicle's drives that started in ``[from_ms, to_ms)``, oldest first."""
        return self._store.drives(vehicle_id, from_ms, to_ms, limit)

    def last_drives(self, vehicle_id: str, count: int) -> list[Drive]:
        """A vehicle's newest ``count`` drives, oldest first."""
        return self._store.drives(vehicle_id, 0, 2**62, ALL_ROWS)[-count:]

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """A vehicle's charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        return self._store.charges(vehicle_id, from_ms, to_ms, limit)

    def last_charges(self, vehicle_id: str, count: int) -> list[ChargeSession]:
        """A vehicle's newest ``count`` charge sessions, oldest first."""
        return self._store.charges(vehicle_id, 0, 2**62, ALL_ROWS)[-count:]

    def states(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """A vehicle's state spans that started in ``[from_ms, to_ms)``, oldest first."""
        return self._store.states(vehicle_id, from_ms, to_ms, limit)

    def excluded(self, vehicle_id: str, limit: int) -> list[dict[str, Any]]:
        """Stored records the history leaves out (GPS jump, odometer backwards, ...), oldest first."""
        return self._store.excluded(vehicle_id, limit)

    def vehicle_summary(
        self, vehicle_id: str, period: Period, from_ms: int, to_ms: int, tz: ZoneInfo
    ) -> list[Summary]:
        """One vehicle's distance, energy, cost, efficiency and utilisation per period."""
        drives, charges = self._history_of([vehicle_id], from_ms, to_ms)
        return summarise(drives, charges, period, vehicle_count=1, tz=tz)

    def fleet_summary(
        self,
        user: UserPrincipal,
        fleet_id: str | None,
        period: Period,
        from_ms: int,
        to_ms: int,
        tz: ZoneInfo,
    ) -> list[Summary]:
        """Per-period totals over every vehicle the user sees (of one fleet if asked), summed."""
        count, drives, charges = self._fleet_history(user, fleet_id, from_ms, to_ms)
        return summarise(drives, charges, period, vehicle_count=count, tz=tz)

    def zone_summary(
        self,
        user: UserPrincipal,
        fleet_id: str | None,
        period: Period,
        from_ms: int,
        to_ms: int,
        tz: ZoneInfo,
    ) -> list[NamedZoneSummary]:
        """Per-period totals per zone: drives by the place they started in, charges by where they charged.

        Zones are named places; ``unzoned`` holds what happened outside every place (sorted last in a
        period). The zones of a period sum to the fleet summary's figures, utilisation included.
        """
        count, drives, charges = self._fleet_history(user, fleet_id, from_ms, to_ms)
        names = {p.place.place_id: p.place.name for p in self._places.visible(None)}
        out = []
        for z in summarise_by_zone(drives, charges, period, vehicle_count=count, tz=tz):
            pid = z.zone_place_id
            name = UNZONED if pid is None else names.get(pid, pid)  # a place deleted since: its id
            out.append(NamedZoneSummary(z.summary, pid, name))
        return sorted(out, key=lambda z: (z.summary.period_start, z.place_id is None, z.name))

    def _fleet_history(
        self, user: UserPrincipal, fleet_id: str | None, from_ms: int, to_ms: int
    ) -> tuple[int, list[Drive], list[ChargeSession]]:
        """How many vehicles a fleet figure covers (at least 1), and their drives and charges."""
        ids = self._accounts.fleet_vehicle_ids(user, fleet_id)
        drives, charges = self._history_of(ids, from_ms, to_ms)
        return max(1, len(ids)), drives, charges

    def _history_of(
        self, vehicle_ids: list[str], from_ms: int, to_ms: int
    ) -> tuple[list[Drive], list[ChargeSession]]:
        drives: list[Drive] = []
        charges: list[ChargeSession] = []
        for vid in vehicle_ids:
            drives += self._store.drives(vid, from_ms, to_ms, ALL_ROWS)
            charges += self._store.charges(vid, from_ms, to_ms, ALL_ROWS)
        return drives, charges
