"""``microfleet alerts``: list, acknowledge and resolve alerts; rules, subscriptions, deliveries, evaluate."""

from __future__ import annotations

from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for

alerts_app = typer.Typer(
    help="Alerts: list (the default), acknowledge, resolve; rules, subscriptions and deliveries.",
    invoke_without_command=True,
)
rules_app = typer.Typer(help="Alert rules: list, add, delete.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="Users' notification channels: list, add, delete.", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(subscriptions_app, name="subscriptions")

AlertArg = Annotated[int, typer.Argument(help="Alert id.", min=1)]
VehicleOption = Annotated[str | None, typer.Option("--vehicle", help="Only for this vehicle.")]
FleetOption = Annotated[str | None, typer.Option("--fleet", help="For every vehicle of this fleet.")]
LimitOption = Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows.")]


@alerts_app.callback()
def alerts_list(
    ctx: typer.Context,
    status: Annotated[
        list[str] | None, typer.Option(help="Only this status (raised, acknowledged, resolved); repeatable.")
    ] = None,
    vehicle: VehicleOption = None,
    limit: LimitOption = 50,
    database_url: DatabaseOption = None,
) -> None:
    """List alerts, newest first (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from microfleet.cli.tables import alerts_table
    from microfleet.domain.alerts import AlertStatus
    from microfleet.errors import InvalidInputError

    try:
        statuses = [AlertStatus(s) for s in status or ()]
    except ValueError:
        raise InvalidInputError(f"a status is one of {', '.join(s.value for s in AlertStatus)}") from None
    found = services_for(database_url).alerts.all_alerts(statuses=statuses, vehicle_id=vehicle, limit=limit)
    console.print(alerts_table(found))


@alerts_app.command("ack")
def alerts_ack(alert_id: AlertArg, database_url: DatabaseOption = None) -> None:
    """Acknowledge an alert (it stays open until its condition clears)."""
    alert = services_for(database_url).alerts.acknowledge(alert_id)
    console.print(f"alert {alert.alert_id} ({alert.title}, {alert.vehicle_id}) is {alert.status.value}")


@alerts_app.command("resolve")
def alerts_resolve(alert_id: AlertArg, database_url: DatabaseOption = None) -> None:
    """Resolve an alert by hand (raised again if its condition still holds)."""
    alert = services_for(database_url).alerts.resolve(alert_id)
    console.print(f"alert {alert.alert_id} ({alert.title}, {alert.vehicle_id}) is {alert.status.value}")


@alerts_app.command("evaluate")
def alerts_evaluate(database_url: DatabaseOption = None) -> None:
    """Evaluate every rule over every car once and send the notifications due (for cron, or without serve)."""
    report, sent = services_for(database_url).alert_worker.run_once()
    console.print(
        f"{report.vehicles} car(s) evaluated: {report.raised} alert(s) raised, {report.refreshed} still "
        f"open, {report.resolved} resolved; deliveries: {sent.sent} sent, {sent.retrying} to retry, "
        f"{sent.failed} given up, {sent.skipped} skipped"
    )


@alerts_app.command("deliveries")
def alerts_deliveries(
    failing: Annotated[bool, typer.Option(help="Only those failing: pending retries and given up.")] = False,
    limit: LimitOption = 50,
    database_url: DatabaseOption = None,
) -> None:
    """List deliveries, newest first, with attempts and the last error."""
    from microfleet.cli.tables import deliveries_table
    from microfleet.domain.alert_delivery import DeliveryStatus

    statuses = [DeliveryStatus.FAILED, DeliveryStatus.PENDING] if failing else []
    found = services_for(database_url).alerts.all_deliveries(statuses=statuses, limit=limit)
    if failing:
        found = [d for d in found if d.status is DeliveryStatus.FAILED or d.attempts > 0]
    console.print(deliveries_table(found))


@rules_app.command("list")
def rules_list(database_url: DatabaseOption = None) -> None:
    """List every alert rule."""
    from microfleet.cli.tables import alert_rules_table

    console.print(alert_rules_table(services_for(database_url).alerts.all_rules()))


@rules_app.command("add")
def rules_add(
    kind: Annotated[str, typer.Argument(help="left_unlocked, charging_stopped, soc_low, offline, ...")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="NAME=VALUE, e.g. below_pct=15; repeatable.")
    ] = None,
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    vehicle: VehicleOption = None,
    fleet: FleetOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a rule for a vehicle, a fleet, or (neither given) every vehicle."""
    from microfleet.domain.alerts import RULE_KINDS, AlertKind, Severity
    from microfleet.errors import InvalidInputError

    try:
        alert_kind, level = AlertKind(kind), Severity(severity)
    except ValueError:
        raise InvalidInputError(
            f"a kind is one of {', '.join(RULE_KINDS)}; a severity info, warning or critical"
        ) from None
    params: dict[str, float | str] = {}
    for item in param or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"--param {item!r} is not NAME=VALUE")
        try:
            params[name] = float(value)
        except ValueError:
            params[name] = value
    rule = services_for(database_url).alerts.add_rule(
        alert_kind, level, params, vehicle_id=vehicle, fleet_id=fleet
    )
    console.print(f"alert rule [bold]{rule.rule_id}[/bold] ({rule.kind.value}) added for {rule.scope}")


