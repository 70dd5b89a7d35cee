"""``microfleet routes`` and ``microfleet forecast``: a car's routine trips, insights and next trips."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, check_tz, console, services_for

if TYPE_CHECKING:
    from rich.table import Table

    from microfleet.intelligence.trip_forecast import Forecast, RouteBook, TripEnergy

TzOption = Annotated[str, typer.Option(help="Time zone of the car's days, e.g. Asia/Shanghai.")]


def _clock(minutes: float) -> str:
    m = round(minutes) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _energy(e: TripEnergy | None) -> str:
    if e is None:
        return "-"
    return f"{e.p10_kwh:.2f} / {e.p50_kwh:.2f} / {e.p90_kwh:.2f}"


def _basis(e: TripEnergy | None) -> str:
    if e is None or e.basis == "this trip's drives":
        return ""
    return " (model)" if e.basis.startswith("per-car trip energy model") else " (per-km)"


def routes_table(vehicle_id: str, book: RouteBook) -> Table:
    """Routine trips: from, to, how often, usual departure, distance and energy P10/P50/P90."""
    from rich.table import Table

    names = {p.place_id: p.name or p.place_id for p in book.places}
    table = Table(title=f"{vehicle_id}: routine trips from {book.drives} drives")
    for col in (
        "from",
        "to",
        "trips",
        "weekday / weekend",
        "usual departure (P10-P90)",
        "km",
        "kWh P10/P50/P90",
    ):
        table.add_column(col)
    for t, e in book.trips:
        table.add_row(
            names.get(t.origin, t.origin),
            names.get(t.destination, t.destination),
            str(t.count),
            f"{t.weekday_count} / {t.weekend_count}",
            f"{_clock(t.departure_median_min)} ({_clock(t.departure_p10_min)}-{_clock(t.departure_p90_min)})",
            f"{t.distance_km_median:.1f}",
            _energy(e) + _basis(e),
        )
    return table


def routes(vehicle_id: VehicleArg, tz: TzOption = "UTC", database_url: DatabaseOption = None) -> None:
    """Show a car's routine trips with their energy, and what its own drives say about them."""
    check_tz(tz)
    services = services_for(database_url)
    vehicle = services.accounts.require_vehicle(vehicle_id)
    book = services.routes.routes(vehicle, tz)
    if book.status == "needs_more_drives":
        console.print(
            f"{vehicle_id}: {book.drives} drives; needs {book.drives_needed} more drives to learn routes"
        )
        return
    console.print(routes_table(vehicle_id, book))
    for insight in book.insights:
        console.print(f"• {insight.text}")


def forecast_table(vehicle_id: str, fc: Forecast, tz: str) -> Table:
    """Predicted next trips: where to and how likely, when, energy."""
    from zoneinfo import ZoneInfo

    from rich.table import Table

    zone = ZoneInfo(tz)

    def at(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, zone).strftime("%a %H:%M")

    table = Table(title=f"{vehicle_id}: next trips")
    for col in ("from", "to", "probability", "departs (P10-P90)", "kWh P10/P50/P90"):
        table.add_column(col)
    for t in fc.trips:
        table.add_row(
            t.origin or "(outside known places)",
            t.destination,
            f"{t.probability:.0%}",
            f"{at(t.depart_ts_ms)} ({at(t.depart_p10_ts_ms)}-{at(t.depart_p90_ts_ms)})",
            _energy(t.energy),
        )
    return table


def forecast(vehicle_id: VehicleArg, tz: TzOption = "UTC", database_url: DatabaseOption = None) -> None:
    """Show a car's predicted next trips and the state of charge they need by departure."""
    check_tz(tz)
    services = services_for(database_url)
    vehicle = services.accounts.require_vehicle(vehicle_id)
    fc = services.routes.forecast(vehicle, tz)
    if fc.status == "needs_more_drives":
        console.print(f"{vehicle_id}: {fc.drives} drives; needs {fc.drives_needed} more drives to forecast")
        return
    console.print(forecast_table(vehicle_id, fc, tz))
    if fc.soc_needed_pct is not None:
        console.print(
            f"SoC needed by the first departure: {fc.soc_needed_pct:.0f} % "
            f"({fc.energy_p90_kwh or 0:.2f} kWh at P90 of {fc.usable_kwh or 0:.1f} kWh usable, "
            f"plus {fc.reserve_pct:.0f} % reserve)"
        )
    else:
        console.print(
            "SoC needed: unknown (no energy figure for every predicted trip, or no usable capacity)"
        )
