"""Range with honest uncertainty: P10/P50/P90 km for one car from its own driving.

Energy per km is a physics prior (the car model's consumption against ambient temperature, from
``microfleet.physics``) calibrated per vehicle and corrected by a learned residual: on the car's days of
driving, ``log(observed / prior) = a + b·cold + c·heat`` (cold = kelvin below 15 °C, heat = kelvin above
25 °C; ridge-shrunk towards the prior), fitted by distance-weighted least squares. The spread is the
residual's quantiles on days the fit did not see (split conformal, Vovk et al., "Algorithmic Learning in a
Random World", 2005), so P10-P90 is meant to hold the day's consumption 80 % of the time.

A day, not a drive, is the unit: range is a question about the next hours of driving, and single short
drives scatter far more than a day's worth.

Pure NumPy; no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.drives import Drive

if TYPE_CHECKING:
    from microfleet.domain.catalogue import Catalogue

F64 = npt.NDArray[np.float64]
MODEL_VERSION: Final = "range-1"
MIN_DAYS: Final = 5  # days with driving before a range is given (Microfleet's choice)
MIN_DAY_KM: Final = 3.0  # a day's driving shorter than this says little about consumption
COLD_BELOW_C: Final = 15.0  # cabin heating and cell resistance rise below ~15 °C (Yuksel & Michalek 2015)
HEAT_ABOVE_C: Final = 25.0  # air conditioning from ~25 °C (Yuksel & Michalek, Environ. Sci. Technol. 49)
RIDGE: Final = 4.0  # shrinkage of the residual's slopes, in days' worth of evidence (Microfleet's choice)
CONFORMAL_MIN_DAYS: Final = 12  # below this, in-sample residual quantiles widened for the fitted terms
DAY_MS: Final = 86_400_000
Z_80: Final = 1.2816  # the normal's 90th percentile: P10-P90 is +-1.2816 sigma
# The energy on board is SoC x capacity: a BMS SoC is good to about 3 % in the lab and 5 % in a car at best
# (issue 14's LFP figures), so 2.5 points 1-sigma; capacity without an SoH estimate is the catalogue's new
# pack while fleets lose 1.8-2.3 %/yr (Geotab): 4 % 1-sigma for a pack of a few years.
SOC_SIGMA_PTS: Final = 2.5
CATALOGUE_CAPACITY_SIGMA: Final = 0.04


def energy_sigma(soc_pct: float, soc_sigma_pts: float | None, capacity_sigma_frac: float | None) -> float:
    """Relative 1-sigma of the energy on board from the SoC's and the capacity's (defaults above)."""
    s_soc = (SOC_SIGMA_PTS if soc_sigma_pts is None else soc_sigma_pts) / max(soc_pct, 1.0)
    s_cap = CATALOGUE_CAPACITY_SIGMA if capacity_sigma_frac is None else capacity_sigma_frac
    return math.sqrt(s_soc**2 + s_cap**2)


@dataclass(frozen=True, slots=True)
class PriorCurve:
    """The physics prior: consumption at the pack (Wh/km) against ambient temperature (°C)."""

    temps_c: tuple[float, ...]
    wh_per_km: tuple[float, ...]

    def at(self, temp_c: F64) -> F64:
        """Prior Wh/km at each temperature (interpolated, flat beyond the ends)."""
        return np.asarray(np.interp(temp_c, self.temps_c, self.wh_per_km), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DayObs:
    """One day of a car's driving: distance, pack energy, distance-weighted ambient temperature."""

    day_ms: int
    distance_km: float
    energy_kwh: float
    temp_c: float


@dataclass(frozen=True, slots=True)
class RangeModel:
    """A car's fitted consumption model: residual coefficients and log-residual quantiles."""

    version: str
    coef: tuple[float, float, float]  # a, b (per K of cold), c (per K of heat)
    q10: float
    q50: float
    q90: float
    days: int
    window_from_ms: int
    window_to_ms: int


