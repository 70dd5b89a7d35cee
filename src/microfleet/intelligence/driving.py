"""Driver behaviour from 1 Hz data: harsh acceleration, braking and cornering, speeding, a safety score.

Pure NumPy/SciPy over one drive's samples (:class:`DriveSamples`). Acceleration comes from wheel speed by a
central difference (noise of a 0.3 km/h speed signal falls to ~0.06 m/s²); lateral acceleration is speed
times yaw rate, the yaw rate from the GPS course over a ±2 s baseline, because 1 s steps of a fix with
metres of error give a course too noisy to differentiate. The score reproduces Tesla's published Safety
Score Beta v1.0 formula (docs/driver-score.md says what it leaves out and why). Thresholds are
configurable (:class:`HarshThresholds`); each default names its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

G_MPS2: Final = 9.80665  # standard gravity (3rd CGPM, 1901; ISO 80000-3)
EARTH_RADIUS_M: Final = 6_371_000.0  # mean Earth radius (IUGG)
KIND_ACCELERATION: Final = "acceleration"
KIND_BRAKING: Final = "braking"
KIND_CORNERING: Final = "cornering"
KINDS: Final = (KIND_ACCELERATION, KIND_BRAKING, KIND_CORNERING)

# Tesla Safety Score Beta v1.0 (tesla.com/support/safety-score, September 2021; the formula as Tesla
# published it, reproduced in the open "tesla-safety-score" calculators):
#   PCF = 0.682854 × 1.014495^FCW × 1.127294^HB × 1.019630^AT × (unsafe following, forced disengagement)
#   Safety Score = 115.382324 − 22.526504 × PCF, clipped to 0..100
# HB: time braking harder than 0.3 g as a % of time braking harder than 0.1 g; AT: time with lateral
# acceleration over 0.4 g as a % of time over 0.2 g.
TESLA_PCF_BASE: Final = 0.682854
TESLA_HARD_BRAKING_BASE: Final = 1.127294
TESLA_AGGRESSIVE_TURNING_BASE: Final = 1.019630
TESLA_SCORE_INTERCEPT: Final = 115.382324
TESLA_SCORE_SLOPE: Final = 22.526504
TESLA_HARD_BRAKING_G: Final = 0.3
TESLA_BRAKING_BASELINE_G: Final = 0.1
TESLA_AGGRESSIVE_TURNING_G: Final = 0.4
TESLA_TURNING_BASELINE_G: Final = 0.2


@dataclass(frozen=True, slots=True)
class HarshThresholds:
    """When a drive's moment counts as a harsh event; defaults cited, every field configurable."""

    # Positrace's "industry-standard" passenger-car harsh acceleration, 200 milli-g
    # (kb.positrace.com/harsh-behavior-detection); Tesla's score has no acceleration factor.
    acceleration_g: float = 0.2
    braking_g: float = TESLA_HARD_BRAKING_G  # Tesla Safety Score v1.0 "hard braking"
    cornering_g: float = TESLA_AGGRESSIVE_TURNING_G  # Tesla Safety Score v1.0 "aggressive turning"
    # Samples further apart than this carry no acceleration: a 5 s cadence (OVMS's default while driving)
    # averages a 3 s braking over 5 s and hides it (Microfleet's choice: 2 s, twice the 1 Hz step).
    max_gap_s: float = 2.0
    # Course from GPS is meaningless when slow: under 10 km/h a 3 m fix error turns the course by > 45°
    # within one second (assumed from the twin's 3 m GPS sigma, sim/sensors.py).
    cornering_min_speed_kmh: float = 10.0
    merge_s: float = 2.0  # two exceedances closer than this are one event (Microfleet's choice)
    # An event lasts at least 1 s (two samples over the threshold at 1 Hz, so a speed change spread over
    # 3 s or more): a one-sample blip is as likely 0.06 m/s² of speed noise as a manoeuvre. Telematics units
    # filter the same way with a minimum "log duration" (Digital Matter, "Harsh Driving Event Setup").
    min_duration_s: float = 1.0
    course_baseline_s: float = 2.0  # the course at k is taken from the fixes at k ± 2 s (see module doc)


