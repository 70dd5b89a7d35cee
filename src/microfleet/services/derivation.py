"""History derivation as a use case: keeping derived history in step with telemetry, off the request path.

:class:`HistoryDeriver` re-derives one car: when records land (late, twice or out of order), it finds the
last resume point at or before the earliest new record and re-derives from there (the pure work is
:func:`microfleet.domain.derivation.derive_history`) up to the first stored resume point where the
re-derived history meets the stored one again (same machine state, same calibrating charges, and every
stored record accounted for), or to the newest record when it never does. Replacing every derived row of
that window in one transaction makes a recompute idempotent: running it again changes nothing, and no
record is ever counted in two drives or charges.

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
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np

from microfleet.domain.charges import ChargeSession
from microfleet.domain.derivation import (
    CONTEXT_CHANGED_MS,
    DEFAULT_OPTIONS,
    DerivationOptions,
    DerivedHistory,
    ResumePoint,
    VehicleContext,
    cut_history,
    derive_history,
)
from microfleet.domain.vehicle_state import DEFAULT_THRESHOLDS, StateThresholds, TelemetryColumns
from microfleet.services.ingest import IngestReport

log = logging.getLogger(__name__)

CLAIM_BATCH_VEHICLES = 200  # cars derived per round at most: bounds how long one round holds on
RETRY_FIRST_S = 5.0  # a car whose derivation failed waits this long, then twice as long after each failure
RETRY_MAX_S = 3600.0  # ... but never more than an hour between tries
# After a round that took T s, the queue waits at least PACE x T s before the next: under load (a round
# longer than the interval) derivation holds at most half the time of the process it runs in, and ingest
# the rest; a record is then in the derived history within about three rounds' time (docs/derivation.md).
PACE = 1.0
# Records after a resume point that may still change what is derived before it: a data gap (1 h) is only
# known at the record after it, a stillness ends a drive after 5 min, charge flows 10 min apart merge.
LOOKAHEAD_MS = 2 * 3_600_000
WINDOW_END_TRIES = 4  # stored resume points after the new records tried as a window's end
WINDOW_POINTS_MAX = 64  # stored resume points read to find them (more between: derive to the newest record)


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


@runtime_checkable
class WindowedHistoryPort(HistoryPort, Protocol):
    """What re-deriving a bounded window needs besides :class:`HistoryPort` (the SQL store has it all).

    A store without these methods still works: every recompute then runs to the newest record.
    """

    def load_window(self, vehicle_id: str, from_ms: int | None, to_ms: int | None = None) -> TelemetryColumns:
        """The vehicle's records in ``[from_ms, to_ms)`` (None: unbounded), sorted."""
        ...

    def replace_history(
        self, vehicle_id: str, from_ms: int | None, history: DerivedHistory, to_ms: int | None = None
    ) -> None:
        """Atomically replace the derived rows starting in ``[from_ms, to_ms)`` by these."""
        ...

    def resume_points(self, vehicle_id: str, from_ms: int | None, limit: int) -> list[ResumePoint]:
        """Stored resume points at or after ``from_ms`` (None: all), oldest first, with their counts."""
        ...

    def derived_records(self, vehicle_id: str) -> int | None:
        """The stored resume points' record counts summed (None when one has no count)."""
        ...

    def record_total(self, vehicle_id: str) -> int:
        """How many records of the vehicle are stored."""
        ...

    def record_count(self, vehicle_id: str, from_ms: int) -> int:
        """How many records of the vehicle are stored at or after ``from_ms``."""
        ...

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """Stored charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def segment_records(self, vehicle_id: str, starts: Sequence[int]) -> list[int]:
        """Records stored from each of ``starts`` (ascending) to the next one; from the last, to the end."""
        ...

    def rewrite_resume_points(self, vehicle_id: str, points: Sequence[ResumePoint]) -> None:
        """Store these resume points over the stored ones at the same times."""
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
    to_ms: int | None = None  # the window's end (exclusive); None: the newest record


class HistoryDeriver:
    """Keeps derived history in step with telemetry, recomputing the window new records touch."""

    def __init__(
        self,
        store: HistoryPort,
        th: StateThresholds = DEFAULT_THRESHOLDS,
        options: DerivationOptions = DEFAULT_OPTIONS,
    ) -> None:
        self._store = store
        self._th = th
        self._options = options

    def records_landed(self, vehicle_id: str, ts_ms: Sequence[int]) -> RecomputeReport | None:
        """Recompute after new records of one vehicle were stored (call with the new records' times)."""
        if not ts_ms:
            return None
        if min(ts_ms) <= CONTEXT_CHANGED_MS:
            return self.rederive(vehicle_id)
        point = self._store.resume_point(vehicle_id, min(ts_ms))
        if isinstance(self._store, WindowedHistoryPort):
            if point is not None and _raw_dropped_after(self._store, vehicle_id, point):
                # A record for a stretch whose raw records were dropped: stored, but that stretch's derived
                # history stays as it was; the records after it are derived as usual.
                _, kept = self._keep_dropped(self._store, vehicle_id)
                if kept is None:
                    return RecomputeReport(vehicle_id, point.from_ms, 0, 0, 0, 0, point.from_ms)
                return self.records_landed(vehicle_id, [kept.from_ms, max(kept.from_ms, *ts_ms)])
            report = self._derive_window(self._store, vehicle_id, point, max(ts_ms))
            if report is not None:
                return report
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
        """Derive a vehicle's whole history again from its first record.

        Where raw records of its history were dropped (retention), it derives from the first resume point
        after them and keeps the rows derived before: they cannot be derived again, and are not lost.
        """
        if isinstance(self._store, WindowedHistoryPort):
            dropped, kept = self._keep_dropped(self._store, vehicle_id)
            if dropped and kept is None:  # no resume point in the kept telemetry: nothing to derive again
                return RecomputeReport(vehicle_id, None, 0, 0, 0, 0, None)
            if dropped:
                return self._derive(vehicle_id, kept)
        return self._derive(vehicle_id, None)

    @staticmethod
    def _keep_dropped(store: WindowedHistoryPort, vehicle_id: str) -> tuple[bool, ResumePoint | None]:
        """Mark the stretches whose raw records were dropped and those before; any? the first point after.

        A marked resume point (``raw_dropped``) is never derived from again, and its count becomes the
        records stored in its stretch, so the stored history accounts for every stored record again.
        """
        points = store.resume_points(vehicle_id, None, 2**31)
        stored = store.segment_records(vehicle_id, [p.from_ms for p in points])
        short = [
            k
            for k, (p, n) in enumerate(zip(points, stored, strict=True))
            if p.raw_dropped or (p.records is not None and n < p.records)
        ]
        if not short:
            return False, None
        last = short[-1]
        marked = [
            replace(p, records=n, raw_dropped=True)
            for p, n in zip(points[: last + 1], stored, strict=False)
            if not p.raw_dropped or p.records != n
        ]
        store.rewrite_resume_points(vehicle_id, marked)
        return True, points[last + 1] if last + 1 < len(points) else None

    def _derive_window(
        self, store: WindowedHistoryPort, vehicle_id: str, point: ResumePoint | None, last_new_ms: int
    ) -> RecomputeReport | None:
        """Re-derive from ``point`` up to where the new history meets the stored one (None: it never does).

        The window ends at the first stored resume point R after ``last_new_ms`` where they meet (None
        sends the caller to derive up to the newest record). It is derived :data:`LOOKAHEAD_MS` past each
        candidate R, so what lies before R is settled as a derivation from scratch settles it; only rows
        starting before R are kept. The stored rows from R on stay when (1) the re-derived machine reaches
        R as a resume point in the stored state, so the same records after R derive the same rows; (2) the
        calibrating charges before R are unchanged (drives after R take energy per SoC % from them); (3)
        every stored record is accounted for: the records the stored history was derived from, plus those
        new in the window, are all the records stored. New records after R (a queue only knows the
        earliest) fail (3), unless they all lie after the last resume point: that tail is derived from
        there as well.
        """
        from_ms = point.from_ms if point else None
        derived_total = store.derived_records(vehicle_id)
        if derived_total is None:
            return None
        stored = store.resume_points(vehicle_id, from_ms, WINDOW_POINTS_MAX)
        ends = [p for p in stored if p.from_ms > last_new_ms][:WINDOW_END_TRIES]
        if not ends:
            return None
        for tried in sorted({1, len(ends)}):  # the nearest end first, then a few more at once
            report = self._try_window(store, vehicle_id, point, stored, ends[:tried], derived_total)
            if report is not None:
                return report
        return None

    def _try_window(
        self,
        store: WindowedHistoryPort,
        vehicle_id: str,
        point: ResumePoint | None,
        stored: list[ResumePoint],
        ends: list[ResumePoint],
        derived_total: int,
    ) -> RecomputeReport | None:
        from_ms = point.from_ms if point else None
        cols = store.load_window(vehicle_id, from_ms, ends[-1].from_ms + LOOKAHEAD_MS)
        history = derive_history(
            cols,
            point.state if point else None,
            store.vehicle_context(vehicle_id, from_ms),
            self._th,
            self._options,
            point.gps_ref if point else None,
        )
        total = store.record_total(vehicle_id)  # after loading: a record landing meanwhile cannot pass (3)
        reached = {s.start_ts_ms: s.resume for s in history.spans if s.resume is not None}
        stored_charges = store.charges(vehicle_id, from_ms or 0, ends[-1].from_ms, 2**31)
        for end in ends:
            mine = reached.get(end.from_ms)
            if mine is None or mine.state != end.state or mine.gps_ref != end.gps_ref:
                continue
            if _calibrations(history.charges, end.from_ms) != _calibrations(stored_charges, end.from_ms):
                continue
            in_window = int(np.searchsorted(cols.ts_ms, end.from_ms))
            stored_in_window = sum(p.records or 0 for p in stored if p.from_ms < end.from_ms)
            new_elsewhere = (total - derived_total) - (in_window - stored_in_window)
            tail: ResumePoint | None = None
            if new_elsewhere != 0:
                tail = store.resume_point(vehicle_id, 2**62)  # the last one
                if (
                    tail is None
                    or tail.records is None
                    or tail.from_ms < end.from_ms
                    or store.record_count(vehicle_id, tail.from_ms) - tail.records != new_elsewhere
                ):
                    continue  # new records between this end and the last resume point: try a later end
            kept = cut_history(history, end.from_ms)
            store.replace_history(vehicle_id, from_ms, kept, end.from_ms)
            records = len(cols)
            if tail is not None:
                records += self._derive(vehicle_id, tail).records
            return RecomputeReport(
                vehicle_id,
                from_ms,
                records,
                len(kept.drives),
                len(kept.charges),
                len(kept.excluded),
                end.from_ms if tail is None else None,
            )
        return None

    def _derive(self, vehicle_id: str, point: ResumePoint | None) -> RecomputeReport:
        from_ms = point.from_ms if point else None
        cols = self._store.load_window(vehicle_id, from_ms)
        history = derive_history(
            cols,
            point.state if point else None,
            self._store.vehicle_context(vehicle_id, from_ms),
            self._th,
            self._options,
            point.gps_ref if point else None,
        )
        self._store.replace_history(vehicle_id, from_ms, history)
        return RecomputeReport(
            vehicle_id, from_ms, len(cols), len(history.drives), len(history.charges), len(history.excluded)
        )


def _raw_dropped_after(store: WindowedHistoryPort, vehicle_id: str, point: ResumePoint) -> bool:
    """Whether raw records of the stretch from ``point`` to the next resume point were dropped.

    Records are only ever added, except when retention drops old months: a stretch holding fewer stored
    records than it was derived from lost some. A marked point (``raw_dropped``) says so itself.
    """
    if point.raw_dropped:
        return True
    if point.records is None:
        return False
    after = store.resume_points(vehicle_id, point.from_ms + 1, 1)
    starts = [point.from_ms, *(p.from_ms for p in after)]
    return store.segment_records(vehicle_id, starts)[0] < point.records


def _calibrations(charges: Sequence[ChargeSession], before_ms: int) -> list[float]:
    """Energy per SoC % of the calibrating charges that started before ``before_ms``, in order."""
    return [c.kwh_per_soc_pct for c in charges if c.start_ts_ms < before_ms and c.kwh_per_soc_pct]


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

    def next_wait_s(self, round_s: float) -> float:
        """Seconds between a round that took ``round_s`` and the next.

        The interval, or :data:`PACE` x ``round_s`` when that is longer: a busy server derives less
        often, in larger rounds.
        """
        return max(self._interval_s, PACE * round_s)

    def _loop(self) -> None:
        wait_s = self._interval_s
        while not self._stopping.wait(wait_s):
            started = self._monotonic()
            try:
                self.run_pending()
            except Exception:  # e.g. the store is briefly unreachable: try again next round
                log.exception("a derivation round failed; retrying in %.0f s", self._interval_s)
            wait_s = self.next_wait_s(self._monotonic() - started)
