"""The composition root: builds Microfleet's services from settings. Nothing is built at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from microfleet.ingest.codec import DecodeLimits
from microfleet.ingest.pipeline import IngestPipeline
from microfleet.settings import Settings
from microfleet.store.accounts import AccountStore
from microfleet.store.engine import make_engine
from microfleet.store.migrate import upgrade
from microfleet.store.quarantine_store import QuarantineStore
from microfleet.store.telemetry_store import TelemetryStore


def wall_clock_ms() -> int:
    """Now, as UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a Microfleet process uses, built once from settings."""

    settings: Settings
    engine: Engine
    clock: Callable[[], int]
    accounts: AccountStore
    telemetry: TelemetryStore
    quarantine: QuarantineStore
    pipeline: IngestPipeline

    @property
    def admin(self) -> AccountStore:
        """The account administration used by ``microfleet admin`` and the demo."""
        return self.accounts

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def build_services(
    settings: Settings, *, migrate: bool = True, clock: Callable[[], int] = wall_clock_ms
) -> Services:
    """Open the store (migrating it to the latest schema unless told not to) and wire the services."""
    engine = make_engine(settings.database_url, settings.database_schema)
    if migrate:
        upgrade(engine, settings.database_schema)
    telemetry = TelemetryStore(engine)
    limits = DecodeLimits(settings.ingest_max_batch_records, settings.ingest_max_record_bytes)
    return Services(
        settings=settings,
        engine=engine,
        clock=clock,
        accounts=AccountStore(engine, clock),
        telemetry=telemetry,
        quarantine=QuarantineStore(engine),
        pipeline=IngestPipeline(telemetry, limits),
    )
