"""Keeps derived history in step with telemetry off the request path.

Each accepted batch marks its vehicle stale from its earliest new record; a background thread derives
stale vehicles every few seconds, so a car sending a batch every 5 s costs one derivation per interval,
not one per batch, and a device never waits for its drives to be recomputed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from microfleet.ingest.derive import HistoryDeriver, RecomputeReport
from microfleet.ingest.pipeline import IngestReport

log = logging.getLogger(__name__)


class DerivationQueue:
    """Vehicles whose derived history is stale, each with the earliest record that made it so."""

    def __init__(
        self,
        deriver: HistoryDeriver,
        *,
        interval_s: float,
        write_lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> None:
        self._deriver = deriver
        self._interval_s = interval_s
        self._write_lock = write_lock
        self._stale: dict[str, int] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, report: IngestReport) -> None:
        """Mark the vehicles that got new records in ``report`` as stale."""
        with self._guard:
            for item in report.results:
                if item.status == "accepted" and item.vehicle_id is not None and item.ts_ms is not None:
                    known = self._stale.get(item.vehicle_id)
                    if known is None or item.ts_ms < known:
                        self._stale[item.vehicle_id] = item.ts_ms

    def pending(self) -> int:
        """How many vehicles wait for derivation."""
        with self._guard:
            return len(self._stale)

    def run_pending(self) -> list[RecomputeReport]:
        """Derive every stale vehicle now; a vehicle that fails stays stale and is logged."""
        with self._guard:
            work, self._stale = self._stale, {}
        done: list[RecomputeReport] = []
        for vehicle_id, from_ms in sorted(work.items()):
            try:
                with self._write_lock():
                    report = self._deriver.records_landed(vehicle_id, [from_ms])
            except Exception:  # one car's bad history must not stop the others; it is retried next round
                log.exception("deriving the history of vehicle %s failed; retrying next round", vehicle_id)
                with self._guard:
                    self._stale[vehicle_id] = min(from_ms, self._stale.get(vehicle_id, from_ms))
                continue
            if report is not None:
                done.append(report)
        return done

    def start(self) -> None:
        """Derive in a background thread every ``interval_s`` until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="microfleet-derive", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the round in progress, derive what is still stale, and stop the thread."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join()
        self._thread = None
        self.run_pending()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval_s)
            self._wake.clear()
            self.run_pending()