@dataclass(frozen=True, slots=True)
class DriveSamples:
    """One drive's samples in time order: time (ms), wheel speed (km/h), GPS fix and course (NaN: none)."""

    ts_ms: npt.NDArray[np.int64]
    speed_kmh: F64
    lat_deg: F64
    lon_deg: F64
    heading_deg: F64


@dataclass(frozen=True, slots=True)
class HarshEvent:
    """One harsh acceleration, braking or cornering: when, its peak (g) and the speed it began at."""

    kind: str
    start_ts_ms: int
    end_ts_ms: int
    peak_g: float
    speed_kmh: float


def _slope(ts_ms: npt.NDArray[np.int64], values: F64, max_gap_s: float, wrap_deg: bool = False) -> F64:
    """Rate of change per second at each sample: the central difference over its two neighbours.

    Over 2 s at 1 Hz this halves a 1 s difference's noise (0.3 km/h speed noise: 0.06 m/s²) and keeps the
    full peak of a ramp of 2 s or more (a 5-sample slope would cut a 3 s braking's by a fifth); a drive's
    ends take the one-sided difference. NaN where a neighbour is more than ``max_gap_s`` away.
    ``wrap_deg``: values are angles (degrees, 0..360).
    """
    n = values.size
    out = np.full(n, np.nan)
    if n < 2:
        return out
    t = ts_ms.astype(np.float64) / 1000.0
    big = np.concatenate([[0], np.cumsum(np.diff(t) > max_gap_s)])  # gaps passed before each sample
    for half in (1,):
        if n < 2 * half + 1:
            continue
        k = np.arange(half, n - half)
        ts = np.stack([t[k + j] for j in range(-half, half + 1)])
        vs = np.stack([values[k + j] for j in range(-half, half + 1)])
        if wrap_deg:  # unwrap each window around its centre
            vs = values[k] + (vs - values[k] + 180.0) % 360.0 - 180.0
        dt = ts - ts.mean(axis=0)
        slope = (dt * (vs - vs.mean(axis=0))).sum(axis=0) / np.maximum((dt**2).sum(axis=0), 1e-9)
        ok = (big[k + half] == big[k - half]) & np.all(np.isfinite(vs), axis=0)
        out[k[ok]] = slope[ok]
    ends = np.array([0, n - 1])
    lo, hi = np.maximum(ends - 1, 0), np.minimum(ends + 1, n - 1)
    dt_end = t[hi] - t[lo]
    ok_end = (dt_end > 0) & (dt_end <= max_gap_s)
    step = values[hi] - values[lo]
    if wrap_deg:
        step = (step + 180.0) % 360.0 - 180.0
    out[ends[ok_end]] = (step / np.where(dt_end > 0, dt_end, 1.0))[ok_end]
    return out


def longitudinal_accel_mps2(ts_ms: npt.NDArray[np.int64], speed_kmh: F64, max_gap_s: float) -> F64:
    """Acceleration (m/s²) at each sample from wheel speed; NaN across gaps > ``max_gap_s``."""
    return _slope(ts_ms, speed_kmh / 3.6, max_gap_s)


