"""``microfleet places``: add, list and delete places (geofences), and suggest them from where cars stop."""

from __future__ import annotations

from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for
from microfleet.errors import ConfigurationError

places_app = typer.Typer(
    help="Places (geofences): add, list, delete, and suggestions from where cars stop.", no_args_is_help=True
)

PLACE_KINDS = ("home", "work", "depot", "charger", "other")


@places_app.command("add")
def places_add(
    name: Annotated[str, typer.Argument(help="What to call the place, e.g. Home.")],
    lat: Annotated[float, typer.Option(help="Centre latitude, degrees (WGS84).")],
    lon: Annotated[float, typer.Option(help="Centre longitude, degrees (WGS84).")],
    radius_m: Annotated[float, typer.Option(help="Radius, metres (10 to 5,000).")] = 150.0,
    kind: Annotated[str, typer.Option(help="home, work, depot, charger or other.")] = "other",
    tariff: Annotated[
        str | None, typer.Option(help="Tariff of charging there, e.g. cn_sh_residential_tou.")
    ] = None,
    vehicle: Annotated[str | None, typer.Option(help="Only for this vehicle.")] = None,
    fleet: Annotated[str | None, typer.Option(help="For every vehicle of this fleet.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a circular place for a vehicle, a fleet, or (neither given) every vehicle."""
    from microfleet.domain.places import Circle, Place, PlaceKind, new_place_id

    if kind not in PLACE_KINDS:
        raise ConfigurationError(f"kind {kind!r} is not one of {', '.join(PLACE_KINDS)}")
    services = services_for(database_url)
    place = Place(new_place_id(), name, PlaceKind(kind), Circle(lat, lon, radius_m), tariff)
    stale = services.places.add(place, vehicle_id=vehicle, fleet_id=fleet)
    scope = f"vehicle {vehicle}" if vehicle else f"fleet {fleet}" if fleet else "every vehicle"
    console.print(
        f"place [bold]{place.place_id}[/bold] ({name}) added for {scope}; {len(stale)} car(s) to re-derive"
    )


@places_app.command("list")
def places_list(
    vehicle: Annotated[str | None, typer.Option(help="Only places that apply to this vehicle.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """List places with their geofence, scope and tariff."""
    from microfleet.cli.tables import places_table

    services = services_for(database_url)
    found = services.places.visible(None)
    if vehicle is not None:
        ids = {p.place_id for p in services.places.applying_to(vehicle)}
        found = [p for p in found if p.place.place_id in ids]
    console.print(places_table(found, title=f"Places of {vehicle}" if vehicle else "Places"))


@places_app.command("delete")
def places_delete(place_id: str, database_url: DatabaseOption = None) -> None:
    """Delete a place; the cars it applied to are re-derived without it."""
    stale = services_for(database_url).places.delete(place_id)
    console.print(f"place {place_id} deleted; {len(stale)} car(s) to re-derive")


@places_app.command("suggest")
def places_suggest(
    vehicle_id: VehicleArg,
    radius_m: Annotated[float, typer.Option(min=50, max=1000, help="Cluster radius, metres.")] = 150.0,
    min_visits: Annotated[int, typer.Option(min=2, help="Stops needed to make a place.")] = 3,
    database_url: DatabaseOption = None,
) -> None:
    """Suggest places where a vehicle's drives often end and no place covers yet."""
    from microfleet.cli.tables import suggestions_table

    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    found = services.places.suggestions(vehicle_id, radius_m=radius_m, min_visits=min_visits)
    console.print(suggestions_table(vehicle_id, found))
