"""``microfleet route FROM TO``: the fastest and the energy-optimal route, for a car or the generic prior."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.errors import RouteInputError

if TYPE_CHECKING:
    from rich.table import Table

    from microfleet.services.route_energy import RouteAnswer

PointArg = Annotated[
    str, typer.Argument(help="A point as 'lat,lon' in WGS84 degrees, e.g. 31.2304,121.4737.")
]


def _point(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(p) for p in text.split(","))
    except ValueError:
        raise RouteInputError(f"a point is 'lat,lon' in degrees, got {text!r}") from None
    return lat, lon


def route_table(a: RouteAnswer) -> Table:
    """The two routes side by side: km, minutes, kWh P10/P50/P90."""
    from rich.table import Table

    table = Table(
        title=f"{a.vehicle_id or 'any car'}: route at {a.hour_local:.0f} h, {a.ambient_temp_c:.0f} °C"
    )
    for col in ("route", "km", "min", "kWh P10 / P50 / P90"):
        table.add_column(col)
    for leg in (a.route, a.alternative):
        name = "energy-optimal" if leg.objective == "energy" else "fastest"
        table.add_row(
            name,
            f"{leg.distance_km:.2f}",
            f"{leg.duration_min:.1f}",
            f"{leg.energy_p10_kwh:.3f} / {leg.energy_p50_kwh:.3f} / {leg.energy_p90_kwh:.3f}",
        )
    return table


def route(
    origin: PointArg,
    destination: PointArg,
    vehicle: Annotated[str | None, typer.Option(help="A vehicle id: its own energy model.")] = None,
    objective: Annotated[str, typer.Option(help="energy or time: which route comes first.")] = "energy",
    soc_pct: Annotated[float | None, typer.Option(help="The car's SoC now: there and back?")] = None,
    ambient_c: Annotated[float | None, typer.Option(help="Forecast temperature, °C.")] = None,
    hour: Annotated[float | None, typer.Option(help="Departure hour, local (0-24).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the fastest and the energy-optimal route between two points and the kWh one saves."""
    services = services_for(database_url)
    car = services.accounts.require_vehicle(vehicle) if vehicle is not None else None
    a = services.route_energy.route_for(
        car, _point(origin), _point(destination), objective=objective, soc_pct=soc_pct,
        ambient_temp_c=ambient_c, hour_local=hour,
    )  # fmt: skip
    console.print(route_table(a))
    console.print(
        f"The energy-optimal route saves {a.kwh_saved_by_energy_route:.3f} kWh for "
        f"{a.minutes_added_by_energy_route:.1f} extra minutes."
    )
    console.print(f"Model: {a.model_basis} ({a.model_version}); temperature: {a.ambient_source}")
    if a.round_trip is not None:
        rt = a.round_trip
        verdict = "makes it there and back" if rt.possible else "does not make it there and back"
        console.print(
            f"{verdict}: needs {rt.needed_kwh_p90:.2f} kWh (P90), has {rt.available_kwh:.2f} kWh above the "
            f"reserve; {rt.charger_note}"
        )
