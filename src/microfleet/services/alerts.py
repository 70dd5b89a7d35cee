"""Alerts as a use case: rules and who sets them, raising with de-duplication, the lifecycle, subscriptions.

Rules have the places' scopes and writers (:mod:`microfleet.domain.alerts`): an owner sets rules on the
cars they see, an operator on their fleet, an admin on any car, fleet or every car; drivers see and
acknowledge alerts but set no rules. A user sees the alerts of the vehicles they see, and a subscription
is delivered only alerts of vehicles its user sees when it is raised and still sees when it is sent: nobody
is told about a car they cannot see. Every new alert's deliveries are stored with it (the outbox, sent by
:class:`microfleet.services.alert_worker.AlertDispatcher`). Later models raise through :meth:`raise_external`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any, Final, Protocol

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.alert_delivery import (
    MAX_CHANNEL_URL_CHARS,
    Channel,
    Delivery,
    DeliveryStatus,
    PlannedDelivery,
    QuietHours,
    Subscription,
)
from microfleet.domain.alerts import (
    Alert,
    AlertKind,
    AlertRule,
    AlertStatus,
    Finding,
    Severity,
    can_resolve_by_hand,
    can_write_fleet_rules,
    can_write_vehicle_rules,
    rule_params,
)
from microfleet.domain.places import StoredPlace
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.services.accounts import AccountService

log = logging.getLogger(__name__)

# An external source names the model raising (e.g. 'battery', 'maintenance.tyres'); 'rule:' is taken.
_SOURCE: Final = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_TITLE_CHARS: Final = 200
MAX_DETAIL_CHARS: Final = 2_000


class AlertStorePort(Protocol):
    """Rules, alerts, subscriptions and deliveries (``microfleet.store.alerts_store.AlertStore``)."""

    def add_rule(self, rule: AlertRule) -> AlertRule:
        """Store a new rule; returns it with its id."""
        ...

    def get_rule(self, rule_id: int) -> AlertRule:
        """One rule; :class:`NotFoundError` if there is none."""
        ...

    def rules(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[AlertRule]:
        """Global rules, these fleets' and these vehicles' (None: every rule)."""
        ...

    def delete_rule(self, rule_id: int, now_ms: int) -> list[Alert]:
        """Delete a rule and resolve its open alerts (returned)."""
        ...

    def raise_alert(
        self,
        *,
        source: str,
        rule_id: int | None,
        kind: AlertKind,
        severity: Severity,
        vehicle_id: str,
        finding: Finding,
        now_ms: int,
        deliveries: Sequence[PlannedDelivery] = (),
    ) -> tuple[Alert, bool]:
        """Raise an alert or refresh the open one with its key; True if new (its deliveries stored)."""
        ...

    def open_alerts_of(self, vehicle_id: str) -> dict[tuple[str, str], int]:
        """A vehicle's open alerts: (source, condition) -> alert id."""
        ...

    def resolve(self, alert_ids: Sequence[int], now_ms: int, by: int | None) -> list[Alert]:
        """Resolve these alerts if still open; returns those it resolved."""
        ...

    def acknowledge(self, alert_id: int, now_ms: int, by: int | None) -> Alert:
        """Acknowledge a raised alert."""
        ...

    def get_alert(self, alert_id: int) -> Alert:
        """One alert; :class:`NotFoundError` if there is none."""
        ...

    def list_alerts(
        self,
        vehicle_ids: Sequence[str] | None,
        *,
        statuses: Sequence[AlertStatus] = (),
        kinds: Sequence[AlertKind] = (),
        min_severity: Severity = Severity.INFO,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts of these vehicles (None: all), newest first."""
        ...

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Store a subscription; returns it with its id."""
        ...

    def subscriptions(self, user_id: int | None = None) -> list[Subscription]:
        """A user's subscriptions (None: everyone's)."""
        ...

    def get_subscription(self, subscription_id: int) -> Subscription:
        """One subscription; :class:`NotFoundError` if there is none."""
        ...

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete a subscription and its deliveries."""
        ...

    def deliveries(
        self,
        *,
        user_id: int | None = None,
        vehicle_ids: Sequence[str] | None = None,
        statuses: Sequence[DeliveryStatus] = (),
        alert_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries, newest first."""
        ...


class UserDirectory(Protocol):
    """Every user, to tell whom a subscription belongs to (``AccountAdmin``)."""

    def list_users(self) -> list[UserPrincipal]:
        """Every user."""
        ...


class PlaceLookup(Protocol):
    """Places a geofence rule may name (``PlaceService``)."""

    def visible_to(self, user: UserPrincipal) -> list[StoredPlace]:
        """The places a user sees."""
        ...

    def get(self, place_id: str) -> StoredPlace:
        """One place; :class:`NotFoundError` if there is none."""
        ...


class ChannelUrlCheck(Protocol):
    """Whether a notification URL names a channel the notifier can use, and its printable form."""

    def check(self, url: str) -> str:
        """The URL with its secrets masked; :class:`InvalidInputError` if no channel takes it."""
        ...


class AlertFeed(Protocol):
    """Where a change of an alert is announced at once (the live feed: ``LiveAlertTopic``)."""

    def publish_alert(self, vehicle_id: str, alert: dict[str, Any]) -> str | None:
        """Announce one alert; None when done, else why not."""
        ...


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as the MQTT topic and the live feed carry it (and the API shows it)."""
    body = asdict(alert)
    for key in ("kind", "severity", "status"):
        body[key] = str(body[key])
    return body


class AlertService:
    """Rules, alerts and subscriptions with their access rules; raising and resolving alerts."""

    def __init__(
        self,
        store: AlertStorePort,
        accounts: AccountService,
        users: UserDirectory,
        places: PlaceLookup,
        urls: ChannelUrlCheck,
        clock: Callable[[], int],
        *,
        broadcast: Collection[Channel] = (),
        lifecycle: AlertFeed | None = None,
        page_size_max: int = 1_000,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._users = users
        self._places = places
        self._urls = urls
        self._clock = clock
        # Installation channels every new alert goes to (the MQTT topic, the live feed) besides users'.
        self._broadcast = tuple(broadcast)
        # Where acknowledgements and resolutions are announced (a new alert goes through the outbox).
        self._lifecycle = lifecycle
        self._page_size_max = page_size_max

    # --- raising and resolving (the evaluator, later models) -----------------------------------------------

    def raise_alert(
        self,
        source: str,
        rule_id: int | None,
        kind: AlertKind,
        severity: Severity,
        vehicle_id: str,
        finding: Finding,
        *,
        is_open: bool = False,
        subscriptions: Sequence[Subscription] | None = None,
    ) -> tuple[Alert, bool]:
        """Raise (or, while open, refresh) an alert; a new one gets its deliveries in the same commit."""
        now_ms = self._clock()
        planned: list[PlannedDelivery] = []
        if not is_open:
            planned = self.plan_deliveries(vehicle_id, kind, severity, now_ms, subscriptions)
        return self._store.raise_alert(
            source=source,
            rule_id=rule_id,
            kind=kind,
            severity=severity,
            vehicle_id=vehicle_id,
            finding=finding,
            now_ms=now_ms,
            deliveries=planned,
        )

    def plan_deliveries(
        self,
        vehicle_id: str,
        kind: AlertKind,
        severity: Severity,
        now_ms: int,
        subscriptions: Sequence[Subscription] | None = None,
    ) -> list[PlannedDelivery]:
        """The deliveries of a new alert: each subscription that wants it and whose user sees the car."""
        users = {u.user_id: u for u in self._users.list_users()}
        planned = [PlannedDelivery(channel, None, now_ms) for channel in self._broadcast]
        for sub in self._store.subscriptions() if subscriptions is None else subscriptions:
            user = users.get(sub.user_id)
            if user is None or not sub.wants(kind, severity) or not self._accounts.can_see(user, vehicle_id):
                continue
            planned.append(
                PlannedDelivery(Channel.APPRISE, sub.subscription_id, sub.send_at(severity, now_ms))
            )
        return planned

    def announce(self, alerts: Iterable[Alert]) -> None:
        """Announce alerts that were acknowledged or resolved on the live feed (logged if that fails)."""
        if self._lifecycle is None:
            return
        for alert in alerts:
            try:
                error = self._lifecycle.publish_alert(alert.vehicle_id, alert_json(alert))
            except Exception as exc:  # the change is committed; its announcement must not undo the answer
                error = f"{type(exc).__name__}: {exc}"
            if error is not None:
                log.warning("alert %d's change was not announced on the live feed: %s", alert.alert_id, error)

    def raise_external(
        self, vehicle_id: str, source: str, condition: str, severity: Severity, title: str, detail: str = ""
    ) -> Alert:
        """Raise an alert from a model (battery, maintenance...): one open alert per source and condition.

        Raising it again while it is open refreshes it; :meth:`resolve_external` closes it.
        """
        self._accounts.require_vehicle(vehicle_id)
        if not _SOURCE.match(source) or source.startswith("rule"):
            raise InvalidInputError(f"source {source!r} is not a model's name (a-z, 0-9, '_', '.', '-')")
        if not condition or len(condition) > 200 or not condition.isprintable():
            raise InvalidInputError("a condition is printable text of 1-200 characters")
        if not title or len(title) > MAX_TITLE_CHARS or len(detail) > MAX_DETAIL_CHARS:
            raise InvalidInputError(f"a title is 1-{MAX_TITLE_CHARS} characters, a detail {MAX_DETAIL_CHARS}")
        finding = Finding(condition, title, detail, self._clock())
        alert, _ = self.raise_alert(source, None, AlertKind.EXTERNAL, severity, vehicle_id, finding)
        return alert

    def resolve_external(self, vehicle_id: str, source: str, condition: str) -> Alert | None:
        """Resolve a model's open alert on a vehicle (None if none is open)."""
        found = self._store.open_alerts_of(vehicle_id).get((source, condition))
        if found is None:
            return None
        resolved = self._store.resolve([found], self._clock(), None)
        self.announce(resolved)
        return resolved[0] if resolved else None

    # --- alerts as a user sees them ----------------------------------------------------------------------

    def alerts_for(
        self,
        user: UserPrincipal,
        *,
        vehicle_id: str | None = None,
        statuses: Sequence[AlertStatus] = (),
        kinds: Sequence[AlertKind] = (),
        min_severity: Severity = Severity.INFO,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """The alerts of the vehicles the user sees (of one, if asked), newest first."""
        if vehicle_id is not None:
            seen: list[str] | None = [self._accounts.vehicle_for(user, vehicle_id).vehicle_id]
        else:
            seen = self._accounts.visible_vehicle_ids(user)
        return self._store.list_alerts(
            seen,
            statuses=statuses,
            kinds=kinds,
            min_severity=min_severity,
            before_id=before_id,
            limit=min(limit, self._page_size_max),
        )

    def _visible_alert(self, user: UserPrincipal, alert_id: int) -> Alert:
        try:
            alert = self._store.get_alert(alert_id)
        except NotFoundError:
            alert = None
        if alert is None or not self._accounts.can_see(user, alert.vehicle_id):
            raise NotFoundError(f"alert {alert_id} does not exist or is not shared with you")
        return alert

    def acknowledge_as(self, user: UserPrincipal, alert_id: int) -> Alert:
        """Acknowledge an alert of a vehicle the user sees (a resolved one stays resolved)."""
        self._visible_alert(user, alert_id)
        alert = self._store.acknowledge(alert_id, self._clock(), user.user_id)
        self.announce([alert])
        return alert

    def resolve_as(self, user: UserPrincipal, alert_id: int) -> Alert:
        """Resolve an alert by hand (not drivers); it is raised again if its condition still holds."""
        alert = self._visible_alert(user, alert_id)
        if not can_resolve_by_hand(user):
            raise PermissionDeniedError(f"a {user.role.value} may not resolve alerts; acknowledge it instead")
        self.announce(self._store.resolve([alert_id], self._clock(), user.user_id))
        return self._store.get_alert(alert.alert_id)

    # --- rules -------------------------------------------------------------------------------------------

    def rules_for(self, user: UserPrincipal) -> list[AlertRule]:
        """Global rules, the user's fleet's, and the rules of every vehicle they see (all for an admin)."""
        if user.role is Role.ADMIN:
            return self._store.rules(None)
        seen = self._accounts.visible_vehicles(user)
        fleets = {v.fleet_id for v in seen if v.fleet_id} | ({user.fleet_id} if user.fleet_id else set())
        return self._store.rules([v.vehicle_id for v in seen], fleets)

    def create_rule_as(
        self,
        user: UserPrincipal,
        kind: AlertKind,
        severity: Severity,
        params: Mapping[str, Any],
        *,
        vehicle_id: str | None,
        fleet_id: str | None,
    ) -> AlertRule:
        """Create a rule of a scope the user may write (a geofence rule names a place they see)."""
        self._may_write(user, vehicle_id, fleet_id)
        checked = rule_params(kind, params)
        if "place_id" in checked and not any(
            p.place.place_id == checked["place_id"] for p in self._places.visible_to(user)
        ):
            raise NotFoundError(f"place {checked['place_id']!r} does not exist or is not shared with you")
        rule = AlertRule(0, kind, severity, checked, vehicle_id, fleet_id, user.user_id, self._clock())
        return self._store.add_rule(rule)

    def delete_rule_as(self, user: UserPrincipal, rule_id: int) -> None:
        """Delete a rule the user sees and may write; its open alerts are resolved."""
        rule = next((r for r in self.rules_for(user) if r.rule_id == rule_id), None)
        if rule is None:
            raise NotFoundError(f"alert rule {rule_id} does not exist or is not shared with you")
        self._may_write(user, rule.vehicle_id, rule.fleet_id)
        self.announce(self._store.delete_rule(rule_id, self._clock()))

    def _may_write(self, user: UserPrincipal, vehicle_id: str | None, fleet_id: str | None) -> None:
        """Refuse a user who may not write a rule of this scope (404 for an unseen vehicle)."""
        if vehicle_id is not None and fleet_id is not None:
            raise InvalidInputError("a rule is for one vehicle, one fleet, or every vehicle: not both")
        if vehicle_id is not None:
            self._accounts.vehicle_for(user, vehicle_id)
            if not can_write_vehicle_rules(user):
                raise PermissionDeniedError(f"a {user.role.value} may not set a vehicle's alert rules")
        elif fleet_id is not None:
            if not can_write_fleet_rules(user, fleet_id):
                raise PermissionDeniedError("only the fleet's operator or an admin may set its alert rules")
            self._accounts.require_fleet(fleet_id)
        elif user.role is not Role.ADMIN:
            raise PermissionDeniedError("only an admin may set alert rules for every vehicle")

    # --- subscriptions and deliveries -----------------------------------------------------------------------

    def subscriptions_for(self, user: UserPrincipal) -> list[Subscription]:
        """The user's own subscriptions (channel URLs masked)."""
        return [self._masked(s) for s in self._store.subscriptions(user.user_id)]

    def subscribe(
        self,
        user_id: int,
        channel_url: str,
        *,
        min_severity: Severity = Severity.INFO,
        kinds: Collection[AlertKind] = (),
        quiet: QuietHours | None = None,
        critical_bypasses_quiet: bool = True,
        label: str = "",
    ) -> Subscription:
        """Subscribe a user to alerts of the vehicles they see on one channel (an Apprise URL)."""
        if not channel_url or len(channel_url) > MAX_CHANNEL_URL_CHARS or not channel_url.isprintable():
            raise InvalidInputError(f"a channel URL is 1-{MAX_CHANNEL_URL_CHARS} printable characters")
        self._urls.check(channel_url)
        if len(label) > 200 or not label.isprintable():
            raise InvalidInputError("a label is printable text of at most 200 characters")
        sub = Subscription(
            0,
            user_id,
            channel_url,
            min_severity,
            frozenset(kinds),
            quiet,
            critical_bypasses_quiet,
            label,
            self._clock(),
        )
        return self._masked(self._store.add_subscription(sub))

    def unsubscribe_as(self, user: UserPrincipal, subscription_id: int) -> None:
        """Delete one of the user's subscriptions (an admin: anyone's)."""
        try:
            sub = self._store.get_subscription(subscription_id)
        except NotFoundError:
            sub = None
        if sub is None or (sub.user_id != user.user_id and user.role is not Role.ADMIN):
            raise NotFoundError(f"subscription {subscription_id} does not exist or is not yours")
        self._store.delete_subscription(subscription_id)

    def all_subscriptions(self) -> list[Subscription]:
        """Every user's subscriptions (channel URLs masked), for the installation's administrator."""
        return [self._masked(s) for s in self._store.subscriptions()]

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete any subscription (the installation's administrator)."""
        self._store.delete_subscription(subscription_id)

    def deliveries_for(
        self, user: UserPrincipal, *, statuses: Sequence[DeliveryStatus] = (), limit: int = 100
    ) -> list[Delivery]:
        """Deliveries to the user's own subscriptions; an admin sees every one, installation channels too."""
        limit = min(limit, self._page_size_max)
        if user.role is Role.ADMIN:
            return self._store.deliveries(statuses=statuses, limit=limit)
        return self._store.deliveries(user_id=user.user_id, statuses=statuses, limit=limit)

    def _masked(self, sub: Subscription) -> Subscription:
        return replace(sub, channel_url=self._urls.check(sub.channel_url))

    # --- as the installation's administrator (CLI) -------------------------------------------------------

    def all_alerts(
        self, *, statuses: Sequence[AlertStatus] = (), vehicle_id: str | None = None, limit: int = 100
    ) -> list[Alert]:
        """Every alert (of one vehicle, if asked), newest first."""
        vehicles = None if vehicle_id is None else [vehicle_id]
        return self._store.list_alerts(vehicles, statuses=statuses, limit=limit)

    def acknowledge(self, alert_id: int) -> Alert:
        """Acknowledge any alert."""
        self._store.get_alert(alert_id)
        alert = self._store.acknowledge(alert_id, self._clock(), None)
        self.announce([alert])
        return alert

    def resolve(self, alert_id: int) -> Alert:
        """Resolve any alert by hand."""
        self._store.get_alert(alert_id)
        self.announce(self._store.resolve([alert_id], self._clock(), None))
        return self._store.get_alert(alert_id)

    def add_rule(
        self,
        kind: AlertKind,
        severity: Severity,
        params: Mapping[str, Any],
        *,
        vehicle_id: str | None = None,
        fleet_id: str | None = None,
    ) -> AlertRule:
        """Add a rule for an existing vehicle, an existing fleet, or every vehicle."""
        if vehicle_id is not None and fleet_id is not None:
            raise InvalidInputError("a rule is for one vehicle, one fleet, or every vehicle: not both")
        if vehicle_id is not None:
            self._accounts.require_vehicle(vehicle_id)
        if fleet_id is not None:
            self._accounts.require_fleet(fleet_id)
        checked = rule_params(kind, params)
        if "place_id" in checked:
            self._places.get(str(checked["place_id"]))
        return self._store.add_rule(
            AlertRule(0, kind, severity, checked, vehicle_id, fleet_id, None, self._clock())
        )

    def all_rules(self) -> list[AlertRule]:
        """Every rule."""
        return self._store.rules(None)

    def delete_rule(self, rule_id: int) -> list[Alert]:
        """Delete a rule; returns the open alerts this resolved."""
        resolved = self._store.delete_rule(rule_id, self._clock())
        self.announce(resolved)
        return resolved

    def all_deliveries(self, *, statuses: Sequence[DeliveryStatus] = (), limit: int = 100) -> list[Delivery]:
        """Every delivery, newest first."""
        return self._store.deliveries(statuses=statuses, limit=limit)

    def user_id_of(self, name: str) -> int:
        """The id of a user by name."""
        for user in self._users.list_users():
            if user.name == name:
                return user.user_id
        raise NotFoundError(f"user {name!r} does not exist")
