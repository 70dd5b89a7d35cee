"""Alerts: list and acknowledge or resolve them, their rules, your notification channels and deliveries."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from microfleet.api.auth import UserDep
from microfleet.api.deps import AlertsDep
from microfleet.api.errors import INT32_MAX, ErrorBody
from microfleet.domain.alert_delivery import (
    MAX_CHANNEL_URL_CHARS,
    Delivery,
    DeliveryStatus,
    QuietHours,
    Subscription,
    parse_kinds,
)
from microfleet.domain.alerts import Alert, AlertKind, AlertRule, AlertStatus, Severity
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN

router = APIRouter(tags=["alerts"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
IdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
IdText = Annotated[str, Field(pattern=VEHICLE_ID_PATTERN)]
ParamValue = Annotated[float, Field(allow_inf_nan=False)] | Annotated[str, Field(max_length=64)]


class AlertOut(BaseModel):
    """An alert and its lifecycle (``*_by``: a user id; null: Microfleet itself)."""

    alert_id: int
    vehicle_id: str
    kind: AlertKind
    severity: Severity
    status: AlertStatus
    source: str = Field(description="'rule:<id>', or the model that raised it (external alerts)")
    rule_id: int | None
    condition: str = Field(description="what is wrong; one open alert per rule, vehicle and condition")
    title: str
    detail: str
    raised_at_ms: int
    last_seen_ms: int = Field(description="the last evaluation that found the condition, UTC epoch ms")
    occurrences: int = Field(description="how many evaluations found it while open")
    acknowledged_at_ms: int | None
    acknowledged_by: int | None
    resolved_at_ms: int | None
    resolved_by: int | None


def _alert(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


class RuleIn(BaseModel):
    """A rule to create, for exactly one of: a vehicle, a fleet, or every vehicle (``is_global``)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal[
        "left_unlocked",
        "charging_stopped",
        "soc_low",
        "offline",
        "geofence_enter",
        "geofence_exit",
        "aux_battery_low",
        "dtc",
    ]
    severity: Severity = Severity.WARNING
    params: dict[Annotated[str, Field(max_length=32)], ParamValue] = Field(
        default_factory=dict,
        max_length=8,
        description="the kind's thresholds (docs/alerts.md); defaults for those left out",
    )
    vehicle_id: IdText | None = None
    fleet_id: IdText | None = None
    is_global: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> RuleIn:
        if [self.vehicle_id is not None, self.fleet_id is not None, self.is_global].count(True) != 1:
            raise ValueError("give exactly one of vehicle_id, fleet_id or is_global: true")
        return self


class RuleOut(BaseModel):
    """A rule, its thresholds (defaults filled in) and whom it applies to."""

    rule_id: int
    kind: AlertKind
    severity: Severity
    params: dict[str, float | str]
    scope: Literal["vehicle", "fleet", "global"]
    vehicle_id: str | None
    fleet_id: str | None
    created_by: int | None
    created_at_ms: int


def _rule(rule: AlertRule) -> RuleOut:
    return RuleOut(
        rule_id=rule.rule_id,
        kind=rule.kind,
        severity=rule.severity,
        params=dict(rule.params),
        scope=rule.scope,
        vehicle_id=rule.vehicle_id,
        fleet_id=rule.fleet_id,
        created_by=rule.created_by,
        created_at_ms=rule.created_at_ms,
    )


class QuietIn(BaseModel):
    """Quiet hours: local times ``[start, end)``; ``end`` before ``start`` wraps past midnight."""

    model_config = ConfigDict(extra="forbid")
    start: str = Field(max_length=5, description="HH:MM")
    end: str = Field(max_length=5, description="HH:MM")
    timezone: str = Field(max_length=64, description="an IANA name, e.g. Europe/Paris")


class SubscriptionIn(BaseModel):
    """A channel to be told on: an Apprise URL, the least severity, the kinds, quiet hours."""

    model_config = ConfigDict(extra="forbid")
    channel_url: str = Field(
        min_length=1,
        max_length=MAX_CHANNEL_URL_CHARS,
        description="an Apprise URL: ntfys://topic, mailtos://user:pass@host, tgram://bot/chat, "
        "jsons://host/path ... (https://github.com/caronc/apprise/wiki)",
    )
    label: str = Field("", max_length=200)
    min_severity: Severity = Severity.INFO
    kinds: list[AlertKind] = Field(default_factory=list, max_length=len(AlertKind), description="[]: all")
    quiet_hours: QuietIn | None = None
    critical_bypasses_quiet: bool = Field(True, description="critical alerts are sent during quiet hours")


class SubscriptionOut(BaseModel):
    """A subscription; the channel URL with its secrets masked."""

    subscription_id: int
    user_id: int
    channel_url: str
    label: str
    min_severity: Severity
    kinds: list[AlertKind]
    quiet_hours: QuietIn | None
    critical_bypasses_quiet: bool
    created_at_ms: int


def _subscription(sub: Subscription) -> SubscriptionOut:
    quiet = sub.quiet
    return SubscriptionOut(
        subscription_id=sub.subscription_id,
        user_id=sub.user_id,
        channel_url=sub.channel_url,
        label=sub.label,
        min_severity=sub.min_severity,
        kinds=sorted(sub.kinds),
        quiet_hours=QuietIn(start=quiet.start, end=quiet.end, timezone=quiet.timezone) if quiet else None,
        critical_bypasses_quiet=sub.critical_bypasses_quiet,
        created_at_ms=sub.created_at_ms,
    )


