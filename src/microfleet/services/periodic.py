"""A task run every ``interval_s`` in a background thread, beside the deriver (battery refits, maintenance).

One pass failing (a store outage) is logged and the next pass retries; ``stop`` waits for the pass running.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicWorker:
    """Call ``task`` every ``interval_s`` seconds in a daemon thread named ``name``."""

    def __init__(self, name: str, task: Callable[[], object], *, interval_s: float) -> None:
        self._name = name
        self._task = task
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._task()
            except Exception:  # the worker outlives a failed pass (a store outage): the next pass retries
                log.exception("%s pass failed", self._name)
