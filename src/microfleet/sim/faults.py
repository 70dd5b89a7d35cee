"""Faults injected on a schedule: drawn per vehicle, recorded in the truth, and shown only through sensors."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.scenario import FaultRates

F64 = npt.NDArray[np.float64]

# Diagnostic trouble codes the faults raise (SAE J2012 generic codes where one exists).
DTC_MOTOR_OVERTEMP: Final = "P0A2F"  # SAE J2012: Drive Motor "A" Temperature Too High
DTC_AUX_LOW: Final = "P0562"  # SAE J2012: System Voltage Low
DTC_CELL_IMBALANCE: Final = "P0A7F"  # SAE J2012: Hybrid/EV Battery Pack Deterioration
DTC_BRAKE_WEAR: Final = "C1B00"  # no generic code: the twin's own code for "brake pad wear sensor tripped"
DTC_NAMES: Final = (DTC_MOTOR_OVERTEMP, DTC_AUX_LOW, DTC_CELL_IMBALANCE, DTC_BRAKE_WEAR)


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: which vehicle, what, from when (s since start), how fast it grows."""

    vehicle: int
    kind: str
    start_s: float
    rate_per_day: float  # kPa/day (tyre), mV/day (cell), V/day (12 V), %/day (brake); 0 for episodic
    end_s: float  # end of an episode (GPS glitch, overheating); inf = until the end of the run
    wheel: int = -1


def schedule_faults(rates: FaultRates, n_vehicles: int, days: int, rng: np.random.Generator) -> list[Fault]:
    """Draw each vehicle's faults: Poisson counts at the scenario's yearly rates, uniform start times."""
    faults: list[Fault] = []
    horizon_s = days * 86400.0
    for f in fields(FaultRates):
        rate = getattr(rates, f.name)
        counts = rng.poisson(rate * days / 365.0, n_vehicles)
        for vehicle in np.flatnonzero(counts):
            for _ in range(int(counts[vehicle])):
                start = float(rng.uniform(0.0, horizon_s))
                faults.append(_draw(f.name, int(vehicle), start, rng))
    return faults


def _draw(kind: str, vehicle: int, start: float, rng: np.random.Generator) -> Fault:
    # Growth rates are assumed, chosen so each fault becomes detectable within days to weeks.
    if kind == "tyre_slow_leak":
        return Fault(vehicle, kind, start, float(rng.uniform(3.0, 15.0)), np.inf, int(rng.integers(4)))
    if kind == "weak_cell":
        return Fault(vehicle, kind, start, float(rng.uniform(2.0, 10.0)), np.inf)
    if kind == "aux_battery_decay":
        return Fault(vehicle, kind, start, float(rng.uniform(0.03, 0.12)), np.inf)
    if kind == "brake_wear":
        return Fault(vehicle, kind, start, float(rng.uniform(1.0, 5.0)), np.inf)
    if kind == "motor_overheat":
        return Fault(vehicle, kind, start, 0.0, start + float(rng.uniform(1.0, 3.0)) * 86400.0)
    return Fault(vehicle, kind, start, 0.0, start + float(rng.uniform(120.0, 900.0)))


@dataclass
class SampleColumns:
    """The true-then-sensed values of every sample that faults may act on (edited in place)."""

    vehicle: npt.NDArray[np.int64]
    t_s: F64
    driving: npt.NDArray[np.bool_]
    parked: npt.NDArray[np.bool_]
    speed_kmh: F64
    lat_deg: F64
    lon_deg: F64
    gps_hdop: F64
    tyre_kpa: F64  # shape (n, 4)
    cell_min_v: F64
    aux_v: F64
    dtc: dict[int, list[str]]  # sample index → active trouble codes (sparse)


def apply_faults(faults: list[Fault], cols: SampleColumns, rng: np.random.Generator) -> None:
    """Let each fault act on its vehicle's samples from its start, as a real car's sensors would show it."""
    by_vehicle = np.argsort(cols.vehicle, kind="stable")
    sorted_vehicle = cols.vehicle[by_vehicle]
    for fault in faults:
        lo, hi = np.searchsorted(sorted_vehicle, [fault.vehicle, fault.vehicle + 1])
        idx = by_vehicle[lo:hi]
        t = cols.t_s[idx]
        active = (t >= fault.start_s) & (t < fault.end_s)
        idx, days = idx[active], (t[active] - fault.start_s) / 86400.0
        if fault.kind == "tyre_slow_leak":
            cols.tyre_kpa[idx, fault.wheel] = np.maximum(
                cols.tyre_kpa[idx, fault.wheel] - fault.rate_per_day * days, 40.0
            )
        elif fault.kind == "weak_cell":
            cols.cell_min_v[idx] -= fault.rate_per_day * days / 1000.0
            _codes(cols, idx[fault.rate_per_day * days > 100.0], DTC_CELL_IMBALANCE)
        elif fault.kind == "aux_battery_decay":
            drop = fault.rate_per_day * days
            cols.aux_v[idx] -= drop
            _codes(cols, idx[cols.aux_v[idx] < 11.8], DTC_AUX_LOW)
        elif fault.kind == "brake_wear":
            _codes(cols, idx[fault.rate_per_day * days > 40.0], DTC_BRAKE_WEAR)
        elif fault.kind == "motor_overheat":
            hot = idx[cols.driving[idx] & (cols.speed_kmh[idx] > 25.0)]
            _codes(cols, hot, DTC_MOTOR_OVERTEMP)
            cols.speed_kmh[hot] = np.minimum(cols.speed_kmh[hot], 40.0)  # the inverter derates
        else:  # gps_glitch
            jump_m = rng.uniform(300.0, 3000.0)
            bearing = rng.uniform(0.0, 2 * np.pi)
            cols.lat_deg[idx] += jump_m * np.cos(bearing) / 111_195.0
            cols.lon_deg[idx] += (
                jump_m * np.sin(bearing) / (111_195.0 * np.cos(np.radians(cols.lat_deg[idx])))
            )
            cols.gps_hdop[idx] = rng.uniform(8.0, 30.0, idx.size)


def _codes(cols: SampleColumns, idx: npt.NDArray[np.int64], code: str) -> None:
    for i in idx.tolist():
        codes = cols.dtc.setdefault(i, [])
        if code not in codes:
            codes.append(code)
