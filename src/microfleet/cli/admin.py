"""``microfleet admin`` (fleets, users, tokens, vehicles, grants) and ``microfleet quarantine``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.errors import ConfigurationError

admin_app = typer.Typer(
    help="Accounts: fleets, users, API tokens, vehicles and grants.", no_args_is_help=True
)
quarantine_app = typer.Typer(help="Refused telemetry: list it, replay it after a fix.", no_args_is_help=True)


@admin_app.command("add-fleet")
def add_fleet(
    fleet_id: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Register a fleet (a car-sharing operator's cars, a family's cars)."""
    services_for(database_url).admin.add_fleet(fleet_id, name or fleet_id)
    console.print(f"fleet [bold]{fleet_id}[/bold] added")


@admin_app.command("add-user")
def add_user(
    name: str,
    role: Annotated[str, typer.Option(help="owner, driver, operator or admin.")] = "owner",
    fleet: Annotated[str | None, typer.Option(help="Fleet the user belongs to.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a user and print their first API token (shown once)."""
    from microfleet.domain.access import Role

    try:
        parsed_role = Role(role)
    except ValueError:
        raise ConfigurationError(f"role {role!r} is not one of owner, driver, operator, admin") from None
    services = services_for(database_url)
    services.admin.add_user(name, parsed_role, fleet)
    token = services.admin.issue_token(name, "first token")
    console.print(f"user [bold]{name}[/bold] ({parsed_role.value}) added; API token (shown once):")
    console.print(token, soft_wrap=True)


@admin_app.command("issue-token")
def issue_token(
    name: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Issue another API token for a user (shown once)."""
    token = services_for(database_url).admin.issue_token(name, label)
    console.print(token, soft_wrap=True)


@admin_app.command("revoke-tokens")
def revoke_tokens(name: str, database_url: DatabaseOption = None) -> None:
    """Revoke every API token of a user."""
    count = services_for(database_url).admin.revoke_tokens(name)
    console.print(f"{count} token(s) of {name} revoked")


@admin_app.command("add-vehicle")
def add_vehicle(
    vehicle_id: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Catalogue model id, e.g. a Wuling Mini EV variant.")
    ] = None,
    fleet: Annotated[str | None, typer.Option(help="Fleet the vehicle belongs to.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Register a vehicle and print its device credential (shown once) for its telematics unit."""
    token = services_for(database_url).admin.add_vehicle(
        vehicle_id, name=name, model_id=model, fleet_id=fleet
    )
    console.print(f"vehicle [bold]{vehicle_id}[/bold] added; device credential (shown once):")
    console.print(token, soft_wrap=True)


@admin_app.command("rotate-device")
def rotate_device(
    vehicle_id: str,
    end_previous_now: Annotated[
        bool,
        typer.Option(help="Stop the replaced credential at once (it leaked) instead of after the overlap."),
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Give a vehicle a new device credential (shown once); the old one works for the overlap, then stops."""
    from datetime import UTC, datetime

    rotated = services_for(database_url).accounts.rotate_device_credential(
        vehicle_id, end_previous_now=end_previous_now
    )
    console.print(f"vehicle [bold]{vehicle_id}[/bold]: new device credential (shown once):")
    console.print(rotated.token, soft_wrap=True)
    if rotated.previous_valid_until_ms is None:
        console.print("the previous credential has stopped working")
    else:
        until = datetime.fromtimestamp(rotated.previous_valid_until_ms / 1000, UTC)
        console.print(f"the previous credential works until {until:%Y-%m-%d %H:%M:%S} UTC, then stops")


@admin_app.command("grant")
def grant(
    vehicle_id: str,
    user: Annotated[str | None, typer.Option(help="User who may see the vehicle.")] = None,
    fleet: Annotated[str | None, typer.Option(help="Fleet whose users may see the vehicle.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Let a user, or every user of a fleet, see a vehicle."""
    services_for(database_url).admin.grant(vehicle_id, user_name=user, fleet_id=fleet)
    console.print(f"{'user ' + user if user else 'fleet ' + str(fleet)} now sees {vehicle_id}")


@admin_app.command("set-password")
def set_password(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (one line) instead of a prompt.")
    ] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Set a user's password for the web app (8 to 256 characters); their browser sessions end."""
    import sys

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    services = services_for(database_url)
    user = next((u for u in services.admin.list_users() if u.name == name), None)
    if user is None:
        raise ConfigurationError(f"user {name!r} does not exist; add them with 'microfleet admin add-user'")
    services.web_sessions.set_password(user, password)
    console.print(f"password of [bold]{name}[/bold] set; they log in at the server's address (/)")


@admin_app.command("users")
def list_users(database_url: DatabaseOption = None) -> None:
    """List users with their roles and fleets."""
    table = Table("id", "name", "role", "fleet", title="Microfleet users")
    for user in services_for(database_url).admin.list_users():
        table.add_row(str(user.user_id), user.name, user.role.value, user.fleet_id or "")
    console.print(table)


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this rejection reason.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows to show.")] = 50,
    database_url: DatabaseOption = None,
) -> None:
    """List refused telemetry records with their reasons."""
    rows = services_for(database_url).quarantine.list(vehicle_ids=None, reason=reason, limit=limit)
    table = Table(
        "id", "received (ms)", "vehicle", "ts_ms", "reason", "detail", "replayed", title="Quarantine"
    )
    for q in rows:
        table.add_row(
            str(q.quarantine_id),
            str(q.received_at_ms),
            q.vehicle_id or "",
            str(q.ts_ms or ""),
            q.reason,
            q.detail[:80],
            q.replay_status or "",
        )
    console.print(table)


@quarantine_app.command("replay")
def quarantine_replay(
    quarantine_ids: Annotated[
        list[int] | None, typer.Argument(help="Ids to replay (default: by --reason).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Replay every not-yet-replayed record of this reason.")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Run quarantined records through today's validator; those that now pass are stored."""
    services = services_for(database_url)
    ids = list(quarantine_ids or [])
    if not ids:
        if reason is None:
            raise ConfigurationError("name quarantine ids or a --reason to replay")
        ids = [
            q.quarantine_id
            for q in services.quarantine.list(
                vehicle_ids=None, reason=reason, limit=1_000_000, include_replayed=False
            )
        ]
    counts: dict[str, int] = {}
    for quarantine_id in ids:
        outcome = services.quarantine.replay(quarantine_id)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    console.print(f"replayed {len(ids)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
