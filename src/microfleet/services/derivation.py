"""History derivation as a use case: keeping derived history in step with telemetry, off the request path.

:class:`HistoryDeriver` re-derives one car: when records land (late, twice or out of order), it finds the
last resume point at or before the earliest new record and re-derives from there (the pure work is
:func:`microfleet.domain.derivation.derive_history`). Deleting and re-inserting everything from that point
makes a recompute idempotent: running it again changes nothing, and no record is ever counted in two
drives or charges.

:class:`DerivationQueue` decides when. The store marks a car stale, from its earliest new record, in the
same transaction that stores the records; the queue claims stale cars every few seconds and derives
them. So a car sending a batch every 5 s costs one derivation per interval, a device never waits for its
drives to be recomputed, and a crash between storing and deriving loses nothing: the mark is still
there for the next round. The queue runs
in the server (``microfleet serve``) or on its own (``microfleet derive``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from microfleet.domain.derivation import DerivedHistory, ResumePoint, VehicleContext, derive_history
from microfleet.domain.vehicle_state import DEFAULT_THRESHOLDS, StateThresholds, TelemetryColumns
from microfleet.services.ingest import IngestReport

log = logging.getLogger(__name__)

CLAIM_BATCH_VEHICLES = 200  # cars derived per round at most: bounds how long one round holds on
RETRY_FIRST_S = 5.0  # a car whose derivation failed waits this long, then twice as long after each failure
RETRY_MAX_S = 3600.0  # ... but never more than an hour between tries


@dataclass(frozen=True, slots=True)
class DerivationFailure:
    """A car whose derivation keeps failing: the error, how often, and when it is tried again."""

    vehicle_id: str
    error: str
    attempts: int
    retry_in_s: float


class HistoryPort(Protocol):
    """What the deriver needs from a store (implemented by ``microfleet.store.history.HistoryStore``)."""

    def load_window(self, vehicle_id: str, from_ms: int | None) -> TelemetryColumns:
        """The vehicle's records from ``from_ms`` (inclusive; None = all) to the newest, sorted."""
        ...

    def resume_point(self, vehicle_id: str, at_or_before_ms: int) -> ResumePoint | None:
        """The latest stored resume point at or before ``at_or_before_ms`` (None: start from scratch)."""
        ...

    def replace_history(self, vehicle_id: str, from_ms: int | None, history: DerivedHistory) -> None:
        """Atomically delete derived rows starting at or after ``from_ms`` (None: all) and store these."""
        ...

    def vehicle_context(self, vehicle_id: str, before_ms: int | None) -> VehicleContext:
        """Usable capacity, places, tariffs; energy per SoC % of charges started before ``before_ms``."""
        ...


@dataclass(frozen=True, slots=True)
class RecomputeReport:
    """What one recompute did: the window it re-derived and how much it found there."""

    vehicle_id: str
    from_ms: int | None
    records: int
    drives: int
    charges: int
    excluded: int


class HistoryDeriver:
    """Keeps derived history in step with telemetry, recomputing the window new records touch."""

    def __init__(self, store: HistoryPort, th: StateThresholds = DEFAULT_THRESHOLDS) -> None:
        self._store = store
        self._th = th

    def records_landed(self, vehicle_id: str, ts_ms: Sequence[int]) -> RecomputeReport | None:
        """Recompute after new records of one vehicle were stored (call with the new records' times)."""
        if not ts_ms:
            return None
        point = self._store.resume_point(vehicle_id, min(ts_ms))
        return self._derive(vehicle_id, point)

    def ingest_landed(self, report: IngestReport) -> list[RecomputeReport]:
        """Recompute every vehicle that got new records in one ingest request (call after ``ingest``)."""
        landed: dict[str, list[int]] = {}
        for item in report.results:
            if item.status == "accepted" and item.vehicle_id is not None and item.ts_ms is not None:
                landed.setdefault(item.vehicle_id, []).append(item.ts_ms)
        done = [self.records_landed(vid, ts) for vid, ts in sorted(landed.items())]
        return [r for r in done if r is not None]

    def rederive(self, vehicle_id: str) -> RecomputeReport:
        """Derive a vehicle's whole history again from its first record."""
        return self._derive(vehicle_id, None)

    def _derive(self, vehicle_id: str, point: ResumePoint | None) -> RecomputeReport:
        from_ms = point.from_ms if point else None
        cols = self._store.load_window(vehicle_id, from_ms)
        history = derive_history(
            cols, point.state if point else None, self._store.vehicle_context(vehicle_id, from_ms), self._th
        )
        self._store.replace_history(vehicle_id, from_ms, history)
        return RecomputeReport(
            vehicle_id, from_ms, len(cols), len(history.drives), len(history.charges), len(history.excluded)
        )


