"""The ``microfleet`` command: serve, demo, database, administration and quarantine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from microfleet.cli_places import places_app
from microfleet.errors import ConfigurationError, MicrofleetError
from microfleet.sim.commands import simulate

if TYPE_CHECKING:
    from microfleet.bootstrap import Services
    from microfleet.settings import Settings

console = Console(soft_wrap=True)
app = typer.Typer(
    name="microfleet",
    help="Microfleet: telematics, battery intelligence and smart charging for small electric city cars.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The store: create and migrate its schema.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Accounts: fleets, users, API tokens, vehicles and grants.", no_args_is_help=True
)
quarantine_app = typer.Typer(help="Refused telemetry: list it, replay it after a fix.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(places_app, name="places")
app.command("simulate")(simulate)

DatabaseOption = Annotated[
    str | None, typer.Option("--database-url", help="Store URL (default: MICROFLEET_DATABASE_URL or SQLite).")
]


def _settings(database_url: str | None = None) -> Settings:
    from microfleet.settings import Settings

    return Settings(database_url=database_url) if database_url else Settings()


def _services(database_url: str | None) -> Services:
    from microfleet.bootstrap import build_services

    return build_services(_settings(database_url))


def _check_tz(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai"
        ) from None


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

    settings = _settings(database_url)
    # Worker processes rebuild the app from the environment, so pass the chosen store on through it.
    os.environ["MICROFLEET_DATABASE_URL"] = settings.database_url
    uvicorn.run(
        "microfleet.api.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_level="info",
    )


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseOption = None) -> None:
    """Create or migrate the store's schema to the latest revision."""
    from microfleet.store.engine import make_engine
    from microfleet.store.migrate import current_revision, upgrade

    settings = _settings(database_url)
    engine = make_engine(settings.database_url, settings.database_schema)
    upgrade(engine, settings.database_schema)
    console.print(f"store at revision [bold]{current_revision(engine)}[/bold]")
    engine.dispose()


@admin_app.command("add-fleet")
def add_fleet(
    fleet_id: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    database_url: DatabaseOption = None,
) -> None:
    """Register a fleet (a car-sharing operator's cars, a family's cars)."""
    _services(database_url).admin.add_fleet(fleet_id, name or fleet_id)
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
    services = _services(database_url)
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
    token = _services(database_url).admin.issue_token(name, label)
    console.print(token, soft_wrap=True)


@admin_app.command("revoke-tokens")
def revoke_tokens(name: str, database_url: DatabaseOption = None) -> None:
    """Revoke every API token of a user."""
    count = _services(database_url).admin.revoke_tokens(name)
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
    token = _services(database_url).admin.add_vehicle(vehicle_id, name=name, model_id=model, fleet_id=fleet)
    console.print(f"vehicle [bold]{vehicle_id}[/bold] added; device credential (shown once):")
    console.print(token, soft_wrap=True)


@admin_app.command("grant")
def grant(
    vehicle_id: str,
    user: Annotated[str | None, typer.Option(help="User who may see the vehicle.")] = None,
    fleet: Annotated[str | None, typer.Option(help="Fleet whose users may see the vehicle.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Let a user, or every user of a fleet, see a vehicle."""
    _services(database_url).admin.grant(vehicle_id, user_name=user, fleet_id=fleet)
    console.print(f"{'user ' + user if user else 'fleet ' + str(fleet)} now sees {vehicle_id}")


@admin_app.command("users")
def list_users(database_url: DatabaseOption = None) -> None:
    """List users with their roles and fleets."""
    table = Table("id", "name", "role", "fleet", title="Microfleet users")
    for user in _services(database_url).admin.list_users():
        table.add_row(str(user.user_id), user.name, user.role.value, user.fleet_id or "")
    console.print(table)


@quarantine_app.command("list")
def quarantine_list(
    reason: Annotated[str | None, typer.Option(help="Only this rejection reason.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most rows to show.")] = 50,
    database_url: DatabaseOption = None,
) -> None:
    """List refused telemetry records with their reasons."""
    rows = _services(database_url).quarantine.list(vehicle_ids=None, reason=reason, limit=limit)
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
    services = _services(database_url)
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
        outcome = services.replay_quarantined(quarantine_id)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    console.print(f"replayed {len(ids)}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


VehicleArg = Annotated[str, typer.Argument(help="Vehicle id.")]
LastOption = Annotated[int, typer.Option(min=1, help="How many of the newest to show.")]
TzOption = Annotated[str, typer.Option(help="Time zone to show times in, e.g. Asia/Shanghai.")]


@app.command()
def drives(
    vehicle_id: VehicleArg, last: LastOption = 20, tz: TzOption = "UTC", database_url: DatabaseOption = None
) -> None:
    """Show a vehicle's newest drives: when, where, how far, energy and efficiency."""
    from microfleet.store.history_report import drives_table

    _check_tz(tz)
    services = _services(database_url)
    console.print(drives_table(services.engine, vehicle_id, last=last, tz_name=tz))


@app.command()
def charges(
    vehicle_id: VehicleArg, last: LastOption = 20, tz: TzOption = "UTC", database_url: DatabaseOption = None
) -> None:
    """Show a vehicle's newest charge sessions: where, energy in, power and cost."""
    from microfleet.store.history_report import charges_table

    _check_tz(tz)
    services = _services(database_url)
    console.print(charges_table(services.engine, vehicle_id, last=last, tz_name=tz))


@app.command()
def derive(
    database_url: DatabaseOption = None,
    interval_s: Annotated[
        float, typer.Option(min=0, help="Seconds between rounds; 0 = one round, then exit.")
    ] = 5.0,
) -> None:
    """Derive drives, charges and states of every car with new telemetry (beside a server, or once)."""
    import time

    services = _services(database_url)
    while True:
        done = services.derivations.run_pending()
        if done:
            console.print(f"derived {len(done)} car(s): {sum(r.records for r in done):,} records")
        if interval_s == 0:
            return
        time.sleep(interval_s)


@app.command()
def rederive(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """Derive a vehicle's whole history (states, drives, charges) again from its stored telemetry."""
    report = _services(database_url).deriver.rederive(vehicle_id)
    console.print(
        f"{vehicle_id}: {report.records:,} records → {report.drives} drives, {report.charges} charges, "
        f"{report.excluded} readings excluded"
    )


@app.command()
def demo(
    database_url: DatabaseOption = None,
    port: Annotated[int, typer.Option(help="TCP port of the demo server.")] = 8080,
    duration_s: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    speedup: Annotated[float, typer.Option(min=1, help="Simulated seconds per wall second.")] = 1440.0,
) -> None:
    """Run a server on SQLite with a live digital twin of owners' cars and a car-sharing fleet in Shanghai."""
    from microfleet.demo import run_demo

    run_demo(
        database_url or "sqlite:///var/demo.db",
        port=port,
        duration_s=duration_s,
        speedup=speedup,
        console=console,
    )


def main() -> None:
    """Run the ``microfleet`` command line; a refusal prints its code and sentence and exits with 2."""
    try:
        app()
    except MicrofleetError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise SystemExit(2) from None
