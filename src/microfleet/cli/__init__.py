"""The ``microfleet`` command: serve, demo, database, administration, history, places and the twin."""

from __future__ import annotations

from typing import Annotated

import typer

from microfleet.cli import history
from microfleet.cli.admin import admin_app, quarantine_app
from microfleet.cli.alerts import alerts_app
from microfleet.cli.battery import battery
from microfleet.cli.charging import charging_app, plan
from microfleet.cli.commands import bookings_app, list_commands, send_command
from microfleet.cli.common import (
    DatabaseOption,
    close_services,
    console,
    opening_store,
    services_for,
    settings_for,
)
from microfleet.cli.driving import driver_scores
from microfleet.cli.import_ import import_files
from microfleet.cli.maintenance import maintenance, service_plan
from microfleet.cli.mqtt import mqtt_app
from microfleet.cli.ovms import ovms_bridge as _ovms_bridge  # noqa: F401 (registers mqtt ovms-bridge)
from microfleet.cli.partitions import partitions_app
from microfleet.cli.places import places_app
from microfleet.cli.route import route as _route
from microfleet.cli.routes import forecast as _forecast
from microfleet.cli.routes import routes as _routes
from microfleet.cli.simulate import simulate
from microfleet.cli.tariffs import tariffs_app
from microfleet.cli.vehicles import vehicles_app
from microfleet.cli.worker import ingest_worker
from microfleet.errors import MicrofleetError

app = typer.Typer(
    name="microfleet",
    help="Microfleet: telematics for small electric city cars and their fleets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The store: create and migrate its schema; PostgreSQL's telemetry partitions.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
db_app.add_typer(partitions_app, name="partitions")
app.add_typer(admin_app, name="admin")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(places_app, name="places")
app.add_typer(tariffs_app, name="tariffs")
app.add_typer(alerts_app, name="alerts")
app.add_typer(vehicles_app, name="vehicles")
app.add_typer(bookings_app, name="bookings")
app.command("command")(send_command)  # remote commands (docs/commands.md); also vehicles command-key
app.command("commands")(list_commands)
app.add_typer(mqtt_app, name="mqtt")
app.command("simulate")(simulate)
app.command("import")(import_files)
app.command("ingest-worker")(ingest_worker)
app.command("battery")(battery)  # a car's SoC, SoH, range and care advice (docs/battery.md)
app.command("maintenance")(maintenance)  # detectors and due service of a car (docs/maintenance.md)
app.command("service-plan")(service_plan)  # which cars to pull in this week (docs/maintenance.md)
app.command("plan")(plan)  # a fleet's charging plan (docs/charging.md)
app.add_typer(charging_app, name="charging")
app.command("driver-scores")(driver_scores)  # a fleet's drivers (docs/driver-score.md)
app.command("routes")(_routes)  # a car's routine trips, energy and insights (docs/routes.md)
app.command("forecast")(_forecast)  # its next trips and the SoC they need
app.command("route")(_route)  # fastest vs energy-optimal route between two points (docs/routes.md)
for command in (history.drives, history.charges, history.derive, history.rederive):
    app.command()(command)


@app.command()
def version() -> None:
    """Print Microfleet's version."""
    from microfleet import __version__

    console.print(__version__)


@app.command()
def serve(
    database_url: DatabaseOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port to listen on.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (one per CPU core is typical).")] = 1,
) -> None:
    """Run the Microfleet server (API) until interrupted."""
    import os

    import uvicorn

    from microfleet.api.auth import forwarded_header_options

    settings = settings_for(database_url)
    listen = {
        "host": host or settings.http_host,
        "port": port or settings.http_port,
        "log_level": "info",
        **forwarded_header_options(settings.trusted_proxies),
    }
    # Open (and migrate) the store first, once: one that cannot be opened is one sentence here, not a
    # traceback from the server's startup, and workers find it migrated.
    services = services_for(database_url)
    if workers == 1:
        from microfleet.api import create_app
        from microfleet.bootstrap import settle_heap

        application = create_app(settings, services)
        settle_heap()  # the modules and services live as long as the server: out of the collector's way
        uvicorn.run(application, **listen)
        return
    close_services()  # each worker opens its own
    # Worker processes are new interpreters that build the app from MICROFLEET_* variables: hand them
    # the store this command was given the only way they inherit anything, through the environment.
    os.environ["MICROFLEET_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        "microfleet.api.app:app_from_environment",
        factory=True,
        workers=workers,
        **listen,
    )


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Create or migrate the store's schema to the latest revision."""
    from microfleet.store.engine import make_engine
    from microfleet.store.migrate import current_revision, upgrade

    settings = settings_for(database_url)
    engine = make_engine(settings.database_url, settings.database_schema)
    try:
        with opening_store(settings.database_url):
            upgrade(engine, settings.database_schema)
            revision = current_revision(engine)
    finally:
        engine.dispose()
    console.print(f"store at revision [bold]{revision}[/bold]")


@app.command()
def demo(
    database_url: DatabaseOption = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port of the demo server (default: MICROFLEET_HTTP_PORT or 8080).")
    ] = None,
    duration_s: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    speedup: Annotated[float, typer.Option(min=1, help="Simulated seconds per wall second.")] = 1440.0,
    protocol: Annotated[
        str,
        typer.Option(
            help="How the cars send: auto (MQTT through a mosquitto of the demo's own if one is on PATH, "
            "else HTTP), mqtt, http, or osmand (phones running OsmAnd / Traccar Client)."
        ),
    ] = "auto",
) -> None:
    """Run a server on SQLite with a live digital twin of owners' cars and a car-sharing fleet in Shanghai."""
    from microfleet.cli.demo import run_demo

    settings = settings_for()  # the demo's store is its own (it starts afresh), never MICROFLEET_DATABASE_URL
    run_demo(
        database_url or "sqlite:///var/demo.db",
        port=port or settings.http_port,
        duration_s=duration_s,
        speedup=speedup,
        console=console,
        protocol=protocol,
    )


def main() -> None:
    """Run the ``microfleet`` command line; a refusal prints its code and sentence and exits with 2.

    Whatever the command opened (its services, their database connections) is closed when it ends.
    """
    try:
        app()
    except MicrofleetError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise SystemExit(2) from None
    finally:
        close_services()