class StaleHistory(Protocol):
    """The store's list of cars whose derived history is behind their telemetry."""

    def claim_stale(self, limit: int, skip: Collection[str] = ()) -> dict[str, int]:
        """Take up to ``limit`` stale cars off the list (none of ``skip``), with the time to derive from."""
        ...

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        """Put a car back on the list (its derivation failed and must be retried)."""
        ...

    def stale_count(self) -> int:
        """How many cars are on the list."""
        ...


class DerivationQueue:
    """Derives the cars the store lists as stale, now or every ``interval_s`` in a background thread.

    A car whose derivation raises stays on the list and is tried again with a growing back-off
    (:data:`RETRY_FIRST_S` doubling to :data:`RETRY_MAX_S`), listed meanwhile by :meth:`failing`; the other
    cars of the round are derived as usual, so one car's bad history never stops or loses another's.
    """

    def __init__(
        self,
        deriver: HistoryDeriver,
        stale: StaleHistory,
        *,
        interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deriver = deriver
        self._stale = stale
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._failures: dict[str, tuple[str, int, float]] = {}  # vehicle -> (error, attempts, retry at)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        """How many cars wait for derivation (those waiting to be retried included)."""
        return self._stale.stale_count()

    def failing(self) -> list[DerivationFailure]:
        """The cars whose last derivation failed, with the error and when they are tried again."""
        now = self._monotonic()
        return [
            DerivationFailure(vid, error, attempts, max(0.0, retry_at - now))
            for vid, (error, attempts, retry_at) in sorted(self._failures.items())
        ]

    def run_pending(self) -> list[RecomputeReport]:
        """Derive every stale car now, except those waiting to be retried after a failure."""
        done: list[RecomputeReport] = []
        now = self._monotonic()
        waiting = {vid for vid, (_, _, retry_at) in self._failures.items() if retry_at > now}
        while work := self._stale.claim_stale(CLAIM_BATCH_VEHICLES, skip=waiting):
            for vehicle_id, from_ms in sorted(work.items()):
                try:
                    report = self._deriver.records_landed(vehicle_id, [from_ms])
                except Exception as exc:  # one car's bad history must not stop or lose the others
                    self._stale.mark_stale(vehicle_id, from_ms)
                    waiting.add(vehicle_id)
                    self._failed(vehicle_id, exc, now)
                    continue
                self._failures.pop(vehicle_id, None)
                if report is not None:
                    done.append(report)
            if self._stopping.is_set():
                break
        return done

    def _failed(self, vehicle_id: str, exc: Exception, now: float) -> None:
        _, attempts, _ = self._failures.get(vehicle_id, ("", 0, now))
        attempts += 1
        wait_s = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
        self._failures[vehicle_id] = (f"{type(exc).__name__}: {exc}", attempts, now + wait_s)
        log.exception(
            "deriving the history of vehicle %s failed (attempt %d); it stays stale, next try in %.0f s",
            vehicle_id,
            attempts,
            wait_s,
        )

    def start(self) -> None:
        """Derive in a background thread every ``interval_s`` until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="microfleet-derive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Let the round in progress finish and stop the thread (what is still stale stays listed)."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval_s):
            try:
                self.run_pending()
            except Exception:  # e.g. the store is briefly unreachable: try again next round
                log.exception("a derivation round failed; retrying in %.0f s", self._interval_s)
