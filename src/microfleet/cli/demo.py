"""``microfleet demo``: a server on SQLite and a live digital twin sending telemetry to it over real HTTP.

The twin is a few owners' cars and a small car-sharing fleet driving central Shanghai's real streets
(OpenStreetMap, © OpenStreetMap contributors, ODbL); the last simulated day is replayed accelerated, ending
now, through ``POST /api/v1/telemetry`` with each car's own device credential; then the cars go on driving
in real time until the demo stops.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from microfleet.api import create_app
from microfleet.api.auth import forwarded_header_options
from microfleet.bootstrap import Services, build_services
from microfleet.cli.common import opening_store
from microfleet.cli.simulate import report_live
from microfleet.domain.access import Role
from microfleet.settings import Settings
from microfleet.sim.launch import demo_registrations, demo_scenario, run_live_twin
from microfleet.sim.live import LiveProgress
from microfleet.sim.scenario import SHARING_FLEET_ID, Scenario

DEMO_OWNER = "demo-owner"
DEMO_OPERATOR = "demo-operator"


def _fresh_demo_store(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)


def register_twin(services: Services, scenario: Scenario) -> tuple[dict[str, str], dict[str, str]]:
    """Register the twin's cars and two people: an owner of the private cars, an operator of the fleet.

    Returns the login tokens by user and the device credentials by vehicle.
    """
    services.admin.add_fleet(SHARING_FLEET_ID, "Twin car sharing")
    services.admin.add_user(DEMO_OWNER, Role.OWNER)
    services.admin.add_user(DEMO_OPERATOR, Role.OPERATOR, SHARING_FLEET_ID)
    devices: dict[str, str] = {}
    for car in demo_registrations(scenario):
        devices[car.vehicle_id] = services.admin.add_vehicle(
            car.vehicle_id, name=car.name, model_id=car.model_id, fleet_id=car.fleet_id
        )
        if car.fleet_id is None:
            services.admin.grant(car.vehicle_id, user_name=DEMO_OWNER)
    logins = {name: services.admin.issue_token(name, "demo login") for name in (DEMO_OWNER, DEMO_OPERATOR)}
    return logins, devices


def _start_server(
    settings: Settings, services: Services, port: int
) -> tuple[uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(
        create_app(settings, services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **forwarded_header_options(settings.trusted_proxies),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit(f"the demo server could not start on port {port} (is it in use?)")
        time.sleep(0.05)
    return server, thread


def run_demo(
    database_url: str, *, port: int, duration_s: float | None, speedup: float, console: Console
) -> None:
    """Serve the API and drive the twin into it; keep serving until ``duration_s`` passes or Ctrl-C."""
    _fresh_demo_store(database_url)
    settings = Settings(database_url=database_url, http_port=port)
    with opening_store(database_url):
        services = build_services(settings)
    scenario = demo_scenario(owners=3, sharing=5, days=1, seed=0)
    logins, devices = register_twin(services, scenario)
    server, thread = _start_server(settings, services, port)
    base = f"http://127.0.0.1:{port}"
    console.print(f"[bold green]Microfleet demo[/bold green] serving {base}  (store: {database_url})")
    console.print(f"API and its docs: {base}/docs")
    for name, token in logins.items():
        console.print(f"login token of {name}: {token}")
    console.print(f"try: curl -H 'Authorization: Bearer {logins[DEMO_OWNER]}' {base}/api/v1/vehicles")
    deadline = None if duration_s is None else time.monotonic() + duration_s
    stop = threading.Event()

    def should_stop() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    try:
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            task = bar.add_task(f"twin: {len(devices)} cars replaying the last day ×{speedup:g}", total=1.0)
            live = threading.Event()

            def show(p: LiveProgress) -> None:
                if p.caught_up and not live.is_set():
                    live.set()
                    console.print(
                        "the twin has caught up with now; its cars drive on in real time (Ctrl-C stops it)"
                    )
                done = min(1.0, 1.0 - (p.end_ms - p.sim_ms) / (p.days * 86_400_000))
                state = "live, " if live.is_set() else ""
                bar.update(
                    task, completed=done, description=f"twin: {state}{p.result.accepted:,} records accepted"
                )

            result = run_live_twin(
                base,
                devices,
                scenario,
                speedup=speedup,
                on_progress=show,
                should_stop=should_stop,
                keep_up=True,
            )
        report_live(result)
    except KeyboardInterrupt:
        stop.set()
        console.print("stopping")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.close()
