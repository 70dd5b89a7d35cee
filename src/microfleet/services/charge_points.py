"""Charge points as a use case: sites and chargers registered by a fleet's operator, and what chargers say.

The OCPP central system (``ingest/ocpp_central.py``) authenticates each charger by its own password and
hands every message to :class:`ChargePointService`; the service stores it and tells the re-planning
worker about a deviation from the plan: a car that arrives (a transaction starts), a car unplugged early
(a transaction stops while the plan still had energy for it), a charger that faults, a profile rejected.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.charge_points import (
    ChargePoint,
    ChargingSite,
    ChargingTransaction,
    PointStatus,
    check_charge_point,
    check_point_id,
    check_site_limit,
)
from microfleet.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyRequestsError,
)
from microfleet.services.accounts import AccountService
from microfleet.services.throttle import FailureThrottle


class ChargePointPort(Protocol):
    """Sites, charge points and transactions (``microfleet.store.charging_store.ChargingStore``)."""

    def add_site(self, site: ChargingSite, now_ms: int) -> None:
        """Store a site."""
        ...

    def site(self, site_id: str) -> ChargingSite | None:
        """One site."""
        ...

    def sites(self, fleet_id: str) -> list[ChargingSite]:
        """A fleet's sites."""
        ...

    def add_charge_point(self, point: ChargePoint, password_sha256: str, now_ms: int) -> None:
        """Store a charge point."""
        ...

    def charge_points(self, site_ids: Sequence[str]) -> list[ChargePoint]:
        """The charge points of these sites."""
        ...

    def verify_password(self, charge_point_id: str, password_sha256: str) -> ChargePoint | None:
        """The charge point this password hash belongs to."""
        ...

    def fleet_of_point(self, charge_point_id: str) -> str | None:
        """The fleet owning a charge point's site."""
        ...

    def record_boot(self, charge_point_id: str, vendor: str, model: str, now_ms: int) -> None:
        """Note a BootNotification."""
        ...

    def record_config(self, charge_point_id: str, config: dict[str, str]) -> None:
        """Keep the charger's configuration keys."""
        ...

    def record_status(self, charge_point_id: str, status: PointStatus, now_ms: int) -> None:
        """Note a status."""
        ...

    def record_seen(self, charge_point_id: str, now_ms: int) -> None:
        """Note a heartbeat."""
        ...

    def start_transaction(
        self, charge_point_id: str, connector_id: int, id_tag: str, start_ms: int, meter_start_wh: int
    ) -> ChargingTransaction:
        """Open a transaction."""
        ...

    def stop_transaction(
        self, charge_point_id: str, transaction_id: int, stop_ms: int, meter_stop_wh: int, reason: str
    ) -> ChargingTransaction | None:
        """Close a transaction."""
        ...

    def record_meter(
        self,
        charge_point_id: str,
        transaction_id: int,
        power_kw: float | None,
        energy_wh: float | None,
        at_ms: int,
    ) -> None:
        """Keep a transaction's latest meter values."""
        ...

    def open_transactions(self, charge_point_ids: Sequence[str]) -> list[ChargingTransaction]:
        """Open transactions at these charge points."""
        ...


@dataclass(frozen=True, slots=True)
class Deviation:
    """Something that makes the fleet's plan stale: ``kind`` is arrival, departure, fault or rejected."""

    fleet_id: str
    kind: str
    charge_point_id: str
    detail: str


DeviationSink = Callable[[Deviation], None]


def password_sha256(password: str) -> str:
    """The stored form of a charge point's password."""
    return hashlib.sha256(password.encode()).hexdigest()