def lateral_accel_mps2(samples: DriveSamples, thresholds: HarshThresholds) -> F64:
    """Lateral acceleration (m/s², unsigned) = speed × yaw rate.

    The yaw rate comes from the car's heading (a GNSS receiver's course over ground, from Doppler) where
    it is sent; otherwise from the course between fixes ``course_baseline_s`` apart, which metres of fix
    error make far noisier (docs/driver-score.md shows how much).
    """
    n = samples.speed_kmh.size
    fast = samples.speed_kmh >= thresholds.cornering_min_speed_kmh
    if np.any(np.isfinite(samples.heading_deg)):  # a car that sends its course: no fallback per sample
        yaw = _slope(samples.ts_ms, samples.heading_deg, thresholds.max_gap_s, wrap_deg=True)
        out = samples.speed_kmh / 3.6 * np.abs(np.radians(yaw))
        return np.where(fast & np.isfinite(out), out, np.nan)
    out = np.full(n, np.nan)
    if n < 5:
        return out
    t = samples.ts_ms.astype(np.float64) / 1000.0
    lat0 = np.radians(np.nanmean(samples.lat_deg)) if np.any(np.isfinite(samples.lat_deg)) else 0.0
    y = np.radians(samples.lat_deg) * EARTH_RADIUS_M
    x = np.radians(samples.lon_deg) * EARTH_RADIUS_M * np.cos(lat0)
    k = np.arange(n)
    b = thresholds.course_baseline_s
    ahead = np.minimum(np.searchsorted(t, t + b, side="left"), n - 1)
    behind = np.maximum(np.searchsorted(t, t - b, side="right") - 1, 0)
    # course over the segment (k-b, k) and (k, k+b): their difference is the turn over about b seconds
    course_in = np.arctan2(x[k] - x[behind], y[k] - y[behind])
    course_out = np.arctan2(x[ahead] - x[k], y[ahead] - y[k])
    turn = np.angle(np.exp(1j * (course_out - course_in)))
    span = (t[ahead] + t[k]) / 2.0 - (t[k] + t[behind]) / 2.0
    big = np.concatenate([[0], np.cumsum(np.diff(t) > thresholds.max_gap_s)])  # gaps before each sample
    dense = big[ahead] == big[behind]
    ok = np.isfinite(turn) & (span > 0) & fast & dense & (ahead > k) & (behind < k)
    out[ok] = samples.speed_kmh[ok] / 3.6 * np.abs(turn[ok]) / span[ok]
    return out


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _events(
    kind: str, value_mps2: F64, threshold_g: float, samples: DriveSamples, th: HarshThresholds
) -> list[HarshEvent]:
    over = np.nan_to_num(value_mps2, nan=0.0) >= threshold_g * G_MPS2
    merged: list[list[int]] = []
    for a, b in _runs(over):
        if merged and (samples.ts_ms[a] - samples.ts_ms[merged[-1][1]]) / 1000.0 <= th.merge_s:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [
        HarshEvent(
            kind=kind,
            start_ts_ms=int(samples.ts_ms[a]),
            end_ts_ms=int(samples.ts_ms[b]),
            peak_g=float(np.nanmax(value_mps2[a : b + 1]) / G_MPS2),
            speed_kmh=float(samples.speed_kmh[max(a - 1, 0)]),
        )
        for a, b in merged
        if (samples.ts_ms[b] - samples.ts_ms[a]) / 1000.0 >= th.min_duration_s
    ]


def harsh_events(samples: DriveSamples, thresholds: HarshThresholds | None = None) -> list[HarshEvent]:
    """Harsh accelerations, brakings and cornerings of one drive, in time order."""
    th = thresholds or HarshThresholds()
    accel = longitudinal_accel_mps2(samples.ts_ms, samples.speed_kmh, th.max_gap_s)
    lateral = lateral_accel_mps2(samples, th)
    found = (
        _events(KIND_ACCELERATION, accel, th.acceleration_g, samples, th)
        + _events(KIND_BRAKING, -accel, th.braking_g, samples, th)
        + _events(KIND_CORNERING, lateral, th.cornering_g, samples, th)
    )
    return sorted(found, key=lambda e: (e.start_ts_ms, e.kind))


