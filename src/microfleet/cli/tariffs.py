"""``microfleet tariffs``: list and show tariffs, add a time-of-use one, import day-ahead prices, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.errors import ConfigurationError, InvalidInputError

tariffs_app = typer.Typer(
    help="Tariffs: the built-in examples and your own (time-of-use bands, day-ahead prices).",
    no_args_is_help=True,
)

FileArg = Annotated[Path, typer.Argument(help="The file to read.", exists=True, dir_okay=False)]
VehicleOption = Annotated[str | None, typer.Option("--vehicle", help="Only for this vehicle.")]
FleetOption = Annotated[str | None, typer.Option("--fleet", help="For every vehicle of this fleet.")]
# A tariff file is a few bands; a day-ahead CSV of the most intervals a series holds is about 1.4 MB.
MAX_FILE_BYTES = 2_000_000


def _read(path: Path) -> str:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInputError(f"{path} is over {MAX_FILE_BYTES:,} bytes")
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path} is not UTF-8 text") from None


@tariffs_app.command("list")
def tariffs_list(database_url: DatabaseOption = None) -> None:
    """List the built-in example tariffs and every user tariff, with their scope."""
    from microfleet.cli.tables import tariffs_table

    console.print(tariffs_table(services_for(database_url).tariffs.all()))


@tariffs_app.command("show")
def tariffs_show(tariff_id: str, database_url: DatabaseOption = None) -> None:
    """Show one tariff: its prices (time-of-use bands, or a day-ahead series' span)."""
    from microfleet.cli.tables import tariff_table

    console.print(tariff_table(services_for(database_url).tariffs.get(tariff_id)))


@tariffs_app.command("add-tou")
def tariffs_add_tou(
    path: FileArg,
    vehicle: VehicleOption = None,
    fleet: FleetOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a time-of-use tariff from a JSON file (docs/history.md, Tariffs) for a vehicle, fleet or all."""
    import json

    from microfleet.domain.tariffs import parse_tariff

    try:
        spec = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not JSON: {exc}") from None
    if isinstance(spec, dict):
        spec.setdefault("kind", "time_of_use")
        if spec["kind"] != "time_of_use":
            raise ConfigurationError(f"{path} is a {spec['kind']!r} tariff; add-tou adds time_of_use tariffs")
    tariff = parse_tariff(spec)
    services_for(database_url).tariffs.add(tariff, vehicle_id=vehicle, fleet_id=fleet)
    scope = f"vehicle {vehicle}" if vehicle else f"fleet {fleet}" if fleet else "every vehicle"
    console.print(
        f"tariff [bold]{tariff.tariff_id}[/bold] added for {scope}; name it in a place with --tariff"
    )


@tariffs_app.command("import-day-ahead")
def tariffs_import_day_ahead(
    tariff_id: str,
    path: FileArg,
    currency: Annotated[
        str | None, typer.Option(help="Create the day-ahead tariff first, in this currency (e.g. EUR).")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Its time zone, when creating it (IANA name).")] = "UTC",
    interval_min: Annotated[int, typer.Option(help="Its interval, when creating it: 15, 30 or 60.")] = 60,
    fee_per_kwh: Annotated[float, typer.Option(help="Its fee per kWh, when creating it.")] = 0.0,
    replace: Annotated[bool, typer.Option(help="Replace the whole series instead of adding to it.")] = False,
    vehicle: VehicleOption = None,
    fleet: FleetOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add day-ahead prices from a CSV (start,price_per_kwh) to a tariff, creating it with --currency."""
    from microfleet.cli.tables import when_utc
    from microfleet.domain.tariffs import DayAheadTariff, parse_tariff

    services = services_for(database_url)
    text = _read(path)
    if currency is not None:
        spec = {
            "tariff_id": tariff_id,
            "kind": "day_ahead",
            "currency": currency,
            "timezone": timezone,
            "interval_min": interval_min,
            "fee_per_kwh": fee_per_kwh,
        }
        services.tariffs.add(parse_tariff(spec), vehicle_id=vehicle, fleet_id=fleet)
        console.print(f"day-ahead tariff [bold]{tariff_id}[/bold] created")
    done = services.tariffs.import_day_ahead(tariff_id, text, replace_all=replace)
    series = done.stored.tariff
    span = series.span_ms if isinstance(series, DayAheadTariff) else None
    count = len(series.starts_ms) if isinstance(series, DayAheadTariff) else 0
    covered = f" from {when_utc(span[0])} to {when_utc(span[1])} UTC" if span else ""
    console.print(
        f"{done.read} price(s) {'replaced the series of' if replace else 'added to'} {tariff_id}; it now "
        f"prices {count} interval(s){covered}; {len(done.stale)} car(s) to re-derive"
    )


@tariffs_app.command("delete")
def tariffs_delete(tariff_id: str, database_url: DatabaseOption = None) -> None:
    """Delete a user tariff that no place names."""
    services_for(database_url).tariffs.delete(tariff_id)
    console.print(f"tariff {tariff_id} deleted")
