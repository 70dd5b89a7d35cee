"""Keeps derived history in step with telemetry, off the request path.

The store marks a car stale, from its earliest new record, in the same transaction that stores the
records; a deriver claims stale cars every few seconds and derives them. So a car sending a batch every
5 s costs one derivation per interval, a device never waits for its drives to be recomputed, and a crash
between storing and deriving loses nothing: the mark is still there for the next round. The deriver runs
in the server (``microfleet serve``) or on its own (``microfleet derive``).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from microfleet.ingest.derive import HistoryDeriver, RecomputeReport

log = logging.getLogger(__name__)

CLAIM_BATCH_VEHICLES = 200  # cars derived per round at most: bounds how long one round holds on


class StaleHistory(Protocol):
    """The store's list of cars whose derived history is behind their telemetry."""

    def claim_stale(self, limit: int) -> dict[str, int]:
        """Take up to ``limit`` stale cars off the list, with the time to derive each from."""
        ...

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        """Put a car back on the list (its derivation failed and must be retried)."""
        ...

    def stale_count(self) -> int:
        """How many cars are on the list."""
        ...


class DerivationQueue:
    """Derives the cars the store lists as stale, now or every ``interval_s`` in a background thread."""

    def __init__(
        self,
        deriver: HistoryDeriver,
        stale: StaleHistory,
        *,
        interval_s: float,
    ) -> None:
        self._deriver = deriver
        self._stale = stale
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        """How many cars wait for derivation."""
        return self._stale.stale_count()

    def run_pending(self) -> list[RecomputeReport]:
        """Derive every stale car now; a car whose derivation fails is logged and listed again."""
        done: list[RecomputeReport] = []
        while work := self._stale.claim_stale(CLAIM_BATCH_VEHICLES):
            for vehicle_id, from_ms in sorted(work.items()):
                try:
                    report = self._deriver.records_landed(vehicle_id, [from_ms])
                except Exception:  # one car's bad history must not stop the others
                    log.exception("deriving the history of vehicle %s failed; it stays stale", vehicle_id)
                    self._stale.mark_stale(vehicle_id, from_ms)
                    return done
                if report is not None:
                    done.append(report)
            if self._stopping.is_set():
                break
        return done

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
