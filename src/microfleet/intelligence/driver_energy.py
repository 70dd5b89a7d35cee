"""Which drivers cost energy: per-drive kWh/km controlled for car, temperature and route, with driver effects.

A ridge-penalised least-squares fit of ``log(kWh/km)`` per drive on: the car (one column per vehicle
model), the ambient temperature (hinges below 15 °C and above 25 °C: heating and cooling, whose kWh the
climate control draws also from the traction pack), the route (log of the distance-weighted speed the
roads allow, from the map, not the speed driven, which is part of the driver's style; stops per km, which
red lights set), the hour (peak or not: congestion) and one column per driver. A driver's *energy factor*
is ``exp(driver coefficient)`` over the fleet's median driver: 1.10 means 10 % more energy per km than the
median driver would use on the same drives in the same car and weather. The penalty pulls drivers with few
drives towards the median instead of ranking them on noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

COLD_BELOW_C: Final = 15.0  # heating demand starts below ~15 °C (degree-day base for heating, EN ISO 15927-6)
HOT_ABOVE_C: Final = 25.0  # cooling demand above ~25 °C (assumed; cooling degree-day bases run 18-26 °C)
PEAK_HOURS: Final = frozenset({7, 8, 9, 17, 18, 19})  # local rush hours (assumed, Shanghai's peaks)
DRIVER_PENALTY: Final = 2.0  # ridge weight on driver effects, in drives (Microfleet's choice, see doc)
MIN_DRIVES: Final = 5  # fewer drives: "learning", not a factor
MIN_DISTANCE_KM: Final = 0.5  # shorter drives say more about the parking manoeuvre than about the driver


@dataclass(frozen=True, slots=True)
class DriveEnergy:
    """One drive as the attribution sees it; ``energy_kwh`` is traction energy (:func:`traction_kwh`)."""

    driver: str
    model_id: str
    distance_km: float
    energy_kwh: float
    ambient_temp_c: float
    road_speed_kmh: float  # distance-weighted speed the roads allow (limit, else the class's design speed)
    stops: int  # standstills of at least 5 s
    local_hour: int


@dataclass(frozen=True, slots=True)
class DriverEnergy:
    """One driver's controlled energy factor and what it costs: 1.0 = the fleet's median driver."""

    driver: str
    drives: int
    distance_km: float
    energy_kwh: float
    kwh_per_km: float  # raw, uncontrolled
    energy_factor: float | None  # None while learning (fewer than MIN_DRIVES drives)
    excess_kwh: float  # energy above what the median driver would have used on the same drives (≥ 0)


def _features(drives: Sequence[DriveEnergy], models: list[str]) -> F64:
    temp = np.array([d.ambient_temp_c for d in drives])
    temp = np.where(np.isfinite(temp), temp, 20.0)
    km = np.array([d.distance_km for d in drives])
    cols = [np.array([d.model_id == m for d in drives], dtype=np.float64) for m in models]
    cols += [
        np.maximum(COLD_BELOW_C - temp, 0.0),
        np.maximum(temp - HOT_ABOVE_C, 0.0),
        np.log(np.clip([d.road_speed_kmh for d in drives], 5.0, 130.0)),
        np.array([d.stops for d in drives]) / np.maximum(km, 0.1),
        np.array([d.local_hour in PEAK_HOURS for d in drives], dtype=np.float64),
    ]
    return np.column_stack(cols)


def attribute(drives: Sequence[DriveEnergy], penalty: float = DRIVER_PENALTY) -> list[DriverEnergy]:
    """Each driver's energy factor over the fleet's median driver, controlled for car, weather and route."""
    use = [d for d in drives if d.distance_km >= MIN_DISTANCE_KM and d.energy_kwh > 0]
    names = sorted({d.driver for d in drives})
    if not use:
        return [_summary(n, [], None, 0.0) for n in names]
    models = sorted({d.model_id for d in use})
    drivers = sorted({d.driver for d in use})
    x_ctrl = _features(use, models)
    who = np.array([drivers.index(d.driver) for d in use])
    x_drv = np.zeros((len(use), len(drivers)))
    x_drv[np.arange(len(use)), who] = 1.0
    y = np.log(np.array([d.energy_kwh / d.distance_km for d in use]))
    w = np.sqrt(np.array([d.distance_km for d in use]))  # longer drives: less noise per km
    x = np.column_stack([x_ctrl, x_drv])
    # ridge only on the driver columns (controls unpenalised; a tiny ridge keeps them solvable)
    ridge = np.concatenate([np.full(x_ctrl.shape[1], 1e-6), np.full(len(drivers), penalty)])
    xw = x * w[:, None]
    coef = np.linalg.solve(xw.T @ xw + np.diag(ridge * np.mean(w**2)), xw.T @ (y * w))
    effect = coef[x_ctrl.shape[1] :]
    counts = np.bincount(who, minlength=len(drivers))
    learned = counts >= MIN_DRIVES
    centre = float(np.median(effect[learned])) if learned.any() else 0.0
    out = []
    for name in names:
        mine = [d for d in use if d.driver == name]
        if name in drivers and learned[drivers.index(name)]:
            factor = float(np.exp(effect[drivers.index(name)] - centre))
            kwh = sum(d.energy_kwh for d in mine)
            out.append(_summary(name, mine, factor, max(kwh * (1.0 - 1.0 / factor), 0.0)))
        else:
            out.append(_summary(name, mine, None, 0.0))
    return out


def _summary(name: str, mine: Sequence[DriveEnergy], factor: float | None, excess: float) -> DriverEnergy:
    km = sum(d.distance_km for d in mine)
    kwh = sum(d.energy_kwh for d in mine)
    return DriverEnergy(name, len(mine), km, kwh, kwh / km if km > 0 else float("nan"), factor, excess)


def raw_kwh_per_km(drives: Sequence[DriveEnergy]) -> dict[str, float]:
    """The uncontrolled baseline: each driver's total kWh over total km."""
    out: dict[str, list[float]] = {}
    for d in drives:
        if d.distance_km >= MIN_DISTANCE_KM and d.energy_kwh > 0:
            acc = out.setdefault(d.driver, [0.0, 0.0])
            acc[0] += d.energy_kwh
            acc[1] += d.distance_km
    return {k: v[0] / v[1] for k, v in out.items() if v[1] > 0}


