"""``microfleet drives``, ``charges``, ``derive`` and ``rederive``: a car's history in the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, check_tz, console, services_for

if TYPE_CHECKING:
    from microfleet.bootstrap import Services

LastOption = Annotated[int, typer.Option(min=1, help="How many of the newest to show.")]
TzOption = Annotated[str, typer.Option(help="Time zone to show times in, e.g. Asia/Shanghai.")]


def _place_names(services: Services) -> dict[str, str]:
    """Every place's name by its id (the administrator's view: every place, whatever its scope)."""
    return {p.place.place_id: p.place.name for p in services.places.visible(None)}


def drives(
    vehicle_id: VehicleArg, last: LastOption = 20, tz: TzOption = "UTC", database_url: DatabaseOption = None
) -> None:
    """Show a vehicle's newest drives: when, where, how far, energy and efficiency."""
    from microfleet.cli.tables import drives_table

    check_tz(tz)
    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    found = services.history.last_drives(vehicle_id, last)
    console.print(drives_table(vehicle_id, found, tz_name=tz, place_names=_place_names(services)))


def charges(
    vehicle_id: VehicleArg, last: LastOption = 20, tz: TzOption = "UTC", database_url: DatabaseOption = None
) -> None:
    """Show a vehicle's newest charge sessions: where, energy in, power and cost."""
    from microfleet.cli.tables import charges_table

    check_tz(tz)
    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    found = services.history.last_charges(vehicle_id, last)
    console.print(charges_table(vehicle_id, found, tz_name=tz, place_names=_place_names(services)))


def derive(
    database_url: DatabaseOption = None,
    interval_s: Annotated[
        float, typer.Option(min=0, help="Seconds between rounds; 0 = one round, then exit.")
    ] = 5.0,
) -> None:
    """Derive drives, charges and states of every car with new telemetry (beside a server, or once)."""
    import time

    services = services_for(database_url)
    while True:
        done = services.derivations.run_pending()
        if done:
            console.print(f"derived {len(done)} car(s): {sum(r.records for r in done):,} records")
        for failure in services.derivations.failing():
            console.print(
                f"[red]failing[/red] {failure.vehicle_id} ({failure.attempts} attempt(s), next in "
                f"{failure.retry_in_s:.0f} s): {failure.error}"
            )
        if interval_s == 0:
            return
        time.sleep(interval_s)


def rederive(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """Derive a vehicle's whole history (states, drives, charges) again from its stored telemetry."""
    services = services_for(database_url)
    services.accounts.require_vehicle(vehicle_id)
    report = services.deriver.rederive(vehicle_id)
    console.print(
        f"{vehicle_id}: {report.records:,} records → {report.drives} drives, {report.charges} charges, "
        f"{report.excluded} readings excluded"
    )
