"""Alert rules, alerts, users' subscriptions and the delivery outbox in the store.

An open alert (raised or acknowledged) carries its de-duplication key in ``open_key`` under a unique
index; resolving it sets the key to NULL (NULLs never collide), so there is at most one open alert per
rule, vehicle and condition, and a second raise of it, even from another process, refreshes that one.
A new alert's deliveries are inserted in the same transaction as the alert: none is ever lost between
the two (the outbox).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from microfleet.domain.alert_delivery import (
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
    open_key,
)
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.errors import InvalidInputError, NotFoundError
from microfleet.services.alert_worker import VehicleActivity
from microfleet.store.commands_store import commands
from microfleet.store.schema import (
    metadata,
    telemetry,
    users,
    vehicle_latest,
    vehicle_latest_signals,
    vehicles,
)
from microfleet.store.scopes import scope_is, visible_in
from microfleet.store.telemetry_store import row_to_record

# Bounds that keep one account from filling the store; Microfleet's choice.
MAX_RULES_PER_SCOPE: Final = 200
MAX_SUBSCRIPTIONS_PER_USER: Final = 20
ERROR_MAX_CHARS: Final = 1_000
_IN_BATCH: Final = 500  # vehicle ids per IN list (SQLite's default limit on bound parameters is far above)

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("rule_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("vehicle_id", String(64), nullable=True),
    Column("fleet_id", String(64), nullable=True),
    Column("created_by", Integer, nullable=True),  # a user id; NULL: the installation's administrator
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_alert_rules_vehicle", "vehicle_id"),
    Index("ix_alert_rules_fleet", "fleet_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(80), nullable=False),
    Column("rule_id", Integer, nullable=True),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), nullable=False),
    Column("condition", String(200), nullable=False),
    # source|vehicle|condition while open; NULL once resolved.
    Column("open_key", String(400), nullable=True),
    Column("status", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("detail", Text, nullable=False),
    Column("raised_at_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("occurrences", Integer, nullable=False),
    Column("acknowledged_at_ms", BigInteger, nullable=True),
    Column("acknowledged_by", Integer, nullable=True),
    Column("resolved_at_ms", BigInteger, nullable=True),
    Column("resolved_by", Integer, nullable=True),
    Index("ix_alerts_open_key", "open_key", unique=True),
    Index("ix_alerts_vehicle", "vehicle_id", "alert_id"),
)

alert_subscriptions = Table(
    "alert_subscriptions",
    metadata,
    Column("subscription_id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    # An Apprise URL, secrets included (it is what Apprise needs to send); shown only masked.
    Column("channel_url", Text, nullable=False),
    Column("label", String(200), nullable=False),
    Column("min_severity", String(16), nullable=False),
    Column("kinds_json", Text, nullable=False),  # a JSON list of kinds; [] = every kind
    Column("quiet_start", String(5), nullable=True),
    Column("quiet_end", String(5), nullable=True),
    Column("quiet_timezone", String(64), nullable=True),
    Column("critical_bypasses_quiet", Boolean, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_alert_subscriptions_user", "user_id"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("delivery_id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.alert_id", ondelete="CASCADE"), nullable=False),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("alert_subscriptions.subscription_id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("sent_at_ms", BigInteger, nullable=True),
    Index("ix_alert_deliveries_due", "status", "next_attempt_ms"),
    Index("ix_alert_deliveries_alert", "alert_id"),
)

_OPEN = (AlertStatus.RAISED.value, AlertStatus.ACKNOWLEDGED.value)


class AlertStore:
    """Rules, alerts, subscriptions and deliveries; every write is one transaction."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        # Shared with the telemetry writer on SQLite (one writer at a time; a no-op on PostgreSQL).
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    # --- rules ----------------------------------------------------------------------------------------

    def add_rule(self, rule: AlertRule) -> AlertRule:
        """Store a new rule (its id is assigned); refused past :data:`MAX_RULES_PER_SCOPE` in its scope."""
        with self._write_lock, self._engine.begin() as conn:
            in_scope = conn.execute(
                select(func.count())
                .select_from(alert_rules)
                .where(scope_is(alert_rules, rule.vehicle_id, rule.fleet_id))
            ).scalar_one()
            if in_scope >= MAX_RULES_PER_SCOPE:
                raise InvalidInputError(f"this scope already holds {MAX_RULES_PER_SCOPE} alert rules")
            rule_id = conn.execute(
                insert(alert_rules).returning(alert_rules.c.rule_id),
                {
                    "kind": rule.kind.value,
                    "severity": rule.severity.value,
                    "params_json": json.dumps(dict(rule.params), sort_keys=True),
                    "vehicle_id": rule.vehicle_id,
                    "fleet_id": rule.fleet_id,
                    "created_by": rule.created_by,
                    "created_at_ms": rule.created_at_ms,
                },
            ).scalar_one()
        return self.get_rule(int(rule_id))

    def get_rule(self, rule_id: int) -> AlertRule:
        """One rule; :class:`NotFoundError` if there is none."""
        with self._engine.connect() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.rule_id == rule_id)).first()
        if row is None:
            raise NotFoundError(f"alert rule {rule_id} does not exist")
        return _rule(row._mapping)

    def rules(self, vehicle_ids: Sequence[str] | None, fleet_ids: Iterable[str] = ()) -> list[AlertRule]:
        """Global rules, these fleets' and these vehicles' (``vehicle_ids`` None: every rule)."""
        query = select(alert_rules).order_by(alert_rules.c.rule_id)
        if vehicle_ids is not None:
            query = query.where(visible_in(alert_rules, vehicle_ids, fleet_ids))
        with self._engine.connect() as conn:
            return [_rule(r._mapping) for r in conn.execute(query)]

    def delete_rule(self, rule_id: int, now_ms: int) -> list[Alert]:
        """Delete a rule and resolve its open alerts (returned); its closed alerts stay as history."""
        with self._write_lock, self._engine.begin() as conn:
            gone = conn.execute(delete(alert_rules).where(alert_rules.c.rule_id == rule_id)).rowcount
            if gone == 0:
                raise NotFoundError(f"alert rule {rule_id} does not exist")
            ids = list(
                conn.execute(
                    select(alerts.c.alert_id).where(alerts.c.rule_id == rule_id, alerts.c.status.in_(_OPEN))
                ).scalars()
            )
            return self._resolve(conn, ids, now_ms, None)

    # --- alerts ---------------------------------------------------------------------------------------

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
        """Raise an alert, or refresh the open one with its key (``last_seen_ms``); True if it is new.

        A new alert's deliveries are stored with it; a refresh stores none.
        """
        key = open_key(source, vehicle_id, finding.condition)
        for _ in range(2):  # a concurrent raise of the same key wins the insert: then refresh it
            try:
                with self._write_lock, self._engine.begin() as conn:
                    found = conn.execute(select(alerts.c.alert_id).where(alerts.c.open_key == key)).first()
                    if found is not None:
                        conn.execute(
                            update(alerts)
                            .where(alerts.c.alert_id == found.alert_id)
                            .values(last_seen_ms=now_ms, occurrences=alerts.c.occurrences + 1)
                        )
                        return _alert(_read(conn, found.alert_id)), False
                    alert_id = conn.execute(
                        insert(alerts).returning(alerts.c.alert_id),
                        {
                            "source": source,
                            "rule_id": rule_id,
                            "kind": kind.value,
                            "severity": severity.value,
                            "vehicle_id": vehicle_id,
                            "condition": finding.condition[:200],
                            "open_key": key,
                            "status": AlertStatus.RAISED.value,
                            "title": finding.title[:200],
                            "detail": finding.detail,
                            "raised_at_ms": now_ms,
                            "last_seen_ms": now_ms,
                            "occurrences": 1,
                        },
                    ).scalar_one()
                    if deliveries:
                        conn.execute(
                            insert(alert_deliveries),
                            [
                                {
                                    "alert_id": alert_id,
                                    "subscription_id": d.subscription_id,
                                    "channel": d.channel.value,
                                    "status": DeliveryStatus.PENDING.value,
                                    "attempts": 0,
                                    "next_attempt_ms": d.due_ms,
                                    "created_at_ms": now_ms,
                                }
                                for d in deliveries
                            ],
                        )
                    return _alert(_read(conn, alert_id)), True
            except IntegrityError:
                continue
        raise InvalidInputError(f"alert {key!r} could not be raised")

    def open_alerts_of(self, vehicle_id: str) -> dict[tuple[str, str], int]:
        """A vehicle's open alerts: (source, condition) -> alert id."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.source, alerts.c.condition, alerts.c.alert_id).where(
                    alerts.c.vehicle_id == vehicle_id, alerts.c.status.in_(_OPEN)
                )
            ).all()
        return {(str(s), str(c)): int(a) for s, c, a in rows}

    def open_alerts(self) -> dict[str, dict[tuple[str, str], int]]:
        """Every open alert: vehicle -> (source, condition) -> alert id."""
        out: dict[str, dict[tuple[str, str], int]] = {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(alerts.c.vehicle_id, alerts.c.source, alerts.c.condition, alerts.c.alert_id).where(
                    alerts.c.status.in_(_OPEN)
                )
            ).all()
        for vehicle_id, source, condition, alert_id in rows:
            out.setdefault(str(vehicle_id), {})[(str(source), str(condition))] = int(alert_id)
        return out

    # --- what the evaluator reads -------------------------------------------------------------------

    def latest_signals(self, vehicle_ids: Sequence[str]) -> dict[str, dict[str, tuple[Any, int]]]:
        """The newest value of each signal of these vehicles: vehicle -> signal -> (value, its ts_ms)."""
        out: dict[str, dict[str, tuple[Any, int]]] = {v: {} for v in vehicle_ids}
        s = vehicle_latest_signals.c
        with self._engine.connect() as conn:
            for start in range(0, len(vehicle_ids), _IN_BATCH):
                chunk = list(vehicle_ids[start : start + _IN_BATCH])
                query = select(s.vehicle_id, s.signal, s.ts_ms, s.value_json).where(s.vehicle_id.in_(chunk))
                for vehicle_id, signal, ts_ms, value in conn.execute(query):
                    out[str(vehicle_id)][str(signal)] = (json.loads(value), int(ts_ms))
        return out

    def activity(self) -> list[VehicleActivity]:
        """Every vehicle with telemetry: its fleet, its stored record count and newest record's time."""
        query = (
            select(
                vehicle_latest.c.vehicle_id,
                vehicles.c.fleet_id,
                vehicle_latest.c.record_count,
                vehicle_latest.c.last_ts_ms,
            )
            .select_from(vehicle_latest.join(vehicles))
            .order_by(vehicle_latest.c.vehicle_id)
        )
        with self._engine.connect() as conn:
            return [VehicleActivity(str(v), f, int(n), int(t)) for v, f, n, t in conn.execute(query)]

    def charge_limit_pct(self, vehicle_id: str) -> float | None:
        """The charge limit of the newest ``set_charge_limit`` command the car acknowledged (None: none)."""
        c = commands.c
        query = (
            select(c.params_json)
            .where(c.vehicle_id == vehicle_id, c.action == "set_charge_limit", c.status == "acknowledged")
            .order_by(c.result_at_ms.desc(), c.issued_at_ms.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            text = conn.execute(query).scalar_one_or_none()
        if text is None:
            return None
        limit = json.loads(text).get("limit_pct")
        return float(limit) if isinstance(limit, int | float) else None

    def recent_records(self, vehicle_id: str, limit: int) -> list[TelemetryRecord]:
        """A vehicle's ``limit`` newest records, oldest first (read down its primary key)."""
        query = (
            select(telemetry)
            .where(telemetry.c.vehicle_id == vehicle_id)
            .order_by(telemetry.c.ts_ms.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [row_to_record(r) for r in reversed(conn.execute(query).all())]

    def resolve(self, alert_ids: Sequence[int], now_ms: int, by: int | None) -> list[Alert]:
        """Resolve these alerts if still open; returns those it resolved."""
        if not alert_ids:
            return []
        with self._write_lock, self._engine.begin() as conn:
            return self._resolve(conn, alert_ids, now_ms, by)

    def _resolve(
        self, conn: Connection, alert_ids: Sequence[int], now_ms: int, by: int | None
    ) -> list[Alert]:
        if not alert_ids:
            return []
        ids = list(
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id.in_(list(alert_ids)), alerts.c.status.in_(_OPEN))
                .values(
                    status=AlertStatus.RESOLVED.value, open_key=None, resolved_at_ms=now_ms, resolved_by=by
                )
                .returning(alerts.c.alert_id)
            ).scalars()
        )
        return [_alert(_read(conn, i)) for i in sorted(ids)]

    def acknowledge(self, alert_id: int, now_ms: int, by: int | None) -> Alert:
        """Acknowledge a raised alert (an acknowledged or resolved one stays as it is)."""
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.alert_id == alert_id, alerts.c.status == AlertStatus.RAISED.value)
                .values(status=AlertStatus.ACKNOWLEDGED.value, acknowledged_at_ms=now_ms, acknowledged_by=by)
            )
            return _alert(_read(conn, alert_id))

    def get_alert(self, alert_id: int) -> Alert:
        """One alert; :class:`NotFoundError` if there is none."""
        with self._engine.connect() as conn:
            return _alert(_read(conn, alert_id))

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
        """Alerts of these vehicles (None: all), newest first, filtered."""
        query = select(alerts).order_by(alerts.c.alert_id.desc()).limit(limit)
        if vehicle_ids is not None:
            query = query.where(alerts.c.vehicle_id.in_(list(vehicle_ids)))
        if statuses:
            query = query.where(alerts.c.status.in_([s.value for s in statuses]))
        if kinds:
            query = query.where(alerts.c.kind.in_([k.value for k in kinds]))
        if min_severity is not Severity.INFO:
            query = query.where(
                alerts.c.severity.in_([s.value for s in Severity if s.rank >= min_severity.rank])
            )
        if before_id is not None:
            query = query.where(alerts.c.alert_id < before_id)
        with self._engine.connect() as conn:
            return [_alert(r._mapping) for r in conn.execute(query)]

    # --- subscriptions --------------------------------------------------------------------------------

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Store a user's subscription (its id is assigned)."""
        with self._write_lock, self._engine.begin() as conn:
            if conn.execute(select(users.c.user_id).where(users.c.user_id == sub.user_id)).first() is None:
                raise NotFoundError(f"user {sub.user_id} does not exist")
            count = conn.execute(
                select(func.count())
                .select_from(alert_subscriptions)
                .where(alert_subscriptions.c.user_id == sub.user_id)
            ).scalar_one()
            if count >= MAX_SUBSCRIPTIONS_PER_USER:
                raise InvalidInputError(f"a user has at most {MAX_SUBSCRIPTIONS_PER_USER} subscriptions")
            quiet = sub.quiet
            sub_id = conn.execute(
                insert(alert_subscriptions).returning(alert_subscriptions.c.subscription_id),
                {
                    "user_id": sub.user_id,
                    "channel_url": sub.channel_url,
                    "label": sub.label,
                    "min_severity": sub.min_severity.value,
                    "kinds_json": json.dumps(sorted(k.value for k in sub.kinds)),
                    "quiet_start": quiet.start if quiet else None,
                    "quiet_end": quiet.end if quiet else None,
                    "quiet_timezone": quiet.timezone if quiet else None,
                    "critical_bypasses_quiet": sub.critical_bypasses_quiet,
                    "created_at_ms": sub.created_at_ms,
                },
            ).scalar_one()
            row = conn.execute(
                select(alert_subscriptions).where(alert_subscriptions.c.subscription_id == sub_id)
            ).one()
        return _subscription(row._mapping)

    def subscriptions(self, user_id: int | None = None) -> list[Subscription]:
        """A user's subscriptions (None: everyone's), oldest first."""
        query = select(alert_subscriptions).order_by(alert_subscriptions.c.subscription_id)
        if user_id is not None:
            query = query.where(alert_subscriptions.c.user_id == user_id)
        with self._engine.connect() as conn:
            return [_subscription(r._mapping) for r in conn.execute(query)]

    def get_subscription(self, subscription_id: int) -> Subscription:
        """One subscription; :class:`NotFoundError` if there is none."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(alert_subscriptions).where(alert_subscriptions.c.subscription_id == subscription_id)
            ).first()
        if row is None:
            raise NotFoundError(f"subscription {subscription_id} does not exist")
        return _subscription(row._mapping)

    def delete_subscription(self, subscription_id: int) -> None:
        """Delete a subscription and its deliveries."""
        with self._write_lock, self._engine.begin() as conn:
            done = conn.execute(
                delete(alert_subscriptions).where(alert_subscriptions.c.subscription_id == subscription_id)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"subscription {subscription_id} does not exist")

    # --- deliveries (the outbox) ----------------------------------------------------------------------

    def due_deliveries(self, now_ms: int, limit: int) -> list[tuple[Delivery, Alert, str | None]]:
        """Pending deliveries due by ``now_ms``, oldest first, with their alert and channel URL."""
        d = alert_deliveries.c
        query = (
            select(alert_deliveries, alert_subscriptions.c.channel_url, alert_subscriptions.c.user_id)
            .select_from(alert_deliveries.outerjoin(alert_subscriptions))
            .where(d.status == DeliveryStatus.PENDING.value, d.next_attempt_ms <= now_ms)
            .order_by(d.next_attempt_ms, d.delivery_id)
            .limit(limit)
        )
        out = []
        with self._engine.connect() as conn:
            rows = [r._mapping for r in conn.execute(query)]
            for row in rows:
                alert = _alert(_read(conn, row["alert_id"]))
                out.append((_delivery(row, alert.vehicle_id), alert, row["channel_url"]))
        return out

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
        """Record an attempt's outcome: sent, failed for good, skipped, or pending with a retry time."""
        values: dict[str, Any] = {"status": status.value, "attempts": attempts}
        if error is not None:
            values["last_error"] = error[:ERROR_MAX_CHARS]
        if next_attempt_ms is not None:
            values["next_attempt_ms"] = next_attempt_ms
        if status is DeliveryStatus.SENT:
            values["sent_at_ms"] = now_ms
        with self._write_lock, self._engine.begin() as conn:
            conn.execute(
                update(alert_deliveries).where(alert_deliveries.c.delivery_id == delivery_id).values(**values)
            )

    def deliveries(
        self,
        *,
        user_id: int | None = None,
        vehicle_ids: Sequence[str] | None = None,
        statuses: Sequence[DeliveryStatus] = (),
        alert_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Deliveries, newest first: of one user's subscriptions and/or of these vehicles' alerts."""
        d = alert_deliveries.c
        query = (
            select(alert_deliveries, alerts.c.vehicle_id, alert_subscriptions.c.user_id)
            .select_from(alert_deliveries.join(alerts).outerjoin(alert_subscriptions))
            .order_by(d.delivery_id.desc())
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(alert_subscriptions.c.user_id == user_id)
        if vehicle_ids is not None:
            query = query.where(alerts.c.vehicle_id.in_(list(vehicle_ids)))
        if statuses:
            query = query.where(d.status.in_([s.value for s in statuses]))
        if alert_id is not None:
            query = query.where(d.alert_id == alert_id)
        with self._engine.connect() as conn:
            return [_delivery(r._mapping, r._mapping["vehicle_id"]) for r in conn.execute(query)]


def _read(conn: Connection, alert_id: int) -> Any:
    row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
    if row is None:
        raise NotFoundError(f"alert {alert_id} does not exist")
    return row._mapping


def _rule(row: Any) -> AlertRule:
    return AlertRule(
        rule_id=int(row["rule_id"]),
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        params=json.loads(row["params_json"]),
        vehicle_id=row["vehicle_id"],
        fleet_id=row["fleet_id"],
        created_by=row["created_by"],
        created_at_ms=int(row["created_at_ms"]),
    )


def _alert(row: Any) -> Alert:
    return Alert(
        alert_id=int(row["alert_id"]),
        source=str(row["source"]),
        rule_id=row["rule_id"],
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        vehicle_id=str(row["vehicle_id"]),
        condition=str(row["condition"]),
        title=str(row["title"]),
        detail=str(row["detail"]),
        status=AlertStatus(row["status"]),
        raised_at_ms=int(row["raised_at_ms"]),
        last_seen_ms=int(row["last_seen_ms"]),
        occurrences=int(row["occurrences"]),
        acknowledged_at_ms=row["acknowledged_at_ms"],
        acknowledged_by=row["acknowledged_by"],
        resolved_at_ms=row["resolved_at_ms"],
        resolved_by=row["resolved_by"],
    )


def _subscription(row: Any) -> Subscription:
    quiet = None
    if row["quiet_start"] is not None:
        quiet = QuietHours(row["quiet_start"], row["quiet_end"], row["quiet_timezone"])
    return Subscription(
        subscription_id=int(row["subscription_id"]),
        user_id=int(row["user_id"]),
        channel_url=str(row["channel_url"]),
        min_severity=Severity(row["min_severity"]),
        kinds=frozenset(AlertKind(k) for k in json.loads(row["kinds_json"])),
        quiet=quiet,
        critical_bypasses_quiet=bool(row["critical_bypasses_quiet"]),
        label=str(row["label"]),
        created_at_ms=int(row["created_at_ms"]),
    )


def _delivery(row: Any, vehicle_id: str) -> Delivery:
    return Delivery(
        delivery_id=int(row["delivery_id"]),
        alert_id=int(row["alert_id"]),
        vehicle_id=vehicle_id,
        channel=Channel(row["channel"]),
        subscription_id=row["subscription_id"],
        user_id=row.get("user_id"),
        status=DeliveryStatus(row["status"]),
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        next_attempt_ms=int(row["next_attempt_ms"]),
        created_at_ms=int(row["created_at_ms"]),
        sent_at_ms=row["sent_at_ms"],
    )
