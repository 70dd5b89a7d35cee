"""The composition root: builds Microfleet's services from settings. Nothing is built at import time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from microfleet.domain.catalogue import CATALOGUE_RELATIVE_PATH, Catalogue, load_catalogue
from microfleet.errors import NotFoundError
from microfleet.ingest.codec import DecodeLimits
from microfleet.ingest.derive import HistoryDeriver
from microfleet.ingest.derive_queue import DerivationQueue
from microfleet.ingest.pipeline import IngestPipeline
from microfleet.settings import Settings
from microfleet.store.accounts import AccountStore
from microfleet.store.engine import make_engine
from microfleet.store.history import HistoryStore
from microfleet.store.migrate import upgrade
from microfleet.store.places_store import PlaceStore
from microfleet.store.quarantine_store import QuarantineStore
from microfleet.store.telemetry_store import TelemetryStore


def wall_clock_ms() -> int:
    """Now, as UTC epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """What became of a replayed quarantined record: accepted, duplicate or rejected again."""

    quarantine_id: int
    status: str
    reason: str | None
    detail: str | None


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
    history: HistoryStore
    places: PlaceStore
    deriver: HistoryDeriver
    derivations: DerivationQueue

    @property
    def admin(self) -> AccountStore:
        """The account administration used by ``microfleet admin`` and the demo."""
        return self.accounts

    def replay_quarantined(self, quarantine_id: int) -> ReplayOutcome:
        """Replay one quarantined record under the credential it arrived with, and mark the outcome."""
        entry = self.quarantine.get(quarantine_id)
        if entry is None:
            raise NotFoundError(f"quarantined record {quarantine_id} does not exist")
        if entry.credential_vehicle_id is None:
            return ReplayOutcome(
                quarantine_id, "rejected", "unknown_vehicle", "it arrived without a device credential"
            )
        now_ms = self.clock()
        report = self.pipeline.replay(
            entry.raw_text,
            credential_vehicle_id=entry.credential_vehicle_id,
            source=f"replay of quarantine {quarantine_id}",
            now_ms=now_ms,
        )
        if not report.results:
            outcome = ReplayOutcome(
                quarantine_id, "rejected", "malformed_json", "the quarantined text holds no record"
            )
        else:
            first = report.results[0]
            outcome = ReplayOutcome(quarantine_id, first.status, first.reason, first.detail)
        self.quarantine.mark_replayed(quarantine_id, outcome.status, now_ms)
        return outcome

    def close(self) -> None:
        """Stop the background deriver and release database connections."""
        self.derivations.stop()
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
    history = HistoryStore(
        engine, usable_kwh_of_model=_usable_kwh_lookup(settings), write_lock=telemetry.write_lock()
    )
    deriver = HistoryDeriver(history)
    return Services(
        settings=settings,
        engine=engine,
        clock=clock,
        accounts=AccountStore(engine, clock),
        telemetry=telemetry,
        quarantine=QuarantineStore(engine),
        pipeline=IngestPipeline(telemetry, limits),
        history=history,
        places=PlaceStore(engine, write_lock=telemetry.write_lock()),
        deriver=deriver,
        derivations=DerivationQueue(deriver, telemetry, interval_s=settings.history_derive_interval_s),
    )


def _usable_kwh_lookup(settings: Settings) -> Callable[[str], float | None]:
    """Usable battery energy of a catalogue model, when a source states it (read once, on first use)."""
    catalogue: list[Catalogue] = []

    def usable_kwh(model_id: str) -> float | None:
        if not catalogue:
            path = settings.data_dir_path / CATALOGUE_RELATIVE_PATH
            catalogue.append(load_catalogue(path if path.is_file() else None))
        try:
            spec = catalogue[0].get(model_id)
        except NotFoundError:
            return None
        return spec.battery_usable_kwh.value if spec.battery_usable_kwh else None

    return usable_kwh
