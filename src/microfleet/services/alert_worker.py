"""The alert worker: an evaluator that runs the rules over cars whose state changed, and the outbox's sender.

:class:`AlertEvaluator` looks, each pass, at the cars that stored a record since the previous pass (their
record count in the latest state moved), at cars whose timer fell due (left unlocked for N min, offline
for N min: these need no new record to become true) and, after a rule changed, at every car.
:class:`AlertDispatcher` sends the outbox's due deliveries, each on its own (a slow or failing channel
holds up neither the others nor evaluation), retrying a failure with a doubling back-off and recording
every attempt's error. :class:`AlertWorker` runs both in background threads beside the deriver.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Protocol

from microfleet.domain.access import UserPrincipal
from microfleet.domain.alert_delivery import Channel, Delivery, DeliveryStatus, Subscription, retry_at
from microfleet.domain.alerts import (
    DEFAULT_CHARGE_LIMIT_PCT,
    RECENT_RECORDS,
    Alert,
    AlertKind,
    AlertRule,
    Severity,
    VehicleFacts,
    evaluate,
    rule_source,
)
from microfleet.domain.places import Place, PlaceEntered, PlaceExited
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.services.accounts import AccountService
from microfleet.services.alerts import AlertService, alert_json
from microfleet.services.live import ALERT

log = logging.getLogger(__name__)

# Rules that read back through recent records to find when their condition began.
_TIMED: Final = frozenset({AlertKind.LEFT_UNLOCKED, AlertKind.CHARGING_STOPPED})
_GEOFENCE: Final = frozenset({AlertKind.GEOFENCE_ENTER, AlertKind.GEOFENCE_EXIT})
# A car's geofence events are read from its previous newest record on; after a restart, this far back.
FIRST_LOOK_BACK_MS: Final = 10 * 60_000
_BATCH_CARS: Final = 500
DELIVERY_BATCH: Final = 100
DELIVERY_THREADS: Final = 4


@dataclass(frozen=True, slots=True)
class VehicleActivity:
    """A car with telemetry: its fleet, how many records it stored and its newest record's time."""

    vehicle_id: str
    fleet_id: str | None
    record_count: int
    last_ts_ms: int


class EvaluationReads(Protocol):
    """What the evaluator reads and resolves (``microfleet.store.alerts_store.AlertStore``)."""

    def activity(self) -> list[VehicleActivity]:
        """Every car with telemetry."""
        ...

    def recent_records(self, vehicle_id: str, limit: int) -> list[TelemetryRecord]:
        """A car's ``limit`` newest records, oldest first."""
        ...

    def rules(self, vehicle_ids: Sequence[str] | None) -> list[AlertRule]:
        """Every rule (None)."""
        ...

    def subscriptions(self, user_id: int | None = None) -> list[Subscription]:
        """Every subscription (None)."""
        ...

    def open_alerts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Every open alert: vehicle -> (source, condition) -> alert id."""
        ...

    def resolve(self, alert_ids: Sequence[int], now_ms: int, by: int | None) -> list[Alert]:
        """Resolve these alerts if still open."""
        ...


class LatestSignals(Protocol):
    """Cars' newest values, many at once (``AlertStore``)."""

    def latest_signals(self, vehicle_ids: Sequence[str]) -> dict[str, dict[str, tuple[Any, int]]]:
        """Vehicle -> signal -> (newest value, its time)."""
        ...


