"""Weak cell / growing imbalance (cell voltage spread at comparable load and SoC) and capacity outliers.

Cell spread (highest minus lowest cell voltage) depends on load and state of charge, so only readings at
rest-like current (|I| ≤ :data:`REST_A`) inside :data:`SOC_BAND_PCT` are compared, bucket medians against the
car's trailing reference. A weak cell (high resistance or self-discharge) shows as a spread that grows day
after day. Capacity outliers compare each car's BMS state of health with the fleet's cars of the same model
by a robust z-score (median and MAD; Iglewicz & Hoaglin 1993, "How to Detect and Handle Outliers": |z| > 3.5).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
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
    trailing_median,
)

DETECTOR: Final = "cell_balance"
CAPACITY: Final = "capacity"
REST_A: Final = 5.0  # ~0.1 C for a 40 Ah small-EV pack: voltage within a few mV of open circuit (assumed)
SOC_BAND_PCT: Final = (20.0, 95.0)  # outside it the OCV curve is steep and spreads widen (assumed)
# A passively balanced pack keeps cells within ~10-20 mV (assumed; TI "Cell balancing" SLUA524 aims at
# 10 mV); a spread 10 mV over the car's own lowest weekly median and still growing is a weak cell.
GROWTH_MV: Final = 10.0
SLOPE_MV_DAY: Final = 1.5
SLOPE_BUCKETS: Final = 8
REF_LAG_BUCKETS: Final = 4
REF_SPAN_BUCKETS: Final = 28
LEARN_DAYS: Final = 3.0
ROBUST_Z: Final = 3.5  # Iglewicz & Hoaglin (1993) modified z-score cut-off
MAD_TO_SD: Final = 1.4826  # MAD of a normal distribution x 1.4826 = its standard deviation
MIN_FLEET: Final = 5  # fewer cars of a model than this: no distribution to compare with (assumed)


@dataclass(frozen=True)
class CellTrace:
    """Per 6 h bucket: spread (mV), growth over the car's lowest reference, slope (mV/day), flags."""

    start_ms: int
    spread_mv: F64
    growth_mv: F64
    slope_mv_day: F64
    flagged: npt.NDArray[np.bool_]