@rules_app.command("delete")
def rules_delete(rule_id: Annotated[int, typer.Argument(min=1)], database_url: DatabaseOption = None) -> None:
    """Delete a rule; its open alerts are resolved."""
    resolved = services_for(database_url).alerts.delete_rule(rule_id)
    console.print(f"alert rule {rule_id} deleted; {len(resolved)} open alert(s) resolved")


@subscriptions_app.command("list")
def subscriptions_list(database_url: DatabaseOption = None) -> None:
    """List every user's subscriptions (channel URLs masked)."""
    from microfleet.cli.tables import subscriptions_table

    services = services_for(database_url)
    names = {u.user_id: u.name for u in services.admin.list_users()}
    console.print(subscriptions_table(services.alerts.all_subscriptions(), names))


@subscriptions_app.command("add")
def subscriptions_add(
    user: Annotated[str, typer.Argument(help="The user's name.")],
    url: Annotated[
        str, typer.Argument(help="An Apprise URL: ntfys://topic, mailtos://..., json://host/path.")
    ],
    min_severity: Annotated[str, typer.Option(help="Least severity sent: info, warning, critical.")] = "info",
    kind: Annotated[list[str] | None, typer.Option(help="Only this kind; repeatable (default: all).")] = None,
    quiet: Annotated[str | None, typer.Option(help="Quiet hours HH:MM-HH:MM, e.g. 22:00-07:00.")] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of the quiet hours (IANA name).")] = "UTC",
    quiet_for_critical: Annotated[
        bool, typer.Option(help="Hold critical alerts in quiet hours too (default: they go through).")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Subscribe a user to alerts of the vehicles they see on one channel."""
    from microfleet.domain.alert_delivery import QuietHours, parse_kinds
    from microfleet.domain.alerts import Severity
    from microfleet.errors import InvalidInputError

    try:
        level = Severity(min_severity)
    except ValueError:
        raise InvalidInputError("--min-severity is info, warning or critical") from None
    hours = None
    if quiet is not None:
        start, sep, end = quiet.partition("-")
        if not sep:
            raise InvalidInputError(f"--quiet {quiet!r} is not HH:MM-HH:MM")
        hours = QuietHours(start, end, timezone)
    services = services_for(database_url)
    sub = services.alerts.subscribe(
        services.alerts.user_id_of(user),
        url,
        min_severity=level,
        kinds=parse_kinds(kind or ()),
        quiet=hours,
        critical_bypasses_quiet=not quiet_for_critical,
    )
    console.print(f"subscription [bold]{sub.subscription_id}[/bold] of {user}: {sub.channel_url}")


@subscriptions_app.command("delete")
def subscriptions_delete(
    subscription_id: Annotated[int, typer.Argument(min=1)], database_url: DatabaseOption = None
) -> None:
    """Delete a subscription and its deliveries."""
    services_for(database_url).alerts.delete_subscription(subscription_id)
    console.print(f"subscription {subscription_id} deleted")
