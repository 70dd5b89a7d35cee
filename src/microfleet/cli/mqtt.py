"""``microfleet mqtt``: the broker's users and ACL for cars, and the bridge that ingests their telemetry.

The bridge is its own command, not part of ``serve``: it holds one persistent broker session (one client
id), which ``serve --workers N`` would open N times, and it can be restarted without the API. It writes
through the same store, and ``serve`` derives the history of what it stored (the stale list is in the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for

if TYPE_CHECKING:
    from microfleet.ingest.mqtt import MqttConnection
    from microfleet.services.mqtt_access import MqttAccessService, MqttCredential

mqtt_app = typer.Typer(
    help="MQTT: cars' broker logins (password and ACL files) and the ingest bridge.", no_args_is_help=True
)


def _access(database_url: str | None) -> MqttAccessService:
    from microfleet.bootstrap import build_mqtt_access

    return build_mqtt_access(services_for(database_url))


def _show(credential: MqttCredential, what: str) -> None:
    console.print(f"{what}; MQTT user [bold]{credential.username}[/bold], password (shown once):")
    console.print(credential.password, soft_wrap=True)
    if not credential.broker_reloaded:
        console.print(
            "no running broker was told (MICROFLEET_MQTT_BROKER_PID_PATH): it applies at its next start"
        )


@mqtt_app.command("setup")
def setup(
    port: Annotated[int, typer.Option(help="Port of the broker's listener for cars.")] = 1883,
    bind_address: Annotated[str, typer.Option(help="Address the listener binds.")] = "0.0.0.0",
    tls_cert: Annotated[Path | None, typer.Option(help="Certificate (PEM) for a TLS listener.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM).")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Write the ACL and a listener config for the broker, and print a new password for Microfleet's user."""
    from microfleet.bootstrap import build_mqtt_access
    from microfleet.ingest.mosquitto_config import CONF_FILE_NAME, render_listener_conf

    services = services_for(database_url)
    access = build_mqtt_access(services)
    folder = services.settings.mqtt_broker_config_dir_path
    assert folder is not None  # build_mqtt_access refused otherwise
    conf = folder / CONF_FILE_NAME
    listener = render_listener_conf(
        folder,
        port=port,
        bind_address=bind_address,
        persistence_dir=folder,
        tls_cert_path=tls_cert,
        tls_key_path=tls_key,
    )
    credential = access.set_ingest_login()  # after the listener is known to be valid
    conf.write_text(listener)
    console.print(f"broker config written: include [bold]{conf}[/bold] in mosquitto.conf")
    _show(credential, "Microfleet's login set (MICROFLEET_MQTT_PASSWORD)")


@mqtt_app.command("issue")
def issue(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """Give a registered vehicle a broker login, or a new password (the old one stops at once)."""
    credential = _access(database_url).issue(vehicle_id)
    _show(credential, f"vehicle [bold]{vehicle_id}[/bold] may publish its telemetry")


@mqtt_app.command("revoke")
def revoke(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """End a vehicle's broker login."""
    told = _access(database_url).revoke(vehicle_id)
    console.print(
        f"vehicle [bold]{vehicle_id}[/bold]'s MQTT login revoked"
        + ("" if told else " (at the broker's next start)")
    )


@mqtt_app.command("list")
def list_logins(database_url: DatabaseOption = None) -> None:
    """The vehicles that have a broker login."""
    for vehicle_id in _access(database_url).vehicles_with_login():
        console.print(vehicle_id)


@mqtt_app.command("bridge")
def bridge(database_url: DatabaseOption = None) -> None:
    """Ingest cars' telemetry and relay remote commands until interrupted (reconnecting when lost)."""
    from microfleet.bootstrap import build_mqtt_bridge
    from microfleet.ingest.mqtt_commands import MqttCommandDispatcher

    services = services_for(database_url)
    adapter, connection = build_mqtt_bridge(services)
    dispatcher = MqttCommandDispatcher(services.commands, adapter.topics, services.clock)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(
        f"ingesting from {connection.host}:{connection.port} under [bold]{adapter.topics.prefix}/v1/[/bold]"
        ", relaying remote commands to online cars"
    )
    if services.settings.nats_url:
        console.print(
            f"scale-out: each car's batch goes to JetStream at {services.settings.nats_url} (stream "
            f"{services.settings.nats_stream}); `microfleet ingest-worker` stores it (docs/scale-out.md)"
        )

    async def run_both(connection: MqttConnection, stop: asyncio.Event) -> None:
        await asyncio.gather(adapter.run(connection, stop), dispatcher.run(connection, stop))

    asyncio.run(run_until_signalled(run_both, connection))
    console.print(f"stopped: {adapter.counters}; commands: {dict(dispatcher.counts)}")


async def run_until_signalled(
    run: Callable[[MqttConnection, asyncio.Event], Awaitable[None]], connection: MqttConnection
) -> None:
    """Run a bridge until SIGINT or SIGTERM, then let it finish the message in hand and stop.

    ``run`` is a bridge's ``run`` (the protocol-v1 adapter's here, the OVMS bridge's in cli/ovms.py).
    """
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run(connection, stop)
