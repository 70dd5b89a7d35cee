"""``microfleet vehicles tracker-key``: the key a car's phone (OsmAnd, Traccar Client) sends as its ``id``."""

from __future__ import annotations

import typer
from rich.table import Table

from microfleet.cli.common import DatabaseOption, console, services_for

vehicles_app = typer.Typer(help="Vehicles: the tracker keys of their phones.", no_args_is_help=True)
tracker_key_app = typer.Typer(
    help="A car's tracker key: the secret its phone's OsmAnd / Traccar Client sends as the device id "
    "(docs/protocols.md).",
    no_args_is_help=True,
)
vehicles_app.add_typer(tracker_key_app, name="tracker-key")


def _print_key(vehicle_id: str, key: str, verb: str) -> None:
    console.print(f"vehicle [bold]{vehicle_id}[/bold]: tracker key {verb} (shown once):")
    console.print(key, soft_wrap=True)
    console.print("set it as the device identifier in Traccar Client, or as id= in OsmAnd's tracking URL")


@tracker_key_app.command("issue")
def issue(vehicle_id: str, database_url: DatabaseOption = None) -> None:
    """Issue a car its first tracker key (shown once); a car that has one is refused: rotate it."""
    issued = services_for(database_url).tracker_keys.issue(vehicle_id, replace=False)
    _print_key(vehicle_id, issued.key, "issued")


@tracker_key_app.command("rotate")
def rotate(vehicle_id: str, database_url: DatabaseOption = None) -> None:
    """Give a car a new tracker key (shown once); the old one stops working at once."""
    issued = services_for(database_url).tracker_keys.issue(vehicle_id, replace=True)
    _print_key(vehicle_id, issued.key, "rotated" if issued.replaced else "issued")
    if issued.replaced:
        console.print("the old key has stopped working")


@tracker_key_app.command("revoke")
def revoke(vehicle_id: str, database_url: DatabaseOption = None) -> None:
    """Revoke a car's tracker key: its phone's next report is refused."""
    services_for(database_url).tracker_keys.revoke(vehicle_id)
    console.print(f"vehicle [bold]{vehicle_id}[/bold]: tracker key revoked")


@tracker_key_app.command("list")
def list_keys(database_url: DatabaseOption = None) -> None:
    """List the cars that have a tracker key, masked to its first characters."""
    from datetime import UTC, datetime

    table = Table("vehicle", "key", "issued (UTC)", title="Tracker keys")
    for info in services_for(database_url).tracker_keys.list():
        issued = datetime.fromtimestamp(info.issued_at_ms / 1000, UTC)
        table.add_row(info.vehicle_id, info.key_hint, f"{issued:%Y-%m-%d %H:%M:%S}")
    console.print(table)
