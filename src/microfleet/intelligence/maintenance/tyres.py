"""Tyre slow leak: each wheel's temperature-corrected pressure against the car's other wheels, over time.

A TPMS reading moves with temperature (ideal gas: absolute pressure ∝ absolute temperature), so each
reading is first scaled to 20 °C. A leak is one wheel losing pressure while the others do not: comparing a
wheel with the median of the other three cancels what all four share (weather, sun, altitude, a top-up of
all four) and leaves the leak. The rule flags a wheel whose relative pressure fell ``DROP_KPA`` below its own
trailing reference and keeps falling (robust Theil-Sen slope), and says when, at that rate, the tyre will be
25 % under its nominal pressure: the under-inflation warning threshold of UN R141 (Regulation No. 141, TPMS,
§5.3.2: warn at 20 % below the warm/cold placard for M1) and FMVSS 138 (49 CFR 571.138 S4.2: warn at 25 %
below the placard). We use 25 %, the FMVSS figure, the later of the two warnings.
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
    F64,
    CarSeries,
    bucket_medians,
    n_buckets,
    rolling_theil_sen,
    trailing_median,
)

DETECTOR: Final = "tyre"
WHEELS: Final = ("front left", "front right", "rear left", "rear right")
WHEEL_KEYS: Final = ("fl", "fr", "rl", "rr")
ATMOSPHERE_KPA: Final = 101.325  # ISO 2533 standard atmosphere: TPMS report gauge pressure above this
REFERENCE_C: Final = 20.0  # tyre placards are cold pressures; ETRTO / tyre makers quote them at ~20 °C
WARNING_FRACTION: Final = 0.25  # FMVSS 138 S4.2: warn 25 % below placard (UN R141: 20 %)
# A wheel is suspected when it sits DROP_KPA under its trailing reference and falls at least SLOPE_KPA_DAY:
# 6 kPa is six TPMS steps (1 kPa resolution) and ~25x a healthy tyre's natural loss per day (tyres lose
# about 1 psi = 6.9 kPa a month: NHTSA, "Tire Pressure Monitoring System" FMVSS 138 final rule, 2005).
DROP_KPA: Final = 6.0
SLOPE_KPA_DAY: Final = -1.5
OWN_SLOPE_KPA_DAY: Final = -1.0  # looser: the wheel's own level still carries the weather's residue
SLOPE_BUCKETS: Final = 8  # 2 days of 6 h buckets for the slope
REF_LAG_BUCKETS: Final = 8  # the reference ends 2 days back ...
REF_SPAN_BUCKETS: Final = 28  # ... and spans 7 days before that
LEARN_DAYS: Final = 3.0
STOPPED_KMH: Final = 0.5


def corrected_kpa(gauge_kpa: F64, temp_c: F64) -> F64:
    """Gauge pressure scaled to :data:`REFERENCE_C` by the ideal gas law; uncorrected where T is unknown."""
    t = temp_c if gauge_kpa.ndim == 1 else temp_c[:, None]
    scale = (REFERENCE_C + 273.15) / (t + 273.15)
    out = (gauge_kpa + ATMOSPHERE_KPA) * scale - ATMOSPHERE_KPA
    return np.asarray(np.where(np.isfinite(t), out, gauge_kpa), dtype=np.float64)


@dataclass(frozen=True)
class TyreTrace:
    """Per 6 h bucket and wheel: corrected level, drop under the reference, slope; and the flags."""

    start_ms: int
    level_kpa: F64  # (buckets, 4)
    drop_kpa: F64
    slope_kpa_day: F64
    flagged: npt.NDArray[np.bool_]  # (buckets, 4)


def trace(series: CarSeries, factor: float = 1.0) -> TyreTrace:
    """Judge every 6 h bucket of the series (the bench reads the first flag; the service the last)."""
    start, nb = n_buckets(series)
    parked = (np.nan_to_num(series.speed_kmh, nan=0.0) <= STOPPED_KMH) & (series.ignition_on != 1.0)
    corr = corrected_kpa(series.tyre_pressure_kpa, series.ambient_temp_c)
    level = np.stack([bucket_medians(series.ts_ms, corr[:, w], start, nb, parked) for w in range(4)], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # buckets without readings stay NaN
        others = np.stack([np.nanmedian(np.delete(level, w, axis=1), axis=1) for w in range(4)], axis=1)
    rel = level - others
    ref = trailing_median(rel, REF_LAG_BUCKETS, REF_SPAN_BUCKETS, min_count=4)
    drop = ref - rel
    slope = np.stack([rolling_theil_sen(rel[:, w], SLOPE_BUCKETS) for w in range(4)], axis=1) * (
        86_400_000 / BUCKET_MS
    )
    # the wheel's own level must fall too: after a top-up of all four, a wheel that had lost less than the
    # others drops against them in one step while its own pressure rose
    own = np.stack([rolling_theil_sen(level[:, w], SLOPE_BUCKETS) for w in range(4)], axis=1) * (
        86_400_000 / BUCKET_MS
    )
    prev = np.vstack([np.full((1, 4), np.nan), drop[:-1]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        flagged = (
            (drop >= DROP_KPA * factor) & (prev >= 0.7 * DROP_KPA * factor)
            & (slope <= SLOPE_KPA_DAY * factor) & (own <= OWN_SLOPE_KPA_DAY * factor)
        )  # fmt: skip
    return TyreTrace(start, level, drop, slope, flagged)


def detect(series: CarSeries, nominal_kpa: float | None = None, factor: float = 1.0) -> list[DetectorResult]:
    """The tyre detector's answer now: one result per suspected wheel, or one 'ok'/'learning'/'no signal'."""
    if not series.sends(series.tyre_pressure_kpa.ravel()):
        return [no_signal(DETECTOR, "tyre pressure (no TPMS)")]
    if series.days < LEARN_DAYS:
        return [learning(DETECTOR, series.days, LEARN_DAYS, "each wheel's pressure against the others")]
    tr = trace(series, factor)
    last = tr.flagged.shape[0] - 1
    out: list[DetectorResult] = []
    for w in np.flatnonzero(tr.flagged[last]).tolist():
        level, slope = float(tr.level_kpa[last, w]), float(tr.slope_kpa_day[last, w])
        nominal = nominal_kpa if nominal_kpa is not None else float(level + tr.drop_kpa[last, w])
        floor = (1.0 - WARNING_FRACTION) * nominal
        days_left = max(level - floor, 0.0) / -slope
        out.append(DetectorResult(
            DETECTOR, Verdict.SUSPECTED,
            f"{WHEELS[w]} tyre is losing {-slope:.1f} kPa/day (corrected to {REFERENCE_C:g} °C), "
            f"{tr.drop_kpa[last, w]:.0f} kPa under the other wheels' trend; at this rate it is 25 % under "
            f"its {nominal:.0f} kPa in {days_left:.1f} days",
            condition=f"tyre:{WHEEL_KEYS[w]}", severity="critical" if days_left < 2 else "warning",
            action=f"check the {WHEELS[w]} tyre for a puncture or a leaking valve and re-inflate",
            score=float(tr.drop_kpa[last, w]),
            evidence={"pressure_kpa_at_20c": round(level, 1),
                      "drop_kpa": round(float(tr.drop_kpa[last, w]), 1),
                      "slope_kpa_per_day": round(slope, 2), "days_to_warning": round(days_left, 1),
                      "nominal_kpa": round(nominal, 1)},
        ))  # fmt: skip
    if out:
        return out
    worst = float(np.nanmax(tr.drop_kpa[last])) if np.isfinite(tr.drop_kpa[last]).any() else 0.0
    return [DetectorResult(DETECTOR, Verdict.OK, "every wheel holds its pressure against the others",
                           score=worst, evidence={"largest_drop_kpa": round(worst, 1)})]  # fmt: skip
