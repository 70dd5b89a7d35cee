"""``microfleet mqtt ovms-bridge``: ingest OVMS v3 modules' metrics from the broker (docs/protocols.md)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for
from microfleet.cli.mqtt import mqtt_app, run_until_signalled
from microfleet.errors import ConfigurationError


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
    asyncio.run(run_until_signalled(bridge.run, connection))
    console.print(f"stopped: {dict(bridge.counts)}")
