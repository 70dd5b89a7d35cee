"""``microfleet mqtt``: the broker's users and ACL for cars, and the bridge that ingests their telemetry.

The bridge is its own command, not part of ``serve``: it holds one persistent broker session (one client
id), which ``serve --workers N`` would open N times, and it can be restarted without the API. It writes
through the same store, and ``serve`` derives the history of what it stored (the stale list is in the store).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, VehicleArg, console, services_for, settings_for
from microfleet.errors import ConfigurationError

if TYPE_CHECKING:
    from microfleet.bootstrap import Services
    from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter
    from microfleet.services.mqtt_access import MqttAccessService, MqttCredential
    from microfleet.settings import Settings

mqtt_app = typer.Typer(
    help="MQTT: cars' broker logins (password and ACL files) and the ingest bridge.", no_args_is_help=True
)


def mqtt_access(services: Services) -> MqttAccessService:
    """Cars' broker logins over the broker's files in ``MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH``."""
    from microfleet.ingest.mosquitto_config import MosquittoFiles
    from microfleet.services.mqtt_access import MqttAccessService

    settings = services.settings
    if settings.mqtt_broker_config_dir_path is None:
        raise ConfigurationError(
            "set MICROFLEET_MQTT_BROKER_CONFIG_DIR_PATH to the folder of the broker's password and ACL files"
        )
    files = MosquittoFiles(
        settings.mqtt_broker_config_dir_path,
        topic_prefix=settings.mqtt_topic_prefix,
        ingest_username=settings.mqtt_username,
        pid_path=settings.mqtt_broker_pid_path,
    )
    return MqttAccessService(services.accounts, files, ingest_username=settings.mqtt_username)


def mqtt_connection(settings: Settings) -> MqttConnection:
    """How the bridge reaches the broker, from the settings."""
    import ssl

    from microfleet.ingest.mqtt import MqttConnection

    if settings.mqtt_host is None:
        raise ConfigurationError("set MICROFLEET_MQTT_HOST to the broker's address")
    tls = None
    if settings.mqtt_tls:
        tls = ssl.create_default_context(
            cafile=str(settings.mqtt_tls_ca_path) if settings.mqtt_tls_ca_path else None
        )
    return MqttConnection(
        settings.mqtt_host,
        settings.mqtt_port,
        settings.mqtt_username,
        settings.mqtt_password,
        settings.mqtt_client_id,
        tls_context=tls,
        reconnect_max_s=settings.mqtt_reconnect_max_s,
    )


def mqtt_adapter(services: Services) -> MqttTelemetryAdapter:
    """The MQTT adapter over the services' ingest, with the settings' topic prefix and limits."""
    from microfleet.ingest.mosquitto_config import check_topic_prefix
    from microfleet.ingest.mqtt import MqttTelemetryAdapter, MqttTopics

    settings = services.settings
    return MqttTelemetryAdapter(
        services.ingest,
        services.accounts,
        MqttTopics(check_topic_prefix(settings.mqtt_topic_prefix)),
        services.clock,
        max_payload_bytes=settings.ingest_max_body_bytes,
    )


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
    database_url: DatabaseOption = None,
) -> None:
    """Write the ACL and a listener config for the broker, and print a new password for Microfleet's user."""
    from microfleet.ingest.mosquitto_config import CONF_FILE_NAME, render_listener_conf

    services = services_for(database_url)
    credential = mqtt_access(services).set_ingest_login()
    folder = services.settings.mqtt_broker_config_dir_path
    assert folder is not None  # mqtt_access refused otherwise
    conf = folder / CONF_FILE_NAME
    conf.write_text(
        render_listener_conf(folder, port=port, bind_address=bind_address, persistence_dir=folder)
    )
    console.print(f"broker config written: include [bold]{conf}[/bold] in mosquitto.conf")
    _show(credential, "Microfleet's login set (MICROFLEET_MQTT_PASSWORD)")


@mqtt_app.command("issue")
def issue(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """Give a registered vehicle a broker login, or a new password (the old one stops at once)."""
    credential = mqtt_access(services_for(database_url)).issue(vehicle_id)
    _show(credential, f"vehicle [bold]{vehicle_id}[/bold] may publish its telemetry")


@mqtt_app.command("revoke")
def revoke(vehicle_id: VehicleArg, database_url: DatabaseOption = None) -> None:
    """End a vehicle's broker login."""
    told = mqtt_access(services_for(database_url)).revoke(vehicle_id)
    console.print(
        f"vehicle [bold]{vehicle_id}[/bold]'s MQTT login revoked"
        + ("" if told else " (at the broker's next start)")
    )


@mqtt_app.command("list")
def list_logins(database_url: DatabaseOption = None) -> None:
    """The vehicles that have a broker login."""
    for vehicle_id in mqtt_access(services_for(database_url)).vehicles_with_login():
        console.print(vehicle_id)


@mqtt_app.command("bridge")
def bridge(database_url: DatabaseOption = None) -> None:
    """Ingest cars' telemetry from the broker until interrupted (reconnecting whenever it is lost)."""
    settings = settings_for(database_url)
    connection = mqtt_connection(settings)
    adapter = mqtt_adapter(services_for(database_url))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(
        f"ingesting from {connection.host}:{connection.port} under [bold]{adapter.topics.prefix}/v1/[/bold]"
    )
    try:
        asyncio.run(adapter.run(connection))
    except KeyboardInterrupt:
        pass
    finally:
        console.print(f"stopped: {adapter.counters}")
