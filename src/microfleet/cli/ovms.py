"""``microfleet mqtt ovms-bridge``: OVMS v3 metrics in (docs/protocols.md), allow-listed commands out."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.cli.mqtt import mqtt_app, run_until_signalled
from microfleet.errors import ConfigurationError

if TYPE_CHECKING:
    from microfleet.ingest.mqtt import MqttConnection


@mqtt_app.command("ovms-bridge")
def ovms_bridge(
    vehicle: Annotated[
        list[str],
        typer.Option(
            "--vehicle",
            help="An OVMS module and the registered vehicle it reports for: USER/VEHICLEID=MICROFLEET_ID "
            "(repeat for each module; USER is its server.v3 user, VEHICLEID its vehicle id).",
        ),
    ],
    root: Annotated[
        str,
        typer.Option(
            help="First level of the modules' topics (OVMS's default; Microfleet's ACL covers 'ovms' only)."
        ),
    ] = "ovms",
    command_pin: Annotated[
        str | None,
        typer.Option(
            envvar="MICROFLEET_OVMS_COMMAND_PIN",
            help="The modules' vehicle PIN that OVMS's 'lock'/'unlock' take (digits); without it those two "
            "commands fail with the reason and are never sent.",
        ),
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Ingest OVMS v3 modules' metrics and relay verified, allow-listed remote commands until interrupted."""
    from microfleet.bootstrap import build_ovms_bridge
    from microfleet.ingest.ovms import parse_module_map
    from microfleet.ingest.ovms_commands import OvmsCommandRelay

    try:
        modules = parse_module_map(vehicle)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--vehicle") from None
    services = services_for(database_url)
    bridge, connection = build_ovms_bridge(services, modules, root=root)
    relay = OvmsCommandRelay(
        services.commands, services.accounts, modules, services.clock, pin=command_pin, root=root
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"ingesting OVMS modules {sorted(modules)} from {connection.host}:{connection.port}")

    async def run_both(connection: MqttConnection, stop: asyncio.Event) -> None:
        await asyncio.gather(bridge.run(connection, stop), relay.run(connection, stop))

    asyncio.run(run_until_signalled(run_both, connection))
    console.print(f"stopped: {dict(bridge.counts)}; commands: {dict(relay.counts)}")