@dataclass(frozen=True, slots=True)
class RangePrediction:
    """Range from now to empty, in km: P10 (pessimistic), P50, P90, and the Wh/km it assumed (P50)."""

    p10_km: float
    p50_km: float
    p90_km: float
    wh_per_km_p50: float


def driving_days(drives: Sequence[Drive], *, utc_offset_ms: int = 0) -> list[DayObs]:
    """The car's drives with known distance and energy, summed per (local) day."""
    acc: dict[int, list[float]] = {}
    for d in drives:
        km = d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km
        if d.energy_used_kwh is None or km is None or km <= 0.2 or d.energy_used_kwh <= 0:
            continue
        day = (d.start_ts_ms + utc_offset_ms) // DAY_MS * DAY_MS - utc_offset_ms
        a = acc.setdefault(day, [0.0, 0.0, 0.0, 0.0])
        a[0] += km
        a[1] += d.energy_used_kwh
        if d.ambient_temp_c is not None:
            a[2] += km * d.ambient_temp_c
            a[3] += km
    return [
        DayObs(day, a[0], a[1], a[2] / a[3])
        for day, a in sorted(acc.items())
        if a[0] >= MIN_DAY_KM and a[3] > 0
    ]


def _design(temp_c: F64) -> F64:
    return np.column_stack(
        [np.ones_like(temp_c), np.maximum(COLD_BELOW_C - temp_c, 0.0), np.maximum(temp_c - HEAT_ABOVE_C, 0.0)]
    )


def _fit(days: Sequence[DayObs], prior: PriorCurve) -> tuple[F64, F64, F64]:
    """Coefficients, and the log-residual and weight of every day, of a distance-weighted ridge fit."""
    t = np.array([d.temp_c for d in days])
    y = np.log(np.array([d.energy_kwh * 1000.0 / d.distance_km for d in days]) / prior.at(t))
    w = np.array([d.distance_km for d in days])
    w = w / w.mean()
    a = _design(t)
    penalty = np.diag([0.0, RIDGE, RIDGE])  # the intercept (the per-car calibration) is not shrunk
    coef = np.linalg.solve((a * w[:, None]).T @ a + penalty, (a * w[:, None]).T @ y)
    return np.asarray(coef, dtype=np.float64), y - a @ coef, w


def _weighted_quantiles(r: F64, w: F64, qs: Sequence[float]) -> list[float]:
    order = np.argsort(r)
    cw = np.cumsum(w[order]) / w.sum()
    return [float(np.interp(q, cw - w[order] / w.sum() / 2, r[order])) for q in qs]


def fit_range_model(days: Sequence[DayObs], prior: PriorCurve) -> RangeModel | None:
    """Fit a car's range model on its driving days (None: fewer than :data:`MIN_DAYS`).

    With enough days, the last third is held out: the coefficients fitted on the first two thirds give
    the residual quantiles there (split conformal); the coefficients are then refitted on every day.
    """
    if len(days) < MIN_DAYS:
        return None
    days = sorted(days, key=lambda d: d.day_ms)
    if len(days) >= CONFORMAL_MIN_DAYS:
        cut = len(days) * 2 // 3
        coef_fit, _, _ = _fit(days[:cut], prior)
        held = days[cut:]
        t = np.array([d.temp_c for d in held])
        y = np.log(np.array([d.energy_kwh * 1000.0 / d.distance_km for d in held]) / prior.at(t))
        r = y - _design(t) @ coef_fit
        w = np.array([d.distance_km for d in held])
        coef, _, _ = _fit(days, prior)
    else:
        coef, r, w = _fit(days, prior)
        r = r * math.sqrt(len(days) / max(len(days) - 3, 1))  # in-sample residuals understate the spread
    q10, q50, q90 = _weighted_quantiles(r, w, (0.1, 0.5, 0.9))
    return RangeModel(
        MODEL_VERSION,
        (float(coef[0]), float(coef[1]), float(coef[2])),
        q10,
        q50,
        q90,
        len(days),
        days[0].day_ms,
        days[-1].day_ms + DAY_MS,
    )