def traction_kwh(power_kw: F64, speed_kmh: F64, ts_ms: npt.NDArray[np.int64]) -> float:
    """A drive's energy less what the car draws standing still (climate, 12 V, electronics), in kWh.

    The standstill draw is the median battery power at samples under 0.5 km/h within the drive, taken as
    constant over the drive: the climate's and auxiliaries' share depends on weather and on the driver's
    time (which a faster driver shortens), not on how they drive, so it would blur the driving style.
    """
    t = ts_ms.astype(np.float64) / 1000.0
    ok = np.isfinite(power_kw)
    if t.size < 2 or not ok.any():
        return float("nan")
    d = np.diff(t)
    w = np.concatenate([[d[0] / 2], (d[:-1] + d[1:]) / 2, [d[-1] / 2]])
    still = ok & (np.nan_to_num(speed_kmh, nan=99.0) < 0.5)
    standstill_kw = float(np.median(power_kw[still])) if still.any() else 0.0
    energy_kwh = float((power_kw[ok] * w[ok]).sum() / 3600.0)
    return energy_kwh - max(standstill_kw, 0.0) * float(w.sum()) / 3600.0


def count_stops(speed_kmh: F64, ts_ms: npt.NDArray[np.int64], min_stop_s: float = 5.0) -> int:
    """Standstills (speed under 2 km/h) lasting at least ``min_stop_s``, ends of the drive excluded."""
    still = np.nan_to_num(speed_kmh, nan=0.0) < 2.0
    if still.size < 3:
        return 0
    edges = np.diff(np.concatenate([[0], still.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    inner = (starts > 0) & (ends < still.size - 1)
    dur = (ts_ms[ends] - ts_ms[starts]) / 1000.0
    return int(np.count_nonzero(inner & (dur >= min_stop_s)))
