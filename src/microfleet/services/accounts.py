"""Accounts as a use case: who a token belongs to, which vehicles a user sees, and administration.

Visibility is the one rule every read of a vehicle goes through: an unseen vehicle is reported as not
existing (404), so ids do not leak (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import Principal, Role, UserPrincipal, Vehicle
from microfleet.errors import AuthenticationError, NotFoundError, PermissionDeniedError, TooManyRequestsError
from microfleet.services.throttle import FailureThrottle


@dataclass(frozen=True, slots=True)
class DeviceCredential:
    """A vehicle's new device credential, shown once, and until when the one it replaced still works."""

    vehicle_id: str
    token: str
    previous_valid_until_ms: int | None  # None: the replaced credential stopped working at once


def may_rotate_device_credential(user: UserPrincipal, vehicle: Vehicle) -> bool:
    """Admins rotate any vehicle's credential; an operator, those of their own fleet's vehicles.

    A grant lets a user see a vehicle, not look after its telematics unit, which is where the new
    credential has to go: owners and drivers do not rotate (docs/security.md).
    """
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.OPERATOR and user.fleet_id is not None and vehicle.fleet_id == user.fleet_id


class AccountPort(Protocol):
    """Resolving tokens and answering visibility (``microfleet.store.accounts.AccountStore``)."""

    def authenticate(self, token: str) -> Principal:
        """The user or vehicle a token belongs to; :class:`AuthenticationError` if nobody."""
        ...

    def visible_vehicles(self, user: UserPrincipal) -> list[Vehicle]:
        """Every vehicle the user may see."""
        ...

    def can_see(self, user: UserPrincipal, vehicle_id: str) -> bool:
        """Tell whether the user may see this vehicle (False for an unknown one)."""
        ...

    def get_vehicle(self, vehicle_id: str) -> Vehicle:
        """A registered vehicle; :class:`NotFoundError` if there is none."""
        ...

    def fleet_exists(self, fleet_id: str) -> bool:
        """Tell whether a fleet is registered."""
        ...

    def rotate_device_token(self, vehicle_id: str, overlap_ms: int = 0) -> DeviceCredential:
        """A new device credential; the replaced one works ``overlap_ms`` more (and ends an older one)."""
        ...


class AccountService:
    """Authentication and visibility for the API; the store's administration for the CLI and demo."""

    def __init__(self, store: AccountPort, failures: FailureThrottle, *, device_overlap_ms: int) -> None:
        self._store = store
        self._failures = failures
        self._device_overlap_ms = device_overlap_ms

    def authenticate(self, token: str, client: str) -> Principal:
        """The user or vehicle calling with ``token`` from the address ``client``.

        A token that matches nobody counts as a failure of ``client``; past its limit the answer is
        :class:`TooManyRequestsError` instead of :class:`AuthenticationError`. A valid token is always
        accepted, whatever its client's failures (docs/security.md).
        """
        try:
            return self._store.authenticate(token)
        except AuthenticationError:
            wait_s = self._failures.failed(client)
            if wait_s is None:
                raise
            raise TooManyRequestsError(
                f"too many failed authentications from this address; retry in {wait_s} s", wait_s
            ) from None

    def visible_vehicles(self, user: UserPrincipal) -> list[Vehicle]:
        """Vehicles granted to the user or their fleet (every one for an admin)."""
        return self._store.visible_vehicles(user)

    def visible_vehicle_ids(self, user: UserPrincipal) -> list[str] | None:
        """Ids of the vehicles the user sees; None for an admin, who sees every vehicle."""
        if user.role is Role.ADMIN:
            return None
        return [v.vehicle_id for v in self._store.visible_vehicles(user)]

    def can_see(self, user: UserPrincipal, vehicle_id: str) -> bool:
        """Tell whether the user may see this vehicle."""
        return self._store.can_see(user, vehicle_id)

    def vehicle_for(self, user: UserPrincipal, vehicle_id: str) -> Vehicle:
        """The vehicle, if the user may see it; else :class:`NotFoundError`, as for an unknown one."""
        if not self._store.can_see(user, vehicle_id):
            raise NotFoundError(f"vehicle {vehicle_id!r} does not exist or is not shared with you")
        return self._store.get_vehicle(vehicle_id)

    def require_vehicle(self, vehicle_id: str) -> Vehicle:
        """A registered vehicle (for the installation's administrator); :class:`NotFoundError` if none."""
        return self._store.get_vehicle(vehicle_id)

    def rotate_device_credential_for(
        self, user: UserPrincipal, vehicle_id: str, *, end_previous_now: bool = False
    ) -> DeviceCredential:
        """Rotate a vehicle's device credential for a user allowed to (else 403, or 404 if unseen)."""
        vehicle = self.vehicle_for(user, vehicle_id)
        if not may_rotate_device_credential(user, vehicle):
            raise PermissionDeniedError(
                "only an admin or the operator of the vehicle's fleet rotates its device credential"
            )
        return self.rotate_device_credential(vehicle_id, end_previous_now=end_previous_now)

    def rotate_device_credential(
        self, vehicle_id: str, *, end_previous_now: bool = False
    ) -> DeviceCredential:
        """Give a vehicle a new device credential (for the installation's administrator).

        The replaced credential keeps working for the configured overlap, so a car is not cut off
        between the rotation and its unit receiving the new one; ``end_previous_now`` (a leaked
        credential) stops it at once. A rotation during the overlap ends the credential before.
        """
        overlap_ms = 0 if end_previous_now else self._device_overlap_ms
        return self._store.rotate_device_token(vehicle_id, overlap_ms)

    def require_fleet(self, fleet_id: str) -> None:
        """Refuse a fleet that is not registered with :class:`NotFoundError`."""
        if not self._store.fleet_exists(fleet_id):
            raise NotFoundError(f"fleet {fleet_id!r} does not exist")

    def fleet_vehicle_ids(self, user: UserPrincipal, fleet_id: str | None) -> list[str]:
        """The vehicles a fleet figure covers: those the user sees, of one fleet if asked."""
        return [
            v.vehicle_id
            for v in self._store.visible_vehicles(user)
            if fleet_id is None or v.fleet_id == fleet_id
        ]


class AccountAdmin(Protocol):
    """Administration as ``microfleet admin`` and the demo use it.

    The store enforces its rules itself (unique names, known fleets and roles, well-formed vehicle ids),
    so no service sits in between.
    """

    def add_fleet(self, fleet_id: str, name: str) -> None:
        """Register a fleet."""
        ...

    def add_user(self, name: str, role: Role, fleet_id: str | None = None) -> int:
        """Register a user; returns their id."""
        ...

    def issue_token(self, user_name: str, label: str = "") -> str:
        """A new API token for the user (shown once)."""
        ...

    def revoke_tokens(self, user_name: str) -> int:
        """Revoke every token of the user; returns how many."""
        ...

    def add_vehicle(
        self,
        vehicle_id: str,
        *,
        name: str | None = None,
        model_id: str | None = None,
        fleet_id: str | None = None,
    ) -> str:
        """Register a vehicle; returns its device credential (shown once)."""
        ...

    def grant(self, vehicle_id: str, *, user_name: str | None = None, fleet_id: str | None = None) -> None:
        """Let a user, or every user of a fleet, see a vehicle."""
        ...

    def list_users(self) -> list[UserPrincipal]:
        """Every user."""
        ...
