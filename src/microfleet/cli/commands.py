"""``microfleet command``, ``microfleet commands``, ``microfleet bookings`` and ``vehicles command-key``.

The terminal acts as a named user (``--as``; the one admin when there is only one), so a command from the
CLI is authorised and audited exactly as one from the API, with ``cli`` as its client address.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for
from microfleet.cli.vehicles import vehicles_app
from microfleet.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from microfleet.bootstrap import Services
    from microfleet.domain.access import UserPrincipal

AsOption = Annotated[
    str | None,
    typer.Option("--as", help="The user the command acts as (default: the only admin, if there is one)."),
]
bookings_app = typer.Typer(
    help="Bookings: a driver commands a car only during their own booking of it (docs/commands.md).",
    no_args_is_help=True,
)


def _acting_user(services: Services, name: str | None) -> UserPrincipal:
    from microfleet.domain.access import Role

    found = services.admin.list_users()
    if name is not None:
        for user in found:
            if user.name == name:
                return user
        raise ConfigurationError(f"--as {name!r}: no such user (microfleet admin add-user)")
    admins = [u for u in found if u.role is Role.ADMIN]
    if len(admins) != 1:
        raise ConfigurationError("say which user the command acts as: --as USER")
    return admins[0]


def _param(text: str) -> tuple[str, bool | int | float | str]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise InvalidInputError(f"--param {text!r}: write NAME=VALUE, e.g. --param target_c=21")
    for kind in (int, float):
        try:
            return name, kind(raw)
        except ValueError:
            continue
    return name, {"true": True, "false": False}.get(raw.lower(), raw)


def send_command(
    vehicle_id: VehicleArg,
    action: Annotated[str, typer.Argument(help="lock, unlock, climate_on, climate_off, charge_start, ...")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="NAME=VALUE, e.g. target_c=21 or limit_pct=80")
    ] = None,
    expires_in_s: Annotated[
        float | None, typer.Option("--expires-in", help="Seconds the command may wait for the car.")
    ] = None,
    acting: AsOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Send a remote command to a car: it is signed, queued, and expires if the car stays offline."""
    from microfleet.domain.commands import parse_action

    services = services_for(database_url)
    user = _acting_user(services, acting)
    params = dict(_param(p) for p in param or [])
    command, _ = services.commands.issue(
        user, vehicle_id, parse_action(action), params, expires_in_s=expires_in_s, client="cli"
    )
    console.print(
        f"command [bold]{command.command_id}[/bold]: {command.action.value} for {vehicle_id} "
        f"{command.status.value}, expires in {(command.expires_at_ms - command.issued_at_ms) / 1000:.0f} s"
    )


def list_commands(
    vehicle_id: VehicleArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most commands shown.")] = 50,
    acting: AsOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """A car's remote commands and refused attempts, newest first (the audit)."""
    from microfleet.cli.tables import command_events_table, commands_table

    services = services_for(database_url)
    found, refused = services.commands.list_for_vehicle(_acting_user(services, acting), vehicle_id, limit)
    console.print(commands_table(vehicle_id, found))
    if refused:
        console.print(command_events_table(f"Refused attempts on {vehicle_id}", refused))


@vehicles_app.command("command-key")
def command_key(
    vehicle_id: VehicleArg,
    rotate: Annotated[bool, typer.Option("--rotate", help="Sign with a new key from now on.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """A car's command public keys (made on first use); --rotate replaces the signing key."""
    from microfleet.cli.tables import command_keys_table

    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    keys = services.commands.rotate_key(vehicle_id) if rotate else services.commands.key_infos(vehicle_id)
    console.print(command_keys_table(vehicle_id, keys))
    if rotate:
        console.print("the previous key stays listed until the time shown; the car fetches its keys again")


def _ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{text!r} is neither epoch ms nor an ISO time (2026-12-03T18:00Z)") from None
    if when.tzinfo is None:
        raise InvalidInputError(f"{text!r} needs a time zone, e.g. Z or +01:00")
    return round(when.timestamp() * 1000)


@bookings_app.command("add")
def add_booking(
    vehicle_id: VehicleArg,
    driver: Annotated[str, typer.Argument(help="The driver's user name.")],
    start: Annotated[str, typer.Option("--from", help="Start: ISO time with zone, or epoch ms.")],
    end: Annotated[str, typer.Option("--to", help="End (excluded): ISO time with zone, or epoch ms.")],
    database_url: DatabaseOption = None,
) -> None:
    """Book a car for a driver; refused if it overlaps another live booking of the car."""
    from microfleet.cli.tables import bookings_table

    booking = services_for(database_url).bookings.create(vehicle_id, driver, _ms(start), _ms(end))
    console.print(bookings_table([booking]))


@bookings_app.command("list")
def list_bookings(
    vehicle_id: Annotated[str | None, typer.Option("--vehicle", help="Only this car's bookings.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Every booking (of one car with --vehicle), cancelled ones included."""
    from microfleet.cli.tables import bookings_table

    console.print(bookings_table(services_for(database_url).bookings.list_all(vehicle_id)))


@bookings_app.command("cancel")
def cancel_booking(
    booking_id: Annotated[int, typer.Argument(help="The booking's id.")],
    database_url: DatabaseOption = None,
) -> None:
    """Cancel a booking: its driver's commands are refused from now on (the booking is kept)."""
    from microfleet.cli.tables import bookings_table

    console.print(bookings_table([services_for(database_url).bookings.cancel(booking_id)]))
