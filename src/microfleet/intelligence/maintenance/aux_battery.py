"""12 V battery decay: the rest voltage of the lead-acid auxiliary battery, against its own past, over time.

While the car is awake its DC-DC converter holds the 12 V bus above 13 V; asleep, the battery alone sets it.
A healthy, charged lead-acid battery rests at 12.6-12.7 V and reads about 11.8 V nearly flat (Battery
University BU-903, "How to Measure State-of-charge"), after four hours' rest for the surface charge to go.
The rule takes rest readings at least :data:`SETTLE_H` after the bus was last above 13 V, compares each 6 h
bucket's median with the car's trailing reference and flags a battery that sits ``DROP_V`` under it and keeps
falling; it says when, at that rate, the battery reaches 11.8 V (the twin's and SAE J2012 P0562's "system
voltage low").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.intelligence.maintenance.findings import DetectorResult, Verdict, learning, no_signal
from microfleet.intelligence.maintenance.series import (
    BUCKET_MS,
    DAY_MS,
    F64,
    CarSeries,
    bucket_medians,
    n_buckets,
    rolling_theil_sen,
    theil_sen,
    trailing_median,
)

DETECTOR: Final = "12v_battery"
AWAKE_V: Final = 13.0  # a DC-DC converter charges at 13.5-14.4 V (BU-403); above 13 V the bus is charging
SETTLE_H: Final = 4.0  # BU-903: rest four hours before reading open-circuit voltage
FLAT_V: Final = 11.8  # BU-903: ~11.8 V at rest is a nearly empty 12 V lead-acid battery
LOW_V: Final = 12.2  # BU-903: ~12.2 V at rest is about half charged: a battery that should be looked at
# Suspected when the rest voltage is DROP_V under its trailing reference (ten times a bucket median's noise
# in the twin; the bucket before at least half of it) and falling at SLOPE_V_DAY or faster (assumed,
# tuned on seed 11).
DROP_V: Final = 0.04
SLOPE_V_DAY: Final = -0.02
SLOPE_BUCKETS: Final = 4
FORECAST_BUCKETS: Final = 16
REF_LAG_BUCKETS: Final = 4
REF_SPAN_BUCKETS: Final = 28
LEARN_DAYS: Final = 2.0
# A bucket's rest level needs an hour of rest readings (6 at OVMS v3's 10-minute asleep cadence): a median
# of one or two readings (a bucket that ends 4 h after a drive) carries 0.02 V of noise, and carried over
# the next buckets it looked like a falling battery. Chosen on the whole twin's tuning seed 11 (200 cars x
# 182 days): 26 false 12 V alerts with 1 reading, 8 with 3, 1 with 6, 0 with 12; failures caught a week
# ahead 0.95, 0.93, 0.93, 0.90 of 42.
MIN_REST_READINGS: Final = 6


@dataclass(frozen=True)
class AuxTrace:
    """Per 6 h bucket: rest voltage, drop under the reference, slope (V/day), flags."""

    start_ms: int
    rest_v: F64
    drop_v: F64
    slope_v_day: F64
    flagged: npt.NDArray[np.bool_]


def rest_mask(series: CarSeries) -> npt.NDArray[np.bool_]:
    """Samples at rest: bus under 13 V, ignition not on, and at least SETTLE_H since it was last charging."""
    v = series.aux_battery_v
    awake = (v >= AWAKE_V) | (series.ignition_on == 1.0)
    last_awake = np.maximum.accumulate(np.where(awake, series.ts_ms, np.iinfo(np.int64).min // 2))
    settled = (series.ts_ms - last_awake) >= SETTLE_H * 3_600_000
    return np.asarray(np.isfinite(v) & ~awake & settled)


def trace(series: CarSeries, factor: float = 1.0) -> AuxTrace:
    """Judge every 6 h bucket of the series."""
    start, nb = n_buckets(series)
    rest = bucket_medians(series.ts_ms, series.aux_battery_v, start, nb, rest_mask(series), MIN_REST_READINGS)
    # carry the last rest reading over buckets without one (a car driven all afternoon)
    idx = np.maximum.accumulate(np.where(np.isfinite(rest), np.arange(nb), -1))
    filled = np.where(idx >= 0, rest[np.maximum(idx, 0)], np.nan)
    ref = trailing_median(filled, REF_LAG_BUCKETS, REF_SPAN_BUCKETS, min_count=4)
    drop = ref - filled
    slope = rolling_theil_sen(filled, SLOPE_BUCKETS) * (DAY_MS / BUCKET_MS)
    prev = np.append(np.nan, drop[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        trend = (drop >= DROP_V * factor) & (prev >= 0.5 * DROP_V * factor) & (slope <= SLOPE_V_DAY * factor)
        flagged = trend | (filled < LOW_V)
    return AuxTrace(start, filled, drop, slope, np.asarray(flagged & np.isfinite(filled)))


def detect(series: CarSeries, factor: float = 1.0) -> list[DetectorResult]:
    """The 12 V detector's answer now."""
    if not series.sends(series.aux_battery_v):
        return [no_signal(DETECTOR, "12 V battery voltage")]
    if series.days < LEARN_DAYS:
        return [learning(DETECTOR, series.days, LEARN_DAYS, "the 12 V battery's rest voltage")]
    tr = trace(series, factor)
    k = tr.flagged.size - 1
    level = float(tr.rest_v[k])
    if not np.isfinite(level):
        return [learning(DETECTOR, 0.0, SETTLE_H / 24.0, "a rest reading four hours after the car slept")]
    low = float(series.aux_battery_v[rest_mask(series)].min())
    if not tr.flagged[k]:
        return [DetectorResult(DETECTOR, Verdict.OK, f"12 V battery rests at {level:.2f} V, steady",
                               score=max(float(np.nan_to_num(tr.drop_v[k])), 0.0),
                               evidence={"rest_v": round(level, 2)})]  # fmt: skip
    # the forecast uses the last four days' slope: steadier than the 1-day slope the rule fires on
    recent = tr.rest_v[max(0, k - FORECAST_BUCKETS + 1) : k + 1]
    slope = theil_sen(np.arange(recent.size, dtype=np.float64), recent) * (DAY_MS / BUCKET_MS)
    slope = float(tr.slope_v_day[k]) if not np.isfinite(slope) else slope
    days_left = (level - FLAT_V) / -slope if slope < 0 else float("inf")
    when = f"reaches {FLAT_V} V (flat) in about {days_left:.0f} days" if np.isfinite(days_left) else "is low"
    return [DetectorResult(
        DETECTOR, Verdict.SUSPECTED,
        f"12 V battery rests at {level:.2f} V, {float(np.nan_to_num(tr.drop_v[k])):.2f} V under its usual, "
        f"falling {-min(slope, 0.0):.3f} V/day; at this rate it {when}",
        condition="12v", severity="critical" if days_left < 7 or level < LOW_V else "warning",
        action="test the 12 V battery (load test), charge or replace it before it strands the car",
        score=float(np.nan_to_num(tr.drop_v[k])),
        evidence={"rest_v": round(level, 2), "drop_v": round(float(np.nan_to_num(tr.drop_v[k])), 3),
                  "slope_v_per_day": round(slope, 3), "days_to_flat": round(min(days_left, 999.0), 1),
                  "lowest_rest_v": round(low, 2)},
    )]  # fmt: skip
