"""Tracker keys: the secret a phone running OsmAnd or Traccar Client sends as its device ``id``.

Traccar identifies such phones by an id anyone can guess (traccar/traccar#732), so whoever knows a car's
id can move it on the map. Here the ``id`` is a 160-bit random key Microfleet issues for one vehicle and
can rotate or revoke; the vehicle's public id never authenticates anything. An unknown key is refused as
an unknown bearer token is, counted against its client by the same failure throttle.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.errors import AuthenticationError, PermissionDeniedError, TooManyRequestsError
from microfleet.services.accounts import AccountService
from microfleet.services.throttle import FailureThrottle

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrackerKeyInfo:
    """A vehicle's tracker key as listed: masked to its first characters, and when it was issued."""

    vehicle_id: str
    key_hint: str  # e.g. "mft_Ab3x…": enough to tell keys apart, far too little to use one
    issued_at_ms: int


@dataclass(frozen=True, slots=True)
class IssuedTrackerKey:
    """A new tracker key, shown once; ``replaced``: it took the place of a key that now stops working."""

    vehicle_id: str
    key: str
    replaced: bool


def may_manage_tracker_key(user: UserPrincipal, vehicle: Vehicle) -> bool:
    """Admins manage any vehicle's key, an operator their fleet's, an owner the cars they see.

    The phone is set up by whoever looks after the car: its owner, or its fleet's operator. Drivers only
    use a car (docs/security.md).
    """
    if user.role in (Role.ADMIN, Role.OWNER):
        return True  # an owner reaches here only for a vehicle they see (AccountService.vehicle_for)
    return user.role is Role.OPERATOR and user.fleet_id is not None and vehicle.fleet_id == user.fleet_id


class TrackerKeyPort(Protocol):
    """Tracker keys in the store (``microfleet.store.tracker_keys.TrackerKeyStore``)."""

    def issue(self, vehicle_id: str, *, replace: bool) -> IssuedTrackerKey:
        """A new key for the vehicle; the old one, if any, stops working in the same statement."""
        ...

    def revoke(self, vehicle_id: str) -> None:
        """Stop the vehicle's key; :class:`NotFoundError` if it has none."""
        ...

    def describe(self, vehicle_id: str) -> TrackerKeyInfo | None:
        """The vehicle's key, masked; None if it has none."""
        ...

    def list(self) -> list[TrackerKeyInfo]:
        """Every live key, masked, by vehicle."""
        ...

    def vehicle_of(self, key: str) -> str | None:
        """The vehicle a key belongs to; None for an unknown, rotated or revoked key."""
        ...


class TrackerKeyService:
    """Issue, list, rotate and revoke tracker keys; resolve the key a phone sends to its vehicle."""

    def __init__(self, store: TrackerKeyPort, accounts: AccountService, failures: FailureThrottle) -> None:
        self._store = store
        self._accounts = accounts
        self._failures = failures

    def authenticate(self, key: str | None, client: str) -> str:
        """The vehicle whose key ``client`` sent; else :class:`AuthenticationError` (one answer for all).

        A missing, unknown, rotated or revoked key gets the same sentence, so a caller learns nothing
        about which keys or vehicles exist; each counts as a failed authentication of ``client``, and past
        its limit the answer is :class:`TooManyRequestsError`.
        """
        vehicle_id = self._store.vehicle_of(key) if key else None
        if vehicle_id is not None:
            return vehicle_id
        log.warning("osmand: refused a request from %s: %s tracker key", client, "unknown" if key else "no")
        wait_s = self._failures.failed(client)
        if wait_s is not None:
            raise TooManyRequestsError(
                f"too many failed authentications from this address; retry in {wait_s} s", wait_s
            )
        raise AuthenticationError("send the vehicle's tracker key as the id parameter (device_id in JSON)")

    # --- administration (``microfleet vehicles tracker-key``) -------------------------------------

    def issue(self, vehicle_id: str, *, replace: bool) -> IssuedTrackerKey:
        """Issue a vehicle's key (``replace``: rotate the one it has, which stops working at once)."""
        self._accounts.require_vehicle(vehicle_id)
        return self._store.issue(vehicle_id, replace=replace)

    def revoke(self, vehicle_id: str) -> None:
        """Revoke a vehicle's key: the phone's next report is refused."""
        self._store.revoke(vehicle_id)

    def list(self) -> list[TrackerKeyInfo]:
        """Every vehicle's key, masked."""
        return self._store.list()

    # --- on behalf of a user (the API) ------------------------------------------------------------

    def _managed(self, user: UserPrincipal, vehicle_id: str) -> Vehicle:
        vehicle = self._accounts.vehicle_for(user, vehicle_id)  # 404 for a vehicle the user does not see
        if not may_manage_tracker_key(user, vehicle):
            raise PermissionDeniedError(
                "only the vehicle's owner, its fleet's operator or an admin manages its tracker key"
            )
        return vehicle

    def issue_for(self, user: UserPrincipal, vehicle_id: str) -> IssuedTrackerKey:
        """Issue or rotate a vehicle's key for a user allowed to."""
        self._managed(user, vehicle_id)
        return self._store.issue(vehicle_id, replace=True)

    def describe_for(self, user: UserPrincipal, vehicle_id: str) -> TrackerKeyInfo | None:
        """A vehicle's key, masked, for a user allowed to manage it."""
        self._managed(user, vehicle_id)
        return self._store.describe(vehicle_id)

    def revoke_for(self, user: UserPrincipal, vehicle_id: str) -> None:
        """Revoke a vehicle's key for a user allowed to."""
        self._managed(user, vehicle_id)
        self._store.revoke(vehicle_id)
