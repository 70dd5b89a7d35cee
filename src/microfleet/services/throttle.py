"""Throttling failed authentications per client: a token bucket of failures for each client address.

Only failures draw from a bucket: a request with a valid credential never touches it, so a car is never
slowed because another client behind the same address (a carrier's NAT, say) keeps sending bad tokens.
The state lives in this process's memory (docs/security.md): each server worker keeps its own.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MAX_CLIENTS = 100_000
"""Most clients remembered at once; beyond it, those whose last failure is oldest are forgotten first."""


@dataclass(frozen=True, slots=True)
class FailureLimits:
    """How many failed authentications a client may make: ``burst`` at once, then ``per_minute``."""

    burst: int
    per_minute: float


def client_key(address: str) -> str:
    """The key a client's failures are counted under: its IPv4 address, or its IPv6 /64.

    One IPv6 host commonly holds a whole /64 and can change address within it at will; counting per
    address would give it 2**64 buckets. Anything that is not an IP address (a test client) is its own key.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_s: float
    refusing: bool = False


class FailureThrottle:
    """Tell, for each failed authentication, whether its client is over its limit and for how long."""

    def __init__(
        self,
        limits: FailureLimits,
        *,
        clock_s: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._burst = float(limits.burst)
        self._per_s = limits.per_minute / 60.0
        self._clock_s = clock_s
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def failed(self, client: str) -> int | None:
        """Count one failure of ``client``; None while within its limit, else the seconds to wait."""
        key = client_key(client)
        with self._lock:
            now = self._clock_s()
            bucket = self._buckets.pop(key, None)
            self._forget(now)
            if bucket is None:
                bucket = _Bucket(self._burst, now)
            else:
                bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated_s) * self._per_s)
                bucket.updated_s = now
            self._buckets[key] = bucket
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                bucket.refusing = False
                return None
            if not bucket.refusing:
                bucket.refusing = True
                log.warning("throttling failed authentications from %s", key)
            return max(1, math.ceil((1.0 - bucket.tokens) / self._per_s))

    def waiting_s(self, client: str) -> int | None:
        """Seconds ``client`` must wait before its next failure would be counted, None if it need not.

        Counts nothing: a password is checked only when this is None, so a client over its limit learns
        nothing from a right guess either.
        """
        key = client_key(client)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return None
            tokens = min(self._burst, bucket.tokens + (self._clock_s() - bucket.updated_s) * self._per_s)
            if tokens >= 1.0:
                return None
            return max(1, math.ceil((1.0 - tokens) / self._per_s))

    def _forget(self, now: float) -> None:
        """Drop clients whose bucket has refilled (they are as new), and the oldest beyond the cap."""
        while self._buckets:
            key, oldest = next(iter(self._buckets.items()))
            refilled = oldest.tokens + (now - oldest.updated_s) * self._per_s >= self._burst
            if not refilled and len(self._buckets) < self._max_clients:
                return
            del self._buckets[key]

    def __len__(self) -> int:
        """How many clients are remembered (those with failures not yet earned back)."""
        return len(self._buckets)
