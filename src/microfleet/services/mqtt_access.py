"""Cars' MQTT credentials as a use case: issue, rotate and revoke a registered vehicle's broker login.

A car logs in to the broker with its vehicle id as user name and a password Microfleet issues (shown once);
the broker's ACL confines it to its own topics (``microfleet.ingest.mosquitto_config``). The broker keeps
the credentials (a hash of each password in its password file), so Microfleet's store holds none.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import Vehicle
from microfleet.errors import ConflictError, NotFoundError

# A kind prefix, as the device and user tokens have, then 256 random bits.
MQTT_PASSWORD_PREFIX = "mfm_"


class BrokerAccounts(Protocol):
    """The broker's user list as this use case needs it (``MosquittoFiles``)."""

    def set_password(self, username: str, password: str) -> None:
        """Give a user this password (adding the user if new)."""
        ...

    def remove(self, username: str) -> bool:
        """Take a user out; False if it was not there."""
        ...

    def usernames(self) -> list[str]:
        """Every user the broker knows."""
        ...

    def apply(self) -> bool:
        """Write the ACL and make the broker reread its users; False if no running broker was told."""
        ...


class VehicleLookup(Protocol):
    """Registered vehicles (``AccountService``)."""

    def require_vehicle(self, vehicle_id: str) -> Vehicle:
        """A registered vehicle; :class:`NotFoundError` if there is none."""
        ...


@dataclass(frozen=True, slots=True)
class MqttCredential:
    """A broker login, shown once: the user name and its new password."""

    username: str
    password: str
    broker_reloaded: bool  # False: no running broker was told; it takes effect at its next (re)start


class MqttAccessService:
    """Issue, rotate and revoke cars' broker logins, and set Microfleet's own ingest login."""

    def __init__(self, vehicles: VehicleLookup, broker: BrokerAccounts, *, ingest_username: str) -> None:
        self._vehicles = vehicles
        self._broker = broker
        self._ingest_username = ingest_username

    def issue(self, vehicle_id: str) -> MqttCredential:
        """A new password for a registered vehicle's login; a previous one stops working at the reload.

        No overlap as device credentials have: the broker keeps one password per user, and a car that
        cannot log in keeps its QoS 1 messages until its unit has the new password.
        """
        self._vehicles.require_vehicle(vehicle_id)
        if vehicle_id == self._ingest_username:
            raise ConflictError(
                f"vehicle {vehicle_id!r} has the ingest user's name; set MICROFLEET_MQTT_USERNAME to another"
            )
        password = MQTT_PASSWORD_PREFIX + secrets.token_urlsafe(32)
        self._broker.set_password(vehicle_id, password)
        return MqttCredential(vehicle_id, password, self._broker.apply())

    def revoke(self, vehicle_id: str) -> bool:
        """End a vehicle's broker login; True if the broker was told at once."""
        if not self._broker.remove(vehicle_id):
            raise NotFoundError(f"vehicle {vehicle_id!r} has no MQTT login")
        return self._broker.apply()

    def set_ingest_login(self) -> MqttCredential:
        """A new password for Microfleet's own ingest user (for ``MICROFLEET_MQTT_PASSWORD``)."""
        password = MQTT_PASSWORD_PREFIX + secrets.token_urlsafe(32)
        self._broker.set_password(self._ingest_username, password)
        return MqttCredential(self._ingest_username, password, self._broker.apply())

    def vehicles_with_login(self) -> list[str]:
        """The vehicle ids that have a broker login."""
        return [name for name in self._broker.usernames() if name != self._ingest_username]