@dataclass(frozen=True, slots=True)
class SafetyFactors:
    """Tesla v1.0's time-based factors of one or more drives, with the seconds behind them."""

    hard_braking_s: float  # seconds braking harder than 0.3 g
    braking_s: float  # seconds braking harder than 0.1 g
    aggressive_turning_s: float  # seconds with lateral acceleration over 0.4 g
    turning_s: float  # seconds with lateral acceleration over 0.2 g
    assessed_s: float  # seconds whose acceleration could be computed (samples ≤ max_gap_s apart)
    distance_km: float

    @property
    def hard_braking_pct(self) -> float:
        """HB: hard braking as a % of braking time (0 when the car never braked over 0.1 g)."""
        return 100.0 * self.hard_braking_s / self.braking_s if self.braking_s > 0 else 0.0

    @property
    def aggressive_turning_pct(self) -> float:
        """AT: aggressive turning as a % of turning time (0 when never over 0.2 g)."""
        return 100.0 * self.aggressive_turning_s / self.turning_s if self.turning_s > 0 else 0.0

    def __add__(self, other: SafetyFactors) -> SafetyFactors:
        """Pool the seconds of two sets of drives (Tesla counts a day's drives together)."""
        return SafetyFactors(
            self.hard_braking_s + other.hard_braking_s,
            self.braking_s + other.braking_s,
            self.aggressive_turning_s + other.aggressive_turning_s,
            self.turning_s + other.turning_s,
            self.assessed_s + other.assessed_s,
            self.distance_km + other.distance_km,
        )


NO_FACTORS: Final = SafetyFactors(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _sample_seconds(ts_ms: npt.NDArray[np.int64]) -> F64:
    """Seconds each sample stands for: half the interval to each neighbour."""
    t = ts_ms.astype(np.float64) / 1000.0
    if t.size < 2:
        return np.zeros(t.size)
    d = np.diff(t)
    return np.concatenate([[d[0] / 2], (d[:-1] + d[1:]) / 2, [d[-1] / 2]])


def safety_factors(
    samples: DriveSamples, distance_km: float, th: HarshThresholds | None = None
) -> SafetyFactors:
    """Tesla v1.0's braking and turning seconds for one drive (the score's inputs)."""
    th = th or HarshThresholds()
    w = _sample_seconds(samples.ts_ms)
    accel = longitudinal_accel_mps2(samples.ts_ms, samples.speed_kmh, th.max_gap_s)
    lateral = lateral_accel_mps2(samples, th)
    decel = np.nan_to_num(-accel, nan=-np.inf)
    lat = np.nan_to_num(lateral, nan=-np.inf)
    return SafetyFactors(
        hard_braking_s=float(w[decel > TESLA_HARD_BRAKING_G * G_MPS2].sum()),
        braking_s=float(w[decel > TESLA_BRAKING_BASELINE_G * G_MPS2].sum()),
        aggressive_turning_s=float(w[lat > TESLA_AGGRESSIVE_TURNING_G * G_MPS2].sum()),
        turning_s=float(w[lat > TESLA_TURNING_BASELINE_G * G_MPS2].sum()),
        assessed_s=float(w[np.isfinite(accel)].sum()),
        distance_km=distance_km,
    )


def predicted_collision_frequency(hard_braking_pct: float, aggressive_turning_pct: float) -> float:
    """Tesla v1.0's PCF (collisions per million miles) from HB and AT; FCW, following and disengagement 0."""
    return float(
        TESLA_PCF_BASE
        * TESLA_HARD_BRAKING_BASE**hard_braking_pct
        * TESLA_AGGRESSIVE_TURNING_BASE**aggressive_turning_pct
    )


def safety_score(factors: SafetyFactors) -> float:
    """Tesla Safety Score Beta v1.0 (0..100) of the pooled drives: 115.382324 − 22.526504 × PCF."""
    pcf = predicted_collision_frequency(factors.hard_braking_pct, factors.aggressive_turning_pct)
    return float(np.clip(TESLA_SCORE_INTERCEPT - TESLA_SCORE_SLOPE * pcf, 0.0, 100.0))


def mileage_weighted_score(days: list[SafetyFactors]) -> float | None:
    """Tesla's aggregate: the distance-weighted mean of daily scores (None without distance)."""
    km = np.array([d.distance_km for d in days])
    if km.sum() <= 0:
        return None
    scores = np.array([safety_score(d) for d in days])
    return float((scores * km).sum() / km.sum())
