"""The background expiry of remote commands: ``expire_due`` every interval, in a thread of the server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class ExpiryLoop:
    """Calls ``expire(now_ms)`` every ``interval_s`` in a daemon thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, expire: Callable[[int], int], clock: Callable[[], int]) -> None:
        self._expire = expire
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval_s: float) -> None:
        """Start the thread (a second start does nothing)."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="microfleet-command-expiry", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a round in progress finishes first."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None

    def _loop(self, interval_s: float) -> None:
        while not self._stopping.wait(interval_s):
            try:
                self._expire(self._clock())
            except Exception:  # e.g. the store is briefly unreachable: try again next round
                log.exception("expiring commands failed; retrying in %.1f s", interval_s)
