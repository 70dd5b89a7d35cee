"""``microfleet mqtt ovms-bridge``: ingest OVMS v3 modules' metrics from the broker (docs/protocols.md)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.cli.mqtt import mqtt_app
from microfleet.errors import ConfigurationError

if TYPE_CHECKING:
    from microfleet.ingest.mqtt import MqttConnection
    from microfleet.ingest.ovms_bridge import OvmsBridge


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
    database_url: DatabaseOption = None,
) -> None:
    """Ingest OVMS v3 modules' metrics from the broker until interrupted; never sends them commands."""
    from microfleet.bootstrap import build_ovms_bridge
    from microfleet.ingest.ovms import parse_module_map

    try:
        modules = parse_module_map(vehicle)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--vehicle") from None
    bridge, connection = build_ovms_bridge(services_for(database_url), modules, root=root)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(f"ingesting OVMS modules {sorted(modules)} from {connection.host}:{connection.port}")
    asyncio.run(_until_signalled(bridge, connection))
    console.print(f"stopped: {dict(bridge.counts)}")


async def _until_signalled(bridge: OvmsBridge, connection: MqttConnection) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await bridge.run(connection, stop)
