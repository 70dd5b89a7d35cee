"""Whom a place or a user tariff is for: one vehicle, one fleet, or (both ids None) everyone.

Both tables carry the same two nullable columns, ``vehicle_id`` and ``fleet_id``; these conditions select
by them the same way for both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, Table, false, or_


def scope_is(table: Table, vehicle_id: str | None, fleet_id: str | None) -> ColumnElement[bool]:
    """Rows for exactly this scope: the vehicle's, the fleet's, or the global ones (both None)."""
    c = table.c
    if vehicle_id is not None:
        return c.vehicle_id == vehicle_id
    if fleet_id is not None:
        return (c.fleet_id == fleet_id) & c.vehicle_id.is_(None)
    return c.vehicle_id.is_(None) & c.fleet_id.is_(None)


def visible_in(table: Table, vehicle_ids: Sequence[str], fleet_ids: Iterable[str]) -> ColumnElement[bool]:
    """Global rows, and those of these vehicles and of these fleets."""
    fleets = sorted(set(fleet_ids))
    return or_(
        scope_is(table, None, None),
        table.c.vehicle_id.in_(list(vehicle_ids)) if vehicle_ids else false(),
        table.c.fleet_id.in_(fleets) if fleets else false(),
    )
