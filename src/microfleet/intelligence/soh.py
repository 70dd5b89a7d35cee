"""State of health: usable capacity from charge sessions, its trend with a band, and the fleet's fade.

A charge session that moved the BMS SoC by ΔSoC while ``E`` kWh went into the pack measured a capacity of
``E / ΔSoC``. One session is noisy (a 1 % SoC step on a 20-point session is 5 %), so a car's capacity is a
robust, ΔSoC-weighted trend over its sessions (Huber IRLS: a session spoiled by a BMS jump weighs less),
corrected to 25 °C by a slope the car's own sessions show, with a band from the trend's standard error.

On LFP the BMS counts charge against the capacity it *believes* in while on the flat plateau (20-90 %);
only near empty and near full does cell voltage pin its SoC. A session measured between two such anchors
measures the pack; one on the plateau measures partly the BMS's belief. Sessions are therefore ranked
(``anchored`` first) and the estimate says which basis it used.

Pure NumPy: no clock, no I/O. Times are UTC epoch ms; capacity is usable pack energy in kWh.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive

F64 = npt.NDArray[np.float64]
MS_PER_YEAR: Final = 365.25 * 86_400_000
# A 1 % SoC step over a 20-point session is 5 % of capacity; sessions below this ΔSoC are too coarse
# (Microfleet's choice; Geotab's battery-degradation study likewise uses charges over a minimum ΔSoC).
MIN_DELTA_SOC_PCT: Final = 20.0
# Sessions before a capacity is given: 5 gated sessions bring the ΔSoC-weighted scatter under ~2 %.
MIN_SESSIONS: Final = 5
# A trend (fade rate, the 80 % forecast) needs sessions spread over this long (Microfleet's choice).
MIN_TREND_DAYS: Final = 45.0
# LFP OCV is steep (> 4 mV/%) below 20 % and above 90 % SoC, so a BMS re-pins SoC from voltage there
# (Plett, "Battery Management Systems Vol. II", 2015, ch. 4: LFP's flat 20-90 % region defeats OCV lookup).
LFP_ANCHOR_LOW_PCT: Final = 20.0
LFP_ANCHOR_HIGH_PCT: Final = 90.0
ANCHOR_STEP_PCT: Final = 1.0  # a BMS reports SoC rounded down to its step (up to 1 %): 89 % may be 90 %
PACK_ENERGY_SOURCES: Final = ("counters", "soc_anchored", "pack_power")  # "soc" would be circular
HUBER_K: Final = 1.345  # 95 % efficiency under normal errors (Huber, "Robust Statistics", 1981)
Z_90: Final = 1.6449  # two-sided 90 % band of a normal
END_OF_LIFE_FRACTION: Final = 0.80  # 80 % of new: the usual EV end-of-first-life mark (USABC manual, 1996)
# Capacity's temperature slope is learned only from sessions spanning this many kelvin (else none).
MIN_TEMP_SPAN_K: Final = 10.0
REFERENCE_TEMP_C: Final = 25.0
DC_HEAVY_SHARE: Final = 0.5  # a car that took half its charge energy or more from DC is "DC-heavy"


@dataclass(frozen=True, slots=True)
class CapacitySample:
    """One gated charge session's capacity measurement."""

    ts_ms: int
    capacity_kwh: float
    delta_soc_pct: float
    temp_c: float | None
    anchored: bool  # both ends where cell voltage pins SoC (always True off LFP)
    dc: bool


@dataclass(frozen=True, slots=True)
class SohEstimate:
    """A car's capacity now, its band, trend and forecast; or how many sessions it still needs."""

    capacity_kwh: float | None
    soh_pct: float | None
    band_low_pct: float | None  # 90 % band of the SoH now
    band_high_pct: float | None
    fade_pct_per_year: float | None  # slope of SoH (points of new per year), negative when fading
    fade_sigma_pct_per_year: float | None
    eol_ts_ms: int | None  # when the trend crosses 80 % of new (None: not fading or no trend)
    sessions_used: int
    sessions_needed: int  # more gated sessions needed before a capacity is given (0: enough)
    basis: str  # "anchored", "plateau" (LFP sessions on the flat region only) or "none"
    temp_slope_pct_per_k: float | None
    window_from_ms: int | None
    window_to_ms: int | None


def session_temperatures(charges: Sequence[ChargeSession], drives: Sequence[Drive]) -> list[float | None]:
    """The ambient temperature of each charge: its nearest drive's (before or after, within 12 h)."""
    ts = np.array([d.end_ts_ms for d in drives if d.ambient_temp_c is not None], dtype=np.int64)
    temps = [d.ambient_temp_c for d in drives if d.ambient_temp_c is not None]
    out: list[float | None] = []
    for c in charges:
        if ts.size == 0:
            out.append(None)
            continue
        j = int(np.clip(np.searchsorted(ts, c.start_ts_ms), 1, ts.size) - 1)
        cand = [k for k in (j, j + 1) if 0 <= k < ts.size]
        k = min(cand, key=lambda i: abs(int(ts[i]) - c.start_ts_ms))
        out.append(temps[k] if abs(int(ts[k]) - c.start_ts_ms) <= 12 * 3_600_000 else None)
    return out


