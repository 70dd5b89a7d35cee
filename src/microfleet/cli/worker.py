"""``microfleet ingest-worker``: stores the batches adapters published to NATS JetStream (docs/scale-out.md).

Run one on each machine that shares the ingest load; each takes a fair share of the stream's partitions and
derives the history of its partitions' cars. Needs ``MICROFLEET_NATS_URL``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Annotated

import typer

from microfleet.cli.common import DatabaseOption, console, services_for


def ingest_worker(
    database_url: DatabaseOption = None,
    worker_id: Annotated[
        str | None,
        typer.Option(help="This worker's name in the partition leases (default: host-pid-random)."),
    ] = None,
    derive_interval_s: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Derive this worker's cars every this many seconds; 0 = no derivation here "
            "(default: MICROFLEET_HISTORY_DERIVE_INTERVAL_S).",
        ),
    ] = None,
) -> None:
    """Store telemetry batches from NATS JetStream and derive their cars' history, until interrupted."""
    import signal

    from microfleet.bootstrap import build_ingest_worker, settle_heap

    services = services_for(database_url)
    interval_s = (
        services.settings.history_derive_interval_s if derive_interval_s is None else derive_interval_s
    )
    name = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    worker = build_ingest_worker(services, worker_id=name, derive_interval_s=interval_s)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    console.print(
        f"ingest worker [bold]{name}[/bold]: stream {worker.config.stream} "
        f"({worker.config.partitions} partitions) at {', '.join(worker.config.servers)}"
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        settle_heap()
        await worker.run(stop)

    asyncio.run(run())
    console.print(f"stopped: {worker.counters}")
