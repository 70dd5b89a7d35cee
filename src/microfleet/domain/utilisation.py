"""Utilisation and availability by hour: the share of a fleet's car-time in each state, bucket by bucket.

Built from the derived history's state spans (docs/history.md): ``driving`` is in use; ``parked``,
``asleep`` and ``charging`` are available to book (standing, reachable); ``offline`` is neither. Time no
span covers (before a car's first record) is ``unknown``. An open span (the car's state as of its last
record) lasts until its last record plus the derivation's offline gap, then the car counts as offline:
the derivation itself marks a car offline after that long without a record, once its next record comes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from microfleet.domain.vehicle_state import StateThresholds
from microfleet.errors import InvalidInputError

STATUSES: Final = ("driving", "charging", "parked", "asleep", "offline", "unknown")
# The derivation's own offline gap (Traccar report.trip.minimalNoDataDuration, domain/vehicle_state.py).
OFFLINE_GAP_MS: Final = round(StateThresholds().offline_gap_s * 1000)
AVAILABLE: Final = ("parked", "asleep", "charging")


@dataclass(frozen=True, slots=True)
class UtilisationBucket:
    """One bucket: its start, the cars counted, and the share of their time in each state (0..1)."""

    start_ms: int
    vehicle_count: int
    shares: Mapping[str, float]

    @property
    def in_use_share(self) -> float:
        """Share of car-time driving."""
        return self.shares["driving"]

    @property
    def available_share(self) -> float:
        """Share of car-time parked, asleep or charging: standing where a booking could take the car."""
        return sum(self.shares[s] for s in AVAILABLE)


def _add(seconds: list[dict[str, float]], status: str, a: int, b: int, t0: int, step: int) -> None:
    """Add the span ``[a, b)`` of ``status`` to the buckets it overlaps (buckets of ``step`` ms from t0)."""
    n = len(seconds)
    a, b = max(a, t0), min(b, t0 + n * step)
    i = (a - t0) // step
    while a < b and i < n:
        end = min(b, t0 + (i + 1) * step)
        seconds[i][status] += (end - a) / 1000
        a, i = end, i + 1


def utilisation_by_bucket(
    spans_by_vehicle: Mapping[str, Iterable[Mapping[str, Any]]],
    from_ms: int,
    to_ms: int,
    bucket_ms: int,
    now_ms: int,
) -> list[UtilisationBucket]:
    """Shares of car-time per state in each bucket of ``[from_ms, to_ms)`` over these vehicles.

    ``spans_by_vehicle`` maps every vehicle counted (even one with no span) to its state spans (``status``,
    ``start_ts_ms``, ``end_ts_ms``, ``is_open``) overlapping the window. A bucket reaching past ``now_ms``
    counts only its past; a bucket wholly in the future is left out.
    """
    if bucket_ms <= 0 or to_ms <= from_ms:
        raise InvalidInputError("a positive bucket and a non-empty window are needed")
    end_ms = min(to_ms, now_ms)
    n = max(0, -(-(end_ms - from_ms) // bucket_ms))
    seconds = [dict.fromkeys(STATUSES, 0.0) for _ in range(n)]
    for spans in spans_by_vehicle.values():
        covered: list[tuple[int, int]] = []
        for s in spans:
            start, end, status = int(s["start_ts_ms"]), int(s["end_ts_ms"]), str(s["status"])
            if status not in STATUSES:
                continue
            if s["is_open"]:
                grace = min(end + OFFLINE_GAP_MS, end_ms)
                _add(seconds, status, start, grace, from_ms, bucket_ms)
                _add(seconds, "offline", grace, end_ms, from_ms, bucket_ms)
                covered.append((start, end_ms))
            else:
                _add(seconds, status, start, min(end, end_ms), from_ms, bucket_ms)
                covered.append((start, end))
        # what no span covers: unknown (before the first record, or a hole between spans)
        cursor = from_ms
        for start, end in sorted(covered):
            if start > cursor:
                _add(seconds, "unknown", cursor, min(start, end_ms), from_ms, bucket_ms)
            cursor = max(cursor, end)
        if cursor < end_ms:
            _add(seconds, "unknown", cursor, end_ms, from_ms, bucket_ms)
    out = []
    cars = len(spans_by_vehicle)
    for i, secs in enumerate(seconds):
        start = from_ms + i * bucket_ms
        length_s = (min(start + bucket_ms, end_ms) - start) / 1000
        total = length_s * cars
        shares = {k: (v / total if total > 0 else 0.0) for k, v in secs.items()}
        out.append(UtilisationBucket(start, cars, shares))
    return out