def capacity_samples(
    charges: Sequence[ChargeSession], temps_c: Sequence[float | None], *, chemistry: str
) -> list[CapacitySample]:
    """The sessions that measure capacity: pack-measured energy over a ΔSoC of at least 20 points."""
    out = []
    for c, t in zip(charges, temps_c, strict=True):
        if c.soc_from_pct is None or c.soc_to_pct is None or c.energy_added_kwh is None:
            continue
        if c.energy_source not in PACK_ENERGY_SOURCES or c.energy_added_kwh <= 0:
            continue
        d = c.soc_to_pct - c.soc_from_pct
        if d < MIN_DELTA_SOC_PCT:
            continue
        anchored = chemistry != "LFP" or (
            c.soc_from_pct <= LFP_ANCHOR_LOW_PCT and c.soc_to_pct >= LFP_ANCHOR_HIGH_PCT - ANCHOR_STEP_PCT
        )
        out.append(
            CapacitySample(
                c.start_ts_ms, c.energy_added_kwh / d * 100.0, d, t, anchored, c.current_kind == "DC"
            )
        )
    return out


def _huber_fit(a: F64, y: F64, w: F64) -> tuple[F64, F64]:
    """Weighted Huber regression of ``y`` on the design ``a``: coefficients and their covariance."""
    robust = np.ones_like(y)
    coef: F64 = np.zeros(a.shape[1])
    for _ in range(20):
        ww = w * robust
        sw = np.sqrt(ww)
        coef = np.asarray(np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)[0], dtype=np.float64)
        r = (y - a @ coef) * np.sqrt(w)
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r)))) or float(np.std(r)) or 1e-9
        new = np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(r), 1e-12))
        if np.allclose(new, robust, atol=1e-4):
            break
        robust = new
    ww = w * robust
    r = y - a @ coef
    dof = max(1, y.size - a.shape[1])
    sigma2 = float(np.sum(ww * r**2) / dof)
    return coef, np.asarray(sigma2 * np.linalg.pinv((a * ww[:, None]).T @ a), dtype=np.float64)


def estimate_soh(samples: Sequence[CapacitySample], new_capacity_kwh: float, now_ms: int) -> SohEstimate:
    """Capacity and SoH now (at 25 °C), a 90 % band, the fade trend and the 80 % forecast.

    Parameters
    ----------
    samples
        The car's gated sessions (:func:`capacity_samples`), any order.
    new_capacity_kwh
        The model's usable capacity when new (the catalogue's, ``physics.usable_kwh``).
    now_ms
        When "now" is (UTC epoch ms): the estimate is the trend's value there.

    """
    anchored = [s for s in samples if s.anchored]
    use = anchored if len(anchored) >= MIN_SESSIONS else list(samples)
    basis = "anchored" if use and all(s.anchored for s in use) else "plateau"
    needed = max(0, MIN_SESSIONS - len(use))
    if needed or new_capacity_kwh <= 0:
        return SohEstimate(None, None, None, None, None, None, None, len(use), needed or MIN_SESSIONS,
                           "none", None, None, None)  # fmt: skip
    use.sort(key=lambda s: s.ts_ms)
    ts = np.array([s.ts_ms for s in use], dtype=np.float64)
    y = np.array([s.capacity_kwh for s in use]) / new_capacity_kwh * 100.0
    w = np.array([s.delta_soc_pct for s in use]) ** 2 / 100.0**2  # variance of one step / ΔSoC²
    span_days = (ts[-1] - ts[0]) / 86_400_000
    temp = np.array([np.nan if s.temp_c is None else s.temp_c for s in use])
    trend = span_days >= MIN_TREND_DAYS and len(use) >= MIN_SESSIONS + 2
    has_t = ~np.isnan(temp)
    by_temp = bool(has_t.sum() >= MIN_SESSIONS + 2 and np.ptp(temp[has_t]) >= MIN_TEMP_SPAN_K)
    sel = has_t if by_temp else np.ones(y.size, dtype=bool)
    cols = [np.ones(y.size)]
    if trend:
        cols.append((ts - now_ms) / MS_PER_YEAR)
    if by_temp:
        cols.append(np.nan_to_num(temp - REFERENCE_TEMP_C))
    coef, cov = _huber_fit(np.column_stack(cols)[sel], y[sel], w[sel])
    fade = sigma_fade = eol = None
    if trend:
        fade, sigma_fade = float(coef[1]), float(math.sqrt(max(cov[1, 1], 0.0)))
        if fade < 0:
            years_left = (END_OF_LIFE_FRACTION * 100.0 - coef[0]) / fade
            eol = int(now_ms + max(years_left, 0.0) * MS_PER_YEAR)
    t_slope = float(coef[-1]) if by_temp else None
    soh = float(coef[0])
    half = Z_90 * math.sqrt(max(cov[0, 0], 0.0))
    return SohEstimate(
        capacity_kwh=soh / 100.0 * new_capacity_kwh,
        soh_pct=soh,
        band_low_pct=soh - half,
        band_high_pct=soh + half,
        fade_pct_per_year=fade,
        fade_sigma_pct_per_year=sigma_fade,
        eol_ts_ms=eol,
        sessions_used=len(use),
        sessions_needed=0,
        basis=basis,
        temp_slope_pct_per_k=t_slope,
        window_from_ms=int(ts[0]),
        window_to_ms=int(ts[-1]),
    )