class Geofences(Protocol):
    """Places and their enter/exit events (``PlaceService``)."""

    def applying_to(self, vehicle_id: str) -> list[Place]:
        """The places that apply to a car."""
        ...

    def events(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> Any:
        """Enter/exit events from the fixes in ``[from_ms, to_ms)``."""
        ...


class ChargeLimits(Protocol):
    """The charge limit set on a car (by remote command), if any."""

    def charge_limit_pct(self, vehicle_id: str) -> float | None:
        """The car's charge limit in %, or None if none was set."""
        ...


@dataclass
class EvaluationReport:
    """What one evaluation pass did."""

    vehicles: int = 0
    raised: int = 0
    refreshed: int = 0
    resolved: int = 0


class AlertEvaluator:
    """Runs every rule that applies to a car over its facts; raises, refreshes and resolves."""

    def __init__(
        self,
        alerts: AlertService,
        reads: EvaluationReads,
        latest: LatestSignals,
        geofences: Geofences,
        clock: Callable[[], int],
        charge_limits: ChargeLimits | None = None,
    ) -> None:
        self._alerts = alerts
        self._reads = reads
        self._latest = latest
        self._geofences = geofences
        self._clock = clock
        # Without a charge limit port (remote commands absent), every car charges to 100 %.
        self._charge_limits = charge_limits
        self._seen: dict[str, int] = {}  # vehicle -> record count at its last evaluation
        self._last_ts: dict[str, int] = {}  # vehicle -> newest record's time at its last evaluation
        self._due: dict[str, int] = {}  # vehicle -> when a timer of one of its rules falls due
        self._rule_ids: frozenset[int] | None = None
        self._lock = threading.Lock()

    def run_pass(self) -> EvaluationReport:
        """Evaluate the cars that changed, whose timers fell due, or all of them after a rule changed."""
        with self._lock:
            report = EvaluationReport()
            now_ms = self._clock()
            rules = self._reads.rules(None)
            ids = frozenset(r.rule_id for r in rules)
            everything = ids != self._rule_ids
            self._rule_ids = ids
            work: list[tuple[VehicleActivity, list[AlertRule]]] = []
            for car in self._reads.activity():
                due = self._due.get(car.vehicle_id)
                changed = self._seen.get(car.vehicle_id) != car.record_count
                if everything or changed or (due is not None and due <= now_ms):
                    work.append((car, [r for r in rules if _applies(r, car)]))
            if not work:
                return report
            subscriptions = self._reads.subscriptions()
            open_alerts = self._reads.open_alerts()
            for start in range(0, len(work), _BATCH_CARS):  # newest values read for a batch of cars at once
                batch = work[start : start + _BATCH_CARS]
                latest = self._latest.latest_signals([car.vehicle_id for car, applying in batch if applying])
                for car, applying in batch:
                    facts = latest.get(car.vehicle_id, {})
                    self._evaluate(
                        car,
                        applying,
                        facts,
                        open_alerts.get(car.vehicle_id, {}),
                        now_ms,
                        subscriptions,
                        report,
                    )
                    report.vehicles += 1
            return report

    def _evaluate(
        self,
        car: VehicleActivity,
        rules: list[AlertRule],
        latest: dict[str, tuple[Any, int]],
        open_alerts: dict[tuple[str, str], int],
        now_ms: int,
        subscriptions: list[Subscription],
        report: EvaluationReport,
    ) -> None:
        self._due.pop(car.vehicle_id, None)
        previous_ts = self._last_ts.get(car.vehicle_id)
        self._seen[car.vehicle_id] = car.record_count
        self._last_ts[car.vehicle_id] = car.last_ts_ms
        if not rules:
            return
        facts = self._facts(car, rules, latest, now_ms, previous_ts)
        for rule in rules:
            outcome = evaluate(rule, facts)
            source = rule_source(rule.rule_id)
            held = {f.condition for f in outcome.findings}
            for finding in outcome.findings:
                is_open = (source, finding.condition) in open_alerts
                self._alerts.raise_alert(
                    source,
                    rule.rule_id,
                    rule.kind,
                    rule.severity,
                    car.vehicle_id,
                    finding,
                    is_open=is_open,
                    subscriptions=subscriptions,
                )
                if is_open:
                    report.refreshed += 1
                else:
                    report.raised += 1
            if outcome.settled:
                cleared = [a for (s, c), a in open_alerts.items() if s == source and c not in held]
                if cleared:
                    done = self._reads.resolve(cleared, now_ms, None)
                    self._alerts.announce(done)
                    report.resolved += len(done)
            if outcome.recheck_at_ms is not None:
                due = self._due.get(car.vehicle_id)
                self._due[car.vehicle_id] = min(outcome.recheck_at_ms, due or outcome.recheck_at_ms)

    def _facts(
        self,
        car: VehicleActivity,
        rules: list[AlertRule],
        latest: dict[str, tuple[Any, int]],
        now_ms: int,
        previous_ts: int | None,
    ) -> VehicleFacts:
        kinds = {r.kind for r in rules}
        recent: list[TelemetryRecord] = []
        pending = latest.get("locked", (None,))[0] is False or latest.get("charger_connected", (None,))[0]
        if kinds & _TIMED and pending:
            recent = self._reads.recent_records(car.vehicle_id, RECENT_RECORDS)
        events: list[PlaceEntered | PlaceExited] = []
        inside: frozenset[str] | None = None
        if kinds & _GEOFENCE:
            from_ms = previous_ts if previous_ts is not None else car.last_ts_ms - FIRST_LOOK_BACK_MS
            events = list(self._geofences.events(car.vehicle_id, from_ms, car.last_ts_ms + 1, 10_000).events)
            lat, lon = latest.get("lat_deg", (None,))[0], latest.get("lon_deg", (None,))[0]
            if lat is not None and lon is not None:
                places = self._geofences.applying_to(car.vehicle_id)
                inside = frozenset(p.place_id for p in places if p.geometry.contains(lat, lon))
        limit = None
        if self._charge_limits and AlertKind.CHARGING_STOPPED in kinds and latest.get("charger_connected"):
            limit = self._charge_limits.charge_limit_pct(car.vehicle_id)
        return VehicleFacts(
            vehicle_id=car.vehicle_id,
            now_ms=now_ms,
            last_record_ms=car.last_ts_ms,
            latest=latest,
            recent=recent,
            place_events=events,
            inside=inside,
            charge_limit_pct=DEFAULT_CHARGE_LIMIT_PCT if limit is None else limit,
        )


def _applies(rule: AlertRule, car: VehicleActivity) -> bool:
    if rule.vehicle_id is not None:
        return rule.vehicle_id == car.vehicle_id
    if rule.fleet_id is not None:
        return rule.fleet_id == car.fleet_id
    return True


# --- sending ------------------------------------------------------------------------------------------


class Notifier(Protocol):
    """A notification library's channels (``microfleet.ingest.alert_channels.AppriseNotifier``)."""

    def notify(self, url: str, title: str, body: str, severity: Severity) -> str | None:
        """Send one message; None when sent, else why not."""
        ...


class AlertTopic(Protocol):
    """Where the installation publishes every alert (an MQTT topic per vehicle, the live feed)."""

    def publish_alert(self, vehicle_id: str, alert: dict[str, Any]) -> str | None:
        """Publish one alert; None when published, else why not."""
        ...


class LivePublisher(Protocol):
    """Publishing to the live feed (``microfleet.services.live.LiveEvents``)."""

    def publish(self, vehicle_id: str, kind: str, ts_ms: int, payload: Mapping[str, Any]) -> None:
        """Announce one event of a vehicle."""
        ...


class DeliveryStore(Protocol):
    """The outbox (``AlertStore``)."""

    def due_deliveries(self, now_ms: int, limit: int) -> list[tuple[Delivery, Alert, str | None]]:
        """Due deliveries with their alert and channel URL."""
        ...

    def delivery_done(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        attempts: int,
        now_ms: int,
        error: str | None = None,
        next_attempt_ms: int | None = None,
    ) -> None:
        """Record an attempt's outcome."""
        ...


class UserDirectory(Protocol):
    """Every user (``AccountAdmin``)."""

    def list_users(self) -> list[UserPrincipal]:
        """Every user."""
        ...


@dataclass
class DeliveryReport:
    """What one round of sending did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0


class AlertDispatcher:
    """Sends the outbox's due deliveries; each failure is retried with back-off and recorded, never lost."""

    def __init__(
        self,
        store: DeliveryStore,
        accounts: AccountService,
        users: UserDirectory,
        notifier: Notifier,
        clock: Callable[[], int],
        topics: dict[Channel, AlertTopic] | None = None,
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._users = users
        self._notifier = notifier
        self._clock = clock
        self._topics = topics or {}
        self._lock = threading.Lock()

    def deliver_due(self) -> DeliveryReport:
        """Send every delivery due now, a few at a time, and record each outcome."""
        with self._lock:
            report = DeliveryReport()
            due = self._store.due_deliveries(self._clock(), DELIVERY_BATCH)
            if not due:
                return report
            users = {u.user_id: u for u in self._users.list_users()}
            with ThreadPoolExecutor(DELIVERY_THREADS, thread_name_prefix="microfleet-alert-send") as pool:
                outcomes = list(pool.map(lambda item: self._attempt(item[0], item[1], item[2], users), due))
            for (delivery, _, _), (status, error) in zip(due, outcomes, strict=True):
                self._record(delivery, status, error, report)
            return report

    def _attempt(
        self, delivery: Delivery, alert: Alert, url: str | None, users: dict[int, UserPrincipal]
    ) -> tuple[DeliveryStatus, str | None]:
        try:
            if delivery.channel is Channel.APPRISE:
                user = users.get(delivery.user_id or -1)
                if user is None or url is None or not self._accounts.can_see(user, alert.vehicle_id):
                    return DeliveryStatus.SKIPPED, "the subscriber no longer sees this vehicle"
                held = delivery.attempts == 0 and delivery.next_attempt_ms > delivery.created_at_ms
                if held and alert.resolved_at_ms is not None:
                    return DeliveryStatus.SKIPPED, "resolved during the subscriber's quiet hours"
                error = self._notifier.notify(url, *_message(alert))
            else:
                topic = self._topics.get(delivery.channel)
                if topic is None:
                    error = f"no {delivery.channel.value} channel is configured in this process"
                else:
                    error = topic.publish_alert(alert.vehicle_id, alert_json(alert))
        except Exception as exc:  # a channel's own bug must not stop the others' deliveries
            log.exception("delivery %d of alert %d failed", delivery.delivery_id, alert.alert_id)
            error = f"{type(exc).__name__}: {exc}"
        return (DeliveryStatus.SENT, None) if error is None else (DeliveryStatus.PENDING, error)

    def _record(
        self, delivery: Delivery, status: DeliveryStatus, error: str | None, report: DeliveryReport
    ) -> None:
        now_ms = self._clock()
        if status is DeliveryStatus.PENDING:
            attempts = delivery.attempts + 1
            again = retry_at(now_ms, attempts)
            final = DeliveryStatus.FAILED if again is None else DeliveryStatus.PENDING
            self._store.delivery_done(
                delivery.delivery_id,
                final,
                attempts=attempts,
                now_ms=now_ms,
                error=error,
                next_attempt_ms=again,
            )
            log.warning(
                "alert delivery %d (%s) failed, attempt %d: %s%s",
                delivery.delivery_id,
                delivery.channel.value,
                attempts,
                error,
                "; given up" if again is None else "; will retry",
            )
            if again is None:
                report.failed += 1
            else:
                report.retrying += 1
            return
        attempts = delivery.attempts + (1 if status is DeliveryStatus.SENT else 0)
        self._store.delivery_done(delivery.delivery_id, status, attempts=attempts, now_ms=now_ms, error=error)
        if status is DeliveryStatus.SENT:
            report.sent += 1
        else:
            report.skipped += 1


def _message(alert: Alert) -> tuple[str, str, Severity]:
    when = dt.datetime.fromtimestamp(alert.raised_at_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
    title = f"[{alert.severity.value}] {alert.title}: {alert.vehicle_id}"
    body = f"{alert.detail}\n{alert.kind.value} alert {alert.alert_id}, raised {when} UTC"
    return title, body, alert.severity


class AlertWorker:
    """Evaluates and sends every ``interval_s`` in two background threads until :meth:`stop`."""

    def __init__(self, evaluator: AlertEvaluator, dispatcher: AlertDispatcher, *, interval_s: float) -> None:
        self.evaluator = evaluator
        self.dispatcher = dispatcher
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def run_once(self) -> tuple[EvaluationReport, DeliveryReport]:
        """One evaluation pass, then one round of sending (``microfleet alerts evaluate``)."""
        return self.evaluator.run_pass(), self.dispatcher.deliver_due()

    def start(self) -> None:
        """Start both loops (no-op if running)."""
        if self._threads:
            return
        self._stopping.clear()
        for name, step in (("evaluate", self.evaluator.run_pass), ("send", self.dispatcher.deliver_due)):
            thread = threading.Thread(
                target=self._loop, args=(name, step), name=f"microfleet-alerts-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Let the rounds in progress finish and stop (the outbox keeps what is not sent)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _loop(self, name: str, step: Callable[[], object]) -> None:
        while not self._stopping.wait(self._interval_s):
            started = time.monotonic()
            try:
                step()
            except Exception:  # e.g. the store is briefly unreachable: try again next round
                log.exception("an alert %s round failed; retrying in %.0f s", name, self._interval_s)
            log.debug("alert %s round took %.3f s", name, time.monotonic() - started)


class LiveAlertTopic:
    """The live feed as an alert channel: each alert is an event of kind ``alert`` of its vehicle."""

    def __init__(self, live: LivePublisher) -> None:
        self._live = live

    def publish_alert(self, vehicle_id: str, alert: dict[str, Any]) -> str | None:
        """Announce the alert to the live feed's subscribers who may see the vehicle."""
        self._live.publish(vehicle_id, ALERT, int(alert["last_seen_ms"]), alert)
        return None