def trace(series: CarSeries, factor: float = 1.0) -> CellTrace:
    """Judge every 6 h bucket."""
    start, nb = n_buckets(series)
    spread = (series.cell_voltage_max_v - series.cell_voltage_min_v) * 1000.0
    soc = series.soc_pct
    ok = (np.abs(np.nan_to_num(series.pack_current_a, nan=0.0)) <= REST_A) & (
        ~np.isfinite(soc) | ((soc >= SOC_BAND_PCT[0]) & (soc <= SOC_BAND_PCT[1]))
    )
    level = bucket_medians(series.ts_ms, spread, start, nb, ok)
    idx = np.maximum.accumulate(np.where(np.isfinite(level), np.arange(nb), -1))
    filled = np.where(idx >= 0, level[np.maximum(idx, 0)], np.nan)
    ref = trailing_median(filled, REF_LAG_BUCKETS, REF_SPAN_BUCKETS, min_count=4)
    lowest = np.fmin.accumulate(np.where(np.isfinite(ref), ref, np.inf))
    growth = filled - np.where(np.isfinite(lowest), lowest, np.nan)
    slope = rolling_theil_sen(filled, SLOPE_BUCKETS) * (DAY_MS / BUCKET_MS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        flagged = (growth >= GROWTH_MV * factor) & (slope >= SLOPE_MV_DAY * factor)
    return CellTrace(start, filled, growth, slope, np.asarray(flagged))


def detect(series: CarSeries, factor: float = 1.0) -> list[DetectorResult]:
    """The weak-cell detector's answer now."""
    if not (series.sends(series.cell_voltage_min_v) and series.sends(series.cell_voltage_max_v)):
        return [no_signal(DETECTOR, "lowest and highest cell voltages")]
    if series.days < LEARN_DAYS:
        return [learning(DETECTOR, series.days, LEARN_DAYS, "the pack's cell spread at rest")]
    tr = trace(series, factor)
    k = tr.flagged.size - 1
    spread, growth, slope = float(tr.spread_mv[k]), float(tr.growth_mv[k]), float(tr.slope_mv_day[k])
    ev: dict[str, float | str] = {"spread_mv": round(spread, 1), "growth_mv": round(growth, 1),
                                  "slope_mv_per_day": round(slope, 2)}  # fmt: skip
    if not tr.flagged[k]:
        return [DetectorResult(DETECTOR, Verdict.OK, f"cells within {spread:.0f} mV at rest, steady",
                               score=float(np.nan_to_num(growth)), evidence=ev)]  # fmt: skip
    return [DetectorResult(
        DETECTOR, Verdict.SUSPECTED,
        f"cell spread at rest is {spread:.0f} mV, {growth:.0f} mV wider than this pack's usual and growing "
        f"{slope:.1f} mV/day: one cell is weakening (self-discharge or resistance)",
        condition="cells", severity="critical" if spread > 100 else "warning",
        action="book a traction-battery check: balance the pack and test the weak cell group",
        score=float(growth), evidence=ev,
    )]  # fmt: skip


def capacity_estimate(series: CarSeries) -> float:
    """The car's capacity estimate: the median BMS state of health of its last week (NaN if none)."""
    recent = series.ts_ms >= series.ts_ms[-1] - 7 * DAY_MS
    soh = series.bms_soh_pct[recent]
    return float(np.median(soh[np.isfinite(soh)])) if np.isfinite(soh).any() else float("nan")


def capacity_outliers(estimates: Mapping[str, tuple[str, float]]) -> dict[str, DetectorResult]:
    """Each car's capacity against its model's cars in the fleet: robust z of (model, SoH %) by vehicle."""
    out: dict[str, DetectorResult] = {}
    by_model: dict[str, list[tuple[str, float]]] = {}
    for vid, (model, soh) in estimates.items():
        if not np.isfinite(soh):
            out[vid] = no_signal(CAPACITY, "battery state of health")
        else:
            by_model.setdefault(model, []).append((vid, soh))
    for model, cars in by_model.items():
        vals = np.array([s for _, s in cars])
        if vals.size < MIN_FLEET:
            for vid, _ in cars:
                out[vid] = DetectorResult(
                    CAPACITY, Verdict.LEARNING,
                    f"learning: the fleet has {vals.size} cars of {model} reporting capacity, "
                    f"needs {MIN_FLEET}",
                )  # fmt: skip
            continue
        med = float(np.median(vals))
        mad = max(float(np.median(np.abs(vals - med))) * MAD_TO_SD, 0.5)  # 0.5 %: a BMS's SoH step
        for vid, soh in cars:
            z = (soh - med) / mad
            ev: dict[str, float | str] = {
                "soh_pct": round(soh, 1), "model_median_pct": round(med, 1), "robust_z": round(z, 2),
                "cars_compared": int(vals.size),
            }  # fmt: skip
            if z < -ROBUST_Z:
                out[vid] = DetectorResult(
                    CAPACITY, Verdict.SUSPECTED,
                    f"capacity {soh:.1f} % of new, {med - soh:.1f} points under the fleet's {model} cars "
                    f"(median {med:.1f} %; robust z {z:.1f})",
                    condition="capacity", severity="warning",
                    action="capacity test at the next service; check for a weak cell group",
                    score=-z, evidence=ev,
                )  # fmt: skip
            else:
                ok = f"capacity {soh:.1f} %, in line with the fleet"
                out[vid] = DetectorResult(CAPACITY, Verdict.OK, ok,
                                          score=-z, evidence=ev)  # fmt: skip
    return out
