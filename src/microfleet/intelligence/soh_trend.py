"""A car's state of health over time: the estimate as it stood at the end of each week, and each measurement.

:func:`soh_history` replays :func:`microfleet.intelligence.soh.estimate_soh` on the sessions a car had
by the end of each week that brought a new one, so a week's point (with its 90 % band) is what
Microfleet would have said then, never refitted with later data. :func:`measured_points` lists the
sessions themselves (one noisy capacity each) for a chart's scatter. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from microfleet.intelligence.soh import MIN_SESSIONS, CapacitySample, estimate_soh

WEEK_MS: Final = 7 * 86_400_000
# At most two years of weekly points: a chart wider than that says nothing more, and a refit of a car
# with years of sessions replays at most this many fits (each a small Huber regression).
MAX_POINTS: Final = 104
MAX_MEASURED: Final = 500  # the newest sessions shown as measurements


@dataclass(frozen=True, slots=True)
class SohPoint:
    """The SoH estimate as it stood at ``ts_ms`` (the last session it used), with its 90 % band."""

    ts_ms: int
    soh_pct: float
    band_low_pct: float
    band_high_pct: float
    capacity_kwh: float
    sessions_used: int
    # what the fit was given: the sessions up to ts_ms and the sum of their capacities; a later refit reuses
    # the point only while both are unchanged (a rederived session changes the sum of every later week)
    samples: int
    samples_sum_kwh: float


@dataclass(frozen=True, slots=True)
class MeasuredPoint:
    """One gated session's own capacity, and as a share of new (noisy: the trend weighs it by ΔSoC²)."""

    ts_ms: int
    capacity_kwh: float
    soh_pct: float | None  # None: the model's capacity when new is unknown
    delta_soc_pct: float
    anchored: bool


def soh_history(
    samples: Sequence[CapacitySample],
    new_capacity_kwh: float,
    previous: Sequence[Mapping[str, Any]] = (),
) -> list[SohPoint]:
    """The estimate at the last session of each week (UTC weeks from the epoch) once enough sessions exist.

    A week without a new session adds no point (the estimate did not change). Only the newest
    :data:`MAX_POINTS` weeks are replayed. ``previous`` is the last refit's points (as stored): a week whose
    inputs are unchanged keeps its point instead of being fitted again, so a refit fits only new weeks.
    """
    if new_capacity_kwh <= 0 or not samples:
        return []
    ordered = sorted(samples, key=lambda s: s.ts_ms)
    sums = np.cumsum([s.capacity_kwh for s in ordered])
    ends: dict[int, int] = {}  # week number -> index of its last session
    for i, s in enumerate(ordered):
        ends[s.ts_ms // WEEK_MS] = i
    known = {int(p["ts_ms"]): p for p in previous}
    out = []
    for week in sorted(ends)[-MAX_POINTS:]:
        last = ends[week]
        if last + 1 < MIN_SESSIONS:  # too few sessions for any estimate yet
            continue
        kept = _reusable(known.get(ordered[last].ts_ms), last + 1, float(sums[last]), new_capacity_kwh)
        if kept is not None:
            out.append(kept)
            continue
        est = estimate_soh(ordered[: last + 1], new_capacity_kwh, ordered[last].ts_ms)
        if est.soh_pct is None or est.band_low_pct is None or est.band_high_pct is None:
            continue
        out.append(
            SohPoint(
                ordered[last].ts_ms,
                est.soh_pct,
                est.band_low_pct,
                est.band_high_pct,
                est.capacity_kwh or 0.0,
                est.sessions_used,
                last + 1,
                float(sums[last]),
            )
        )
    return out


def _reusable(point: Mapping[str, Any] | None, samples: int, total: float, new_kwh: float) -> SohPoint | None:
    """A stored point fitted on these very inputs (same sessions, same capacity when new), else None."""
    if point is None or point.get("samples") != samples or point.get("samples_sum_kwh") is None:
        return None
    if abs(float(point["samples_sum_kwh"]) - total) > 1e-9 * max(1.0, abs(total)):
        return None
    if abs(float(point["capacity_kwh"]) - float(point["soh_pct"]) / 100.0 * new_kwh) > 1e-6:
        return None
    try:
        return SohPoint(**{f: point[f] for f in SohPoint.__dataclass_fields__})
    except (KeyError, TypeError):
        return None


def measured_points(samples: Sequence[CapacitySample], new_capacity_kwh: float | None) -> list[MeasuredPoint]:
    """Each session's measured capacity (and % of new), oldest first (the newest :data:`MAX_MEASURED`)."""
    ordered = sorted(samples, key=lambda s: s.ts_ms)[-MAX_MEASURED:]
    new = new_capacity_kwh if new_capacity_kwh and new_capacity_kwh > 0 else None
    return [
        MeasuredPoint(
            s.ts_ms,
            s.capacity_kwh,
            None if new is None else s.capacity_kwh / new * 100.0,
            s.delta_soc_pct,
            s.anchored,
        )
        for s in ordered
    ]
