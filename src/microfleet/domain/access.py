"""Who is calling and what they may do: principals, roles and the access rules of the API.

Vehicle visibility: an admin sees every vehicle; anyone else sees the vehicles granted to them or to
their fleet, and an operator also sees every vehicle of their own fleet. A device credential writes
only its own vehicle's telemetry and reads nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a user is to Microfleet."""

    OWNER = "owner"
    DRIVER = "driver"
    OPERATOR = "operator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A person (or their script) calling with an API token."""

    user_id: int
    name: str
    role: Role
    fleet_id: str | None


@dataclass(frozen=True, slots=True)
class DevicePrincipal:
    """A vehicle calling with its own device credential."""

    vehicle_id: str


Principal = UserPrincipal | DevicePrincipal


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A registered vehicle."""

    vehicle_id: str
    name: str
    model_id: str | None
    fleet_id: str | None
    created_at_ms: int


# Quarantine holds raw device data: owners and operators inspect their cars', drivers do not.
_QUARANTINE_READERS = frozenset({Role.OWNER, Role.OPERATOR, Role.ADMIN})


def can_read_quarantine(user: UserPrincipal) -> bool:
    """Tell whether a user may list quarantined records (of the vehicles they see)."""
    return user.role in _QUARANTINE_READERS


def can_replay_quarantine(user: UserPrincipal) -> bool:
    """Tell whether a user may replay quarantined records: admins only, as it rewrites history."""
    return user.role is Role.ADMIN


# A place can carry a tariff and so changes the cost history of every car it applies to: drivers, who
# only use a car, read places but do not write them.
_VEHICLE_PLACE_WRITERS = frozenset({Role.OWNER, Role.OPERATOR, Role.ADMIN})


def can_write_vehicle_places(user: UserPrincipal) -> bool:
    """Tell whether a user may create or delete places of a vehicle they see (not drivers)."""
    return user.role in _VEHICLE_PLACE_WRITERS


def can_write_fleet_places(user: UserPrincipal, fleet_id: str) -> bool:
    """Tell whether a user may create or delete a fleet's places: its operator, or an admin."""
    return user.role is Role.ADMIN or (user.role is Role.OPERATOR and user.fleet_id == fleet_id)


def can_write_global_places(user: UserPrincipal) -> bool:
    """Tell whether a user may create or delete places that apply to every vehicle: admins only."""
    return user.role is Role.ADMIN