class DeliveryOut(BaseModel):
    """One delivery of an alert on one channel and how it went (``last_error``: the channel's words)."""

    delivery_id: int
    alert_id: int
    vehicle_id: str
    channel: str = Field(description="apprise (a subscription), mqtt or live")
    subscription_id: int | None
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_ms: int
    created_at_ms: int
    sent_at_ms: int | None


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate(d, from_attributes=True)


@router.get(
    "/api/v1/alerts",
    response_model=list[AlertOut],
    summary="Alerts of the vehicles you see",
    responses=_ERRORS,
)
def list_alerts(
    user: UserDep,
    alerts: AlertsDep,
    vehicle_id: Annotated[
        str | None, Query(pattern=VEHICLE_ID_PATTERN, description="only this vehicle")
    ] = None,
    status: Annotated[list[AlertStatus] | None, Query(description="only these statuses")] = None,
    kind: Annotated[list[AlertKind] | None, Query(description="only these kinds")] = None,
    min_severity: Annotated[Severity, Query(description="at least this severity")] = Severity.INFO,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="page: older than this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Newest first; the next page is ``before_id`` = the last alert's id."""
    found = alerts.alerts_for(
        user,
        vehicle_id=vehicle_id,
        statuses=status or (),
        kinds=kind or (),
        min_severity=min_severity,
        before_id=before_id,
        limit=limit,
    )
    return [_alert(a) for a in found]


@router.post(
    "/api/v1/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary="Acknowledge an alert",
    responses=_ERRORS,
)
def acknowledge_alert(alert_id: IdPath, user: UserDep, alerts: AlertsDep) -> AlertOut:
    """Say you have seen it; it stays open until its condition clears (or you resolve it)."""
    return _alert(alerts.acknowledge_as(user, alert_id))


@router.post(
    "/api/v1/alerts/{alert_id}/resolve",
    response_model=AlertOut,
    summary="Resolve an alert",
    responses=_ERRORS,
)
def resolve_alert(alert_id: IdPath, user: UserDep, alerts: AlertsDep) -> AlertOut:
    """Close it by hand (not drivers); it is raised again if its condition still holds."""
    return _alert(alerts.resolve_as(user, alert_id))


@router.get("/api/v1/alert-rules", response_model=list[RuleOut], summary="Alert rules you may see")
def list_rules(user: UserDep, alerts: AlertsDep) -> list[RuleOut]:
    """Global rules, your fleet's, and those of every vehicle you see."""
    return [_rule(r) for r in alerts.rules_for(user)]


@router.post(
    "/api/v1/alert-rules",
    response_model=RuleOut,
    status_code=201,
    summary="Create an alert rule",
    responses=_ERRORS,
)
def create_rule(body: RuleIn, user: UserDep, alerts: AlertsDep) -> RuleOut:
    """For a vehicle you see (owners, operators), your fleet (operators) or every vehicle (admins)."""
    rule = alerts.create_rule_as(
        user,
        AlertKind(body.kind),
        body.severity,
        body.params,
        vehicle_id=body.vehicle_id,
        fleet_id=body.fleet_id,
    )
    return _rule(rule)


@router.delete(
    "/api/v1/alert-rules/{rule_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an alert rule",
    responses={404: {"model": ErrorBody}},
)
def delete_rule(rule_id: IdPath, user: UserDep, alerts: AlertsDep) -> Response:
    """Delete a rule you may change; its open alerts are resolved."""
    alerts.delete_rule_as(user, rule_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/alert-subscriptions", response_model=list[SubscriptionOut], summary="Your notification channels"
)
def list_subscriptions(user: UserDep, alerts: AlertsDep) -> list[SubscriptionOut]:
    """Your own subscriptions, channel URLs masked."""
    return [_subscription(s) for s in alerts.subscriptions_for(user)]


@router.post(
    "/api/v1/alert-subscriptions",
    response_model=SubscriptionOut,
    status_code=201,
    summary="Subscribe a channel to alerts",
    responses=_ERRORS,
)
def create_subscription(body: SubscriptionIn, user: UserDep, alerts: AlertsDep) -> SubscriptionOut:
    """Be told of alerts of the vehicles you see on a channel (an Apprise URL)."""
    q = body.quiet_hours
    sub = alerts.subscribe(
        user.user_id,
        body.channel_url,
        min_severity=body.min_severity,
        kinds=parse_kinds([k.value for k in body.kinds]),
        quiet=QuietHours(q.start, q.end, q.timezone) if q else None,
        critical_bypasses_quiet=body.critical_bypasses_quiet,
        label=body.label,
    )
    return _subscription(sub)


@router.delete(
    "/api/v1/alert-subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a subscription",
    responses={404: {"model": ErrorBody}},
)
def delete_subscription(subscription_id: IdPath, user: UserDep, alerts: AlertsDep) -> Response:
    """Delete one of your subscriptions and its deliveries."""
    alerts.unsubscribe_as(user, subscription_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/alert-deliveries", response_model=list[DeliveryOut], summary="Deliveries to your channels"
)
def list_deliveries(
    user: UserDep,
    alerts: AlertsDep,
    status: Annotated[list[DeliveryStatus] | None, Query(description="only these statuses")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeliveryOut]:
    """Newest first, with attempts and the last error: a failing channel shows here (admins: all)."""
    return [_delivery(d) for d in alerts.deliveries_for(user, statuses=status or (), limit=limit)]