class ChargePointService:
    """Register sites and chargers (operators of the fleet, admins) and take what chargers report."""

    def __init__(
        self,
        store: ChargePointPort,
        accounts: AccountService,
        failures: FailureThrottle,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._failures = failures
        self._clock = clock
        self._sinks: list[DeviationSink] = []
        # Chargers that rejected a profile: planned as uncontrolled until they accept one again.
        self.rejecting: set[str] = set()
        self._faulted: set[str] = set()  # chargers that said Faulted, until they say anything else

    def on_deviation(self, sink: DeviationSink) -> None:
        """Call ``sink`` on every deviation (the re-planning worker subscribes)."""
        self._sinks.append(sink)

    # --- registration (operators, admins) -----------------------------------------------------------

    def require_fleet_operator(self, user: UserPrincipal, fleet_id: str) -> None:
        """Let through only the fleet's operator or an admin (404 for a fleet that does not exist)."""
        self._accounts.require_fleet(fleet_id)
        if not (user.role is Role.ADMIN or (user.role is Role.OPERATOR and user.fleet_id == fleet_id)):
            raise PermissionDeniedError("only the fleet's operator or an admin manages its charging")

    def add_site_for(
        self, user: UserPrincipal, fleet_id: str, site_id: str, name: str, power_limit_kw: float
    ) -> ChargingSite:
        """Register a depot of a fleet with its grid connection's limit."""
        self.require_fleet_operator(user, fleet_id)
        site = ChargingSite(
            check_point_id(site_id, "site_id"), fleet_id, name, check_site_limit(power_limit_kw)
        )
        self._store.add_site(site, self._clock())
        return site

    def sites_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargingSite]:
        """A fleet's sites."""
        self.require_fleet_operator(user, fleet_id)
        return self._store.sites(fleet_id)

    def add_charge_point_for(
        self,
        user: UserPrincipal,
        site_id: str,
        charge_point_id: str,
        *,
        connectors: int,
        max_kw: float,
        min_current_a: float,
        phases: int,
        voltage_v: float,
        smart: bool,
    ) -> tuple[ChargePoint, str]:
        """Register a charger at a site; returns it and its Basic-auth password, shown this once."""
        site = self._store.site(site_id)
        if site is None or not (user.role is Role.ADMIN or user.fleet_id == site.fleet_id):
            raise NotFoundError(f"site {site_id} does not exist")  # another fleet's site: as if none
        self.require_fleet_operator(user, site.fleet_id)
        check_charge_point(connectors, max_kw, min_current_a, phases, voltage_v)
        if min_current_a * phases * voltage_v / 1000.0 > site.power_limit_kw:
            raise InvalidInputError(
                f"site {site_id}'s limit {site.power_limit_kw} kW is below the charger's minimum current"
            )
        point = ChargePoint(
            check_point_id(charge_point_id),
            site_id,
            connectors,
            max_kw,
            min_current_a,
            phases,
            voltage_v,
            smart,
        )
        # 256 bits from the OS's CSPRNG; OCPP 1.6 security profile 1 allows 16-40 characters (base64url: 43,
        # so 30 bytes = 40 characters). Source: OCPP 1.6 Security Whitepaper ed. 2, AuthorizationKey.
        password = secrets.token_urlsafe(30)
        self._store.add_charge_point(point, password_sha256(password), self._clock())
        return point, password

    def charge_points_for(self, user: UserPrincipal, fleet_id: str) -> list[ChargePoint]:
        """A fleet's chargers with their last status."""
        self.require_fleet_operator(user, fleet_id)
        return self._store.charge_points([s.site_id for s in self._store.sites(fleet_id)])

    # --- what chargers say (the OCPP central system) --------------------------------------------------

    def authenticate(self, charge_point_id: str, password: str, client: str) -> ChargePoint:
        """The charger with this identity and password; :class:`AuthenticationError` otherwise.

        A failure counts against ``client``'s address in the API's one throttle (as a wrong token does):
        past its limit the answer is :class:`TooManyRequestsError`.
        """
        point = self._store.verify_password(charge_point_id, password_sha256(password))
        if point is None:
            wait_s = self._failures.failed(client)
            if wait_s is None:
                raise AuthenticationError("unknown charge point or wrong password")
            raise TooManyRequestsError(f"too many failed authentications; retry in {wait_s} s", wait_s)
        return point

    def booted(self, charge_point_id: str, vendor: str, model: str) -> None:
        """A charger (re)booted."""
        self._store.record_boot(charge_point_id, vendor, model, self._clock())

    def configured(self, charge_point_id: str, config: dict[str, str]) -> None:
        """A charger's configuration keys, as GetConfiguration answered."""
        self._store.record_config(charge_point_id, config)

    def now_ms(self) -> int:
        """Now, by the service's clock (UTC epoch ms)."""
        return self._clock()

    def heartbeat(self, charge_point_id: str) -> int:
        """A charger is alive; returns now (the Heartbeat's answer)."""
        now_ms = self._clock()
        self._store.record_seen(charge_point_id, now_ms)
        return now_ms

    def status(self, charge_point_id: str, status: PointStatus, detail: str = "") -> None:
        """A charger's status; a fault is a deviation."""
        self._store.record_status(charge_point_id, status, self._clock())
        if status is PointStatus.FAULTED:
            self._faulted.add(charge_point_id)
            self._deviate("fault", charge_point_id, detail or "the charger reports Faulted")
        elif charge_point_id in self._faulted:  # back in service: plan with it again now
            self._faulted.discard(charge_point_id)
            self._deviate("recovered", charge_point_id, detail or f"the charger reports {status.value}")

    def started(self, charge_point_id: str, connector_id: int, id_tag: str, meter_start_wh: int) -> int:
        """A car started charging; returns the transaction id. An arrival is a deviation."""
        tx = self._store.start_transaction(
            charge_point_id, connector_id, id_tag, self._clock(), meter_start_wh
        )
        self._deviate("arrival", charge_point_id, f"{id_tag} plugged in on connector {connector_id}")
        return tx.transaction_id

    def stopped(
        self, charge_point_id: str, transaction_id: int, meter_stop_wh: int, reason: str, *, early: bool
    ) -> ChargingTransaction | None:
        """A transaction stopped; ``early`` (the plan still had energy for it) makes it a departure."""
        tx = self._store.stop_transaction(
            charge_point_id, transaction_id, self._clock(), meter_stop_wh, reason
        )
        if tx is not None and early:
            self._deviate("departure", charge_point_id, f"{tx.id_tag} left before the plan's end ({reason})")
        return tx

    def metered(
        self, charge_point_id: str, transaction_id: int, power_kw: float | None, energy_wh: float | None
    ) -> None:
        """A transaction's meter values."""
        self._store.record_meter(charge_point_id, transaction_id, power_kw, energy_wh, self._clock())

    def profile_answered(self, charge_point_id: str, accepted: bool, detail: str) -> None:
        """A charger accepted or rejected a charging profile; a rejection is a deviation."""
        if accepted:
            self.rejecting.discard(charge_point_id)
            return
        first = charge_point_id not in self.rejecting
        self.rejecting.add(charge_point_id)
        if first:  # one re-plan per rejecting charger, not one per profile it keeps rejecting
            self._deviate("rejected", charge_point_id, detail)

    def open_transactions(self, charge_point_ids: Sequence[str]) -> list[ChargingTransaction]:
        """Open transactions at these chargers."""
        return self._store.open_transactions(charge_point_ids)

    def _deviate(self, kind: str, charge_point_id: str, detail: str) -> None:
        fleet_id = self._store.fleet_of_point(charge_point_id)
        if fleet_id is None:
            return
        deviation = Deviation(fleet_id, kind, charge_point_id, detail)
        for sink in self._sinks:
            sink(deviation)