def resistance_from_steps(
    ts_ms: npt.NDArray[np.int64], current_a: F64, voltage_v: F64, *, min_step_a: float = 20.0
) -> tuple[float | None, int]:
    """Pack internal resistance (ohm) from current steps: the median of -ΔV/ΔI, and how many steps.

    A step is a change of at least ``min_step_a`` between records at most 2 s apart (faster than the
    RC relaxation, so it is mostly the ohmic R0; Plett 2015, ch. 2). NaNs are skipped.
    """
    ok = ~(np.isnan(current_a) | np.isnan(voltage_v))
    t, i, v = ts_ms[ok], current_a[ok], voltage_v[ok]
    if t.size < 2:
        return None, 0
    di, dv, dt = np.diff(i), np.diff(v), np.diff(t)
    step = (np.abs(di) >= min_step_a) & (dt <= 2000) & (dt > 0)
    r = -dv[step] / di[step]  # positive current is discharge: more current, lower voltage
    r = r[(r > 0) & (r < 5.0)]
    return (float(np.median(r)), int(r.size)) if r.size else (None, 0)


def dc_share(charges: Sequence[ChargeSession]) -> float | None:
    """Share of the car's charged energy that came from DC sessions (None: no energy known)."""
    e = [(c.energy_added_kwh or 0.0, c.current_kind == "DC") for c in charges]
    total = sum(x for x, _ in e)
    return sum(x for x, dc in e if dc) / total if total > 0 else None


@dataclass(frozen=True, slots=True)
class CarFade:
    """One car's fade trend for the fleet's picture."""

    vehicle_id: str
    model_id: str
    fade_pct_per_year: float
    sigma_pct_per_year: float
    dc_share: float | None


@dataclass(frozen=True, slots=True)
class FleetFade:
    """The fleet's fade per model: a robust centre and spread, and which cars fade faster than it."""

    model_id: str
    cars: int
    median_pct_per_year: float
    spread_pct_per_year: float  # 1.4826 x MAD: a robust standard deviation
    fast_faders: tuple[str, ...]
    dc_heavy_pct_per_year: float | None
    ac_mostly_pct_per_year: float | None


def fleet_fade(cars: Sequence[CarFade], *, z: float = 3.0, min_cars: int = 5) -> list[FleetFade]:
    """Per model: the median fade, its robust spread, and cars fading faster than median - z x spread.

    A car counts as a fast fader only when its own slope is also clear of the median by two of its own
    standard errors (a noisy trend is not an outlier). DC-heavy and AC-mostly cars' medians are shown
    apart (Geotab's 6,300-car study: DC-heavy use fades faster).
    """
    out = []
    for model in sorted({c.model_id for c in cars}):
        group = [c for c in cars if c.model_id == model]
        if len(group) < min_cars:
            continue
        rates = np.array([c.fade_pct_per_year for c in group])
        med = float(np.median(rates))
        spread = max(1.4826 * float(np.median(np.abs(rates - med))), 1e-6)
        fast = tuple(
            c.vehicle_id
            for c in group
            if c.fade_pct_per_year < med - z * spread and c.fade_pct_per_year + 2 * c.sigma_pct_per_year < med
        )
        dc = [c.fade_pct_per_year for c in group if (c.dc_share or 0.0) >= DC_HEAVY_SHARE]
        ac = [c.fade_pct_per_year for c in group if (c.dc_share or 0.0) < DC_HEAVY_SHARE]
        out.append(
            FleetFade(model, len(group), med, spread, fast,
                      float(np.median(dc)) if dc else None, float(np.median(ac)) if ac else None)
        )  # fmt: skip
    return out


# LFP cells top out at 3.6-3.65 V, NMC at 4.1-4.2 V (cell datasheets, e.g. A123 ANR26650 3.6 V vs
# Samsung INR18650 4.2 V): a cell seen above 3.8 V is not LFP; a car charged full and never above 3.7 V is.
NMC_ABOVE_V: Final = 3.8
LFP_BELOW_V: Final = 3.7


def chemistry_from_cells(cell_voltage_max_v: F64, catalogue_guess: str | None) -> str | None:
    """LFP or NMC from the highest cell voltage the car has reported, else the catalogue's guess."""
    seen = cell_voltage_max_v[~np.isnan(cell_voltage_max_v)]
    if seen.size:
        top = float(seen.max())
        if top > NMC_ABOVE_V:
            return "NMC"
        if top >= 3.4 and top < LFP_BELOW_V:  # a charged LFP cell reads 3.4-3.65 V
            return "LFP"
    return catalogue_guess
