"""The thresholds-only baseline: trips and charges the way a position tracker sees them (Traccar rules).

Only speed, position, time and SoC are read - no gear, ignition, current or charger signal - which is
what a phone tracker or a generic GPS box gives. Used by ``bench/history_accuracy.py`` to show what the
signal-first state machine gains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from microfleet.domain.vehicle_state import (
    DEFAULT_THRESHOLDS,
    DriveEnded,
    DriveStarted,
    RecordClass,
    StateThresholds,
    TelemetryColumns,
    VehicleState,
    runs_of,
    step,
)

# Traccar's default speedThreshold is 0.01 knots = 0.0185 km/h (Keys.java EVENT_MOTION_SPEED_THRESHOLD).
TRACCAR_SPEED_THRESHOLD_KMH: Final = 0.01 * 1.852
# Rises of SoC closer together than this belong to one charge (Microfleet's choice for the baseline).
CHARGE_MERGE_S: Final = 1800.0


@dataclass(frozen=True, slots=True)
class ThresholdSpan:
    """A trip or charge found by thresholds: start, end and energy estimated from SoC."""

    start_ts_ms: int
    end_ts_ms: int
    energy_kwh: float | None


def threshold_trips(
    cols: TelemetryColumns, usable_kwh: float | None, th: StateThresholds = DEFAULT_THRESHOLDS
) -> list[ThresholdSpan]:
    """Trips by Traccar's rules: movement >= 300 s or >= 500 m, stop after 300 s still, gap ends."""
    speed = np.nan_to_num(cols.speed_kmh, nan=0.0)
    classes = np.where(speed > TRACCAR_SPEED_THRESHOLD_KMH, RecordClass.MOVING, RecordClass.STILL).astype(
        np.int8
    )
    base = replace(th, moving_speed_kmh=TRACCAR_SPEED_THRESHOLD_KMH)
    state = VehicleState()
    starts: list[int] = []
    ends: list[int] = []
    for run in runs_of(cols, classes, base):
        state, events = step(state, cols.vehicle_id, run, base)
        for ev in events:
            if isinstance(ev, DriveStarted):
                starts.append(ev.ts_ms)
            elif isinstance(ev, DriveEnded):
                ends.append(ev.ts_ms)
    if len(ends) < len(starts) and len(cols):
        ends.append(int(cols.ts_ms[-1]))
    return [_span(cols, s, e, usable_kwh, -1.0) for s, e in zip(starts, ends, strict=True)]


def threshold_charges(cols: TelemetryColumns, usable_kwh: float | None) -> list[ThresholdSpan]:
    """Charges as a tracker sees them: SoC rising while the car stands still, rises < 30 min apart merged."""
    idx = np.flatnonzero(~np.isnan(cols.soc_pct))
    if idx.size < 2:
        return []
    soc = cols.soc_pct[idx]
    ts = cols.ts_ms[idx]
    still = np.nan_to_num(cols.speed_kmh[idx], nan=0.0) <= TRACCAR_SPEED_THRESHOLD_KMH
    rise = np.flatnonzero((np.diff(soc) > 0) & still[1:] & still[:-1]) + 1
    spans: list[ThresholdSpan] = []
    first = last = -1
    for i in rise.tolist():
        if first >= 0 and (ts[i] - ts[last]) / 1000 <= CHARGE_MERGE_S:
            last = i
            continue
        if first >= 0:
            spans.append(_span(cols, int(ts[first - 1]), int(ts[last]), usable_kwh, 1.0))
        first = last = i
    if first >= 0:
        spans.append(_span(cols, int(ts[first - 1]), int(ts[last]), usable_kwh, 1.0))
    return spans


def _span(
    cols: TelemetryColumns, start: int, end: int, usable_kwh: float | None, sign: float
) -> ThresholdSpan:
    """Span with energy = sign x (SoC at end - SoC at start) x usable capacity."""
    a = int(np.searchsorted(cols.ts_ms, start))
    b = int(np.searchsorted(cols.ts_ms, end, side="right"))
    soc = cols.soc_pct[a:b]
    soc = soc[~np.isnan(soc)]
    energy = None
    if usable_kwh is not None and soc.size >= 2:
        energy = sign * float(soc[-1] - soc[0]) / 100 * usable_kwh
    return ThresholdSpan(start, end, energy)
