"""``microfleet demo``: a server on SQLite and a live digital twin sending to it over a real protocol.

The twin is a few owners' cars and a small car-sharing fleet driving central Shanghai's real streets
(OpenStreetMap, © OpenStreetMap contributors, ODbL); the last simulated day is replayed accelerated, ending
now, then the cars go on driving in real time until the demo stops. Each car sends with its own credential:

* over MQTT (the default when ``mosquitto`` is on PATH): the demo starts a Mosquitto of its own on a free
  local port with the password and ACL files Microfleet writes (no root, no system configuration), gives
  each car a broker login, and runs the ingest bridge in this process;
* over HTTP (``POST /api/v1/telemetry``, device tokens) when there is no ``mosquitto``, said in one line;
* as OsmAnd / Traccar Client phones (``/osmand``, tracker keys) with ``--protocol osmand``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from microfleet.api import create_app
from microfleet.api.auth import forwarded_header_options
from microfleet.bootstrap import Services, build_mqtt_access, build_mqtt_bridge, build_services
from microfleet.cli.common import opening_store
from microfleet.cli.simulate import report_live
from microfleet.domain.access import Role
from microfleet.errors import ConfigurationError
from microfleet.settings import Settings
from microfleet.sim.launch import MqttBroker, demo_registrations, demo_scenario, run_live_twin
from microfleet.sim.live import LiveProgress
from microfleet.sim.scenario import SHARING_FLEET_ID, Scenario

if TYPE_CHECKING:
    from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter
    from microfleet.ingest.mqtt_commands import MqttCommandDispatcher

DEMO_PROTOCOLS = ("auto", "mqtt", "http", "osmand")
BROKER_START_S = 10.0  # how long the demo waits for its Mosquitto to listen before sending over HTTP

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


def set_demo_passwords(services: Services) -> dict[str, str]:
    """A fresh password for each demo user, for the web app; returns them by user name."""
    passwords = {}
    for user in services.admin.list_users():
        if user.name in (DEMO_OWNER, DEMO_OPERATOR):
            passwords[user.name] = secrets.token_urlsafe(9)  # 72 random bits, printed once
            services.web_sessions.set_password(user, passwords[user.name])
    return passwords


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoBroker:
    """The demo's own Mosquitto: a free local port, a private folder of Microfleet-written files."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, executable: str) -> str | None:
        """Start it on Microfleet's listener config; None once it listens, else why it did not start."""
        from microfleet.ingest.mosquitto_config import render_listener_conf

        # Mosquitto started as root drops to user "mosquitto", who cannot read this private folder: it
        # keeps the user it was started as (mosquitto.conf(5), "user"; a non-root start ignores it).
        user = pwd.getpwuid(os.geteuid()).pw_name
        conf = self.folder / "mosquitto.conf"
        conf.write_text(render_listener_conf(self.folder, port=self.port) + f"user {user}\n")
        log_path = self.folder / "mosquitto.log"
        with log_path.open("ab") as log:
            self.process = subprocess.Popen([executable, "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + BROKER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return None
            time.sleep(0.05)
        self.stop()
        lines = log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "it exited without a word"

    def stop(self) -> None:
        """Stop the broker (SIGTERM) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


class BridgeThread:
    """The MQTT ingest bridge's loop in a thread of this process (``microfleet mqtt bridge`` runs it)."""

    def __init__(
        self,
        adapter: MqttTelemetryAdapter,
        connection: MqttConnection,
        dispatcher: MqttCommandDispatcher | None = None,
    ) -> None:
        self._adapter, self._connection = adapter, connection
        self._dispatcher = dispatcher  # remote commands out to the cars, their results in
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(),), daemon=True
        )

    async def _run(self) -> None:
        connected = asyncio.Event()
        task = asyncio.create_task(self._adapter.run(self._connection, self._stop, connected=connected))
        commands = (
            asyncio.create_task(self._dispatcher.run(self._connection, self._stop))
            if self._dispatcher is not None
            else None
        )
        waiting = asyncio.create_task(connected.wait())
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if connected.is_set():
            self._subscribed.set()
        await task
        if commands is not None:
            await commands

    def start(self, timeout_s: float = BROKER_START_S) -> bool:
        """Start the bridge; True once it has subscribed to the cars' topics."""
        self._thread.start()
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        """Let the bridge finish the message in hand, then stop it."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo as Ctrl-C does, so its broker and bridge are stopped, not orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _Transport:
    """How the demo's cars send: the protocol, each car's credential, and the MQTT parts if any."""

    protocol: str
    credentials: dict[str, str]
    mqtt: MqttBroker | None = None
    broker: DemoBroker | None = None
    bridge: BridgeThread | None = None

    def stop(self) -> None:
        """Stop the bridge, then the broker (its folder goes with it)."""
        if self.bridge is not None:
            self.bridge.stop()
        if self.broker is not None:
            self.broker.stop()


def _fall_back(protocol: str, why: str, console: Console) -> None:
    """Refuse ``--protocol mqtt`` without a broker; for ``auto``, say in one line that HTTP is used."""
    if protocol == "mqtt":
        raise ConfigurationError(f"--protocol mqtt: {why}; install mosquitto or use --protocol http")
    console.print(f"{why}: the twin's cars send over HTTP instead (POST /api/v1/telemetry)")


def _over_mqtt(
    services: Services, broker: DemoBroker, executable: str, devices: dict[str, str], console: Console
) -> _Transport | str:
    """Broker logins for Microfleet and every car, the broker started on them, the bridge subscribed."""
    access = build_mqtt_access(services)
    ingest = access.set_ingest_login()
    passwords = {vehicle_id: access.issue(vehicle_id).password for vehicle_id in devices}
    failure = broker.start(executable)
    if failure is not None:
        return f"the demo's mosquitto did not start ({failure})"
    from microfleet.ingest.mqtt_commands import MqttCommandDispatcher

    adapter, connection = build_mqtt_bridge(services)
    dispatcher = MqttCommandDispatcher(services.commands, adapter.topics, services.clock)
    bridge = BridgeThread(adapter, replace(connection, password=ingest.password), dispatcher)
    transport = _Transport("mqtt", passwords, MqttBroker("127.0.0.1", broker.port, adapter.topics.prefix))
    transport.broker, transport.bridge = broker, bridge
    if not bridge.start():
        transport.stop()
        return f"the MQTT bridge could not subscribe at 127.0.0.1:{broker.port}"
    console.print(
        f"the twin's cars send over MQTT: each with its own login to the demo's mosquitto at "
        f"127.0.0.1:{broker.port} ({adapter.topics.prefix}/v1/<car>/telemetry), bridged into the store here"
    )
    return transport


def run_demo(
    database_url: str,
    *,
    port: int,
    duration_s: float | None,
    speedup: float,
    console: Console,
    protocol: str = "auto",
) -> None:
    """Serve the API and drive the twin into it; keep serving until ``duration_s`` passes or Ctrl-C.

    ``protocol``: auto (MQTT if ``mosquitto`` is on PATH, else HTTP), mqtt, http or osmand.
    """
    if protocol not in DEMO_PROTOCOLS:
        raise ConfigurationError(f"unknown protocol {protocol!r}; known: {', '.join(DEMO_PROTOCOLS)}")
    executable = shutil.which("mosquitto") if protocol in ("auto", "mqtt") else None
    if protocol in ("auto", "mqtt") and executable is None:
        _fall_back(protocol, "mosquitto is not on PATH", console)
        protocol = "http"
    broker = None
    mqtt_settings: dict[str, object] = {}
    if executable is not None:
        broker = DemoBroker(Path(tempfile.mkdtemp(prefix="microfleet-demo-mqtt-")), _free_port())
        mqtt_settings = {
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker.port,
            "mqtt_tls": False,
            "mqtt_broker_config_dir_path": broker.folder,
            "mqtt_broker_pid_path": None,  # never signal a broker of the user's own
        }
    transport: _Transport | None = None
    services: Services | None = None
    with _sigterm_as_interrupt():
        try:
            _fresh_demo_store(database_url)
            settings = Settings(database_url=database_url, http_port=port, **mqtt_settings)  # type: ignore[arg-type]
            with opening_store(database_url):
                services = build_services(settings)
            scenario = demo_scenario(owners=3, sharing=5, days=1, seed=0)
            logins, devices = register_twin(services, scenario)
            if broker is not None and executable is not None:
                over_mqtt = _over_mqtt(services, broker, executable, devices, console)
                if isinstance(over_mqtt, str):
                    _fall_back(protocol, over_mqtt, console)
                else:
                    transport = over_mqtt
            if transport is None and protocol == "osmand":
                keys = {v: services.tracker_keys.issue(v, replace=False).key for v in devices}
                transport = _Transport("osmand", keys)
                console.print(
                    "the twin's cars are phones running OsmAnd / Traccar Client: GET /osmand, tracker keys"
                )
            if transport is None:
                transport = _Transport("http", devices)
            _serve_and_drive(
                services,
                settings,
                scenario.with_overrides(protocol=transport.protocol),
                transport,
                logins,
                port=port,
                duration_s=duration_s,
                speedup=speedup,
                console=console,
            )
        finally:
            if transport is not None:
                transport.stop()  # the bridge writes through the services: it stops first
            if broker is not None:
                broker.stop()
            if services is not None:
                services.close()


def _serve_and_drive(
    services: Services,
    settings: Settings,
    scenario: Scenario,
    transport: _Transport,
    logins: dict[str, str],
    *,
    port: int,
    duration_s: float | None,
    speedup: float,
    console: Console,
) -> None:
    server, thread = _start_server(settings, services, port)
    base = f"http://127.0.0.1:{port}"
    console.print(
        f"[bold green]Microfleet demo[/bold green] serving {base}  (store: {settings.database_url})"
    )
    console.print(f"web app: {base}/  (live map, vehicle pages)")
    for name, password in set_demo_passwords(services).items():
        console.print(f"web login of {name}: user name {name}, password {password}")
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
            cars = len(transport.credentials)
            task = bar.add_task(f"twin: {cars} cars replaying the last day ×{speedup:g}", total=1.0)
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
                transport.credentials,
                scenario,
                speedup=speedup,
                on_progress=show,
                should_stop=should_stop,
                keep_up=True,
                mqtt=transport.mqtt,
                # the cars' keys as GET /api/v1/vehicles/{id}/command-keys lists them to their devices
                command_keys={v: services.commands.public_keys(v) for v in transport.credentials}
                if transport.protocol == "mqtt"
                else None,
            )
        report_live(result)
    except KeyboardInterrupt:
        stop.set()
        console.print("stopping")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