def predict_range(
    model: RangeModel,
    prior: PriorCurve,
    *,
    soc_pct: float,
    usable_kwh: float,
    temp_c: float,
    energy_sigma_frac: float = 0.0,
) -> RangePrediction:
    """Range to 0 % SoC at ``temp_c`` from ``soc_pct`` of a pack of ``usable_kwh`` (its capacity now).

    ``energy_sigma_frac`` is the relative 1-sigma of the energy on board (SoC and capacity uncertainty); it
    widens the band in quadrature with the consumption's own quantiles.
    """
    t = np.array([temp_c], dtype=np.float64)
    log_wh = float(np.log(prior.at(t))[0] + (_design(t) @ np.array(model.coef))[0])
    energy_wh = max(soc_pct, 0.0) / 100.0 * usable_kwh * 1000.0
    extra = (Z_80 * math.log1p(max(energy_sigma_frac, 0.0))) ** 2
    hi = math.sqrt((model.q90 - model.q50) ** 2 + extra)
    lo = math.sqrt((model.q50 - model.q10) ** 2 + extra)
    # a higher consumption quantile is a shorter range: P10 range uses the 90th residual
    return RangePrediction(
        p10_km=energy_wh / math.exp(log_wh + model.q50 + hi),
        p50_km=energy_wh / math.exp(log_wh + model.q50),
        p90_km=energy_wh / math.exp(log_wh + model.q50 - lo),
        wh_per_km_p50=math.exp(log_wh + model.q50),
    )


def trip_verdict(prediction: RangePrediction, distance_km: float) -> str:
    """Can the car make a trip: "yes" (even the P10 range covers it), "likely" (P50), "risky" (P90), "no"."""
    if prediction.p10_km >= distance_km:
        return "yes"
    if prediction.p50_km >= distance_km:
        return "likely"
    if prediction.p90_km >= distance_km:
        return "risky"
    return "no"


PRIOR_TEMPS_C: Final = (-20.0, -10.0, 0.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 45.0)
CABIN_TARGET_C: Final = 22.0  # heating/cooling setpoint of the prior (Microfleet's choice, a typical cabin)
HVAC_DEADBAND_K: Final = 5.0  # climate on beyond +-5 K of the setpoint (twin drivers' median tolerance band)
PRIOR_CYCLE: Final = "cltc_p"  # China light-duty test cycle, passenger: the urban driving these cars do
FLAT_PRIOR_WH_PER_KM: Final = 100.0  # no catalogue model: flat; the per-car intercept learns the scale


def physics_prior(model_id: str | None, catalogue: Catalogue | None = None) -> PriorCurve:
    """The model's consumption against temperature from the physics (flat if the catalogue cannot say)."""
    from microfleet.domain.catalogue import load_catalogue
    from microfleet.errors import MicrofleetError
    from microfleet.physics import VehicleParams, cycle_consumption_wh_per_km
    from microfleet.physics.cycles import load_cycle

    flat = PriorCurve(PRIOR_TEMPS_C, tuple(FLAT_PRIOR_WH_PER_KM for _ in PRIOR_TEMPS_C))
    if model_id is None:
        return flat
    try:
        catalogue = catalogue or load_catalogue()
        params = VehicleParams.from_specs([catalogue.get(model_id)], siblings=catalogue.all())
        cycle = load_cycle(PRIOR_CYCLE)
        values = [
            float(
                cycle_consumption_wh_per_km(
                    params, cycle, ambient_temp_c=t, cabin_target_temp_c=CABIN_TARGET_C,
                    hvac_on=abs(t - CABIN_TARGET_C) > HVAC_DEADBAND_K,
                )[0]
            )
            for t in PRIOR_TEMPS_C
        ]  # fmt: skip
    except MicrofleetError:
        return flat
    return PriorCurve(PRIOR_TEMPS_C, tuple(values))
