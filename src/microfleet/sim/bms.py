"""The BMS's lifetime energy counters, reported as ``energy_used_kwh`` and ``energy_recovered_kwh``.

A car's BMS integrates the pack current it *measures* (the true current plus the car's current-sensor zero
offset, :attr:`TwinVehicle.current_offset_a`; in the realistic sensor model also the sensor's gain error and
the offset's temperature drift, :class:`~microfleet.sim.sensor_profiles.CarSensors`) times the measured pack
voltage at the simulation's 1 s step, while the car is awake: every second of a drive and of a charge, and the
first minutes parked. Asleep, its contactors are open and it counts nothing. Energy leaving the pack goes to
"used", energy entering it (regeneration, charging) to "recovered", second by second. These are sensor
readings, not truth: over a drive they carry offset x the integral of pack voltage (about 30 W on a 96 V pack
with a 0.3 A offset). The truth files never see them.

Readings are quantised to :data:`COUNTER_STEP_KWH`. OVMS v3 maps such counters to
``v.b.energy.used.total`` / ``v.b.energy.recd.total`` (``main/metrics_standard.h``) and its VW e-Up
dashboard shows them with three decimals (``components/vehicle_vweup/src/vweup_web.cpp``,
``data-prec="3"``); the e-Up's own BMS counter steps by 250200 kWh / 2^31, about 0.12 Wh
(``vweup_obd.cpp``), finer than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.engine import DayResult, Twin
from microfleet.sim.samples import AWAKE_AFTER_STOP_S, PACK_WARMING_K, PARKED_AWAKE_KW, TrueSamples
from microfleet.sim.timeline import CHARGE, DRIVE, MIN_SOC_PCT
from microfleet.sim.vehicles import pack_state

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

COUNTER_STEP_KWH: Final = 0.001  # three decimals, as OVMS v3 shows these counters (see the module docstring)


@dataclass
class _Seconds:
    """Every awake second of the day's drives and charges, flat: its segment, true state and weight."""

    segment: I64
    power_kw: F64
    soc_pct: F64
    weight: F64  # 1, or the fraction of a segment's last, partial second


def _drive_and_charge_seconds(result: DayResult) -> tuple[_Seconds, I64, I64]:
    """The per-second grid of drive and charge segments, with each segment's first row and row count.

    Rows hold every drive's seconds, then every charge's, each segment's rows in time order.
    """
    s, tr = result.segments, result.traces
    kind = np.array(s.kind, dtype=np.int64)
    start = np.array(s.start_s, dtype=np.float64)
    dur = np.array(s.end_s, dtype=np.float64) - start
    soc0 = np.array(s.soc0_pct, dtype=np.float64)
    count = np.zeros(kind.size, dtype=np.int64)
    first_row = np.zeros(kind.size, dtype=np.int64)
    parts = [_Seconds(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0))]
    drives = np.flatnonzero(kind == DRIVE)
    if drives.size:
        power = [tr.power_kw[s.trace[i]] for i in drives.tolist()]
        count[drives] = [p.size for p in power]
        first_row[drives] = np.cumsum(count[drives]) - count[drives]
        seg = np.repeat(drives, count[drives])
        flat = np.concatenate(power)
        cap = np.array(s.capacity_kwh, dtype=np.float64)[seg]
        # energy out before each second, within its drive: the true SoC at the start of that second
        before = np.cumsum(flat) / 3600.0 - flat / 3600.0
        before -= before[first_row[seg]]
        soc = np.maximum(soc0[seg] - before / cap * 100.0, MIN_SOC_PCT)
        parts.append(_Seconds(seg, flat, soc, np.ones(flat.size)))
    charges = np.flatnonzero(kind == CHARGE)
    if charges.size:
        count[charges] = np.ceil(dur[charges]).astype(np.int64)
        offset = np.cumsum(count[charges]) - count[charges]
        first_row[charges] = offset + int(count[drives].sum())
        seg = np.repeat(charges, count[charges])
        k = np.arange(seg.size) - np.repeat(offset, count[charges])
        soc1 = np.array(s.soc1_pct, dtype=np.float64)[seg]
        soc = soc0[seg] + (soc1 - soc0[seg]) * k / np.maximum(dur[seg], 1e-9)
        charge_kw = -np.array(s.power_kw, dtype=np.float64)[seg]
        parts.append(_Seconds(seg, charge_kw, soc, np.minimum(1.0, dur[seg] - k)))
    grid = _Seconds(
        np.concatenate([p.segment for p in parts]),
        np.concatenate([p.power_kw for p in parts]),
        np.concatenate([p.soc_pct for p in parts]),
        np.concatenate([p.weight for p in parts]),
    )
    return grid, first_row, count


@dataclass
class BmsCounters:
    """Each car's two lifetime counters (kWh), carried from day to day like the sensors' noise stream."""

    used_kwh: F64
    recd_kwh: F64

    @classmethod
    def fitted_now(cls, vehicles: int) -> BmsCounters:
        """Counters of cars whose telematics unit was fitted when the run starts: both at zero."""
        return cls(np.zeros(vehicles), np.zeros(vehicles))

    def advance(self, twin: Twin, result: DayResult, samples: TrueSamples) -> tuple[F64, F64]:
        """Count one simulated day; return the (used, recovered) readings at every sample, in kWh."""
        s = result.segments
        n_seg = len(s.kind)
        if n_seg == 0:
            return np.zeros(samples.t_s.size), np.zeros(samples.t_s.size)
        fleet, cars = twin.fleet, twin.sensors
        cells = np.array([v.model.cells_series for v in fleet], dtype=np.float64)
        lfp = np.array([v.model.chemistry == "LFP" for v in fleet])
        seg_vehicle = np.array(s.vehicle, dtype=np.int64)
        grid, first_row, count = _drive_and_charge_seconds(result)
        gv = seg_vehicle[grid.segment]
        # the sensor's temperature, for its offset drift: the pack's at the segment's start
        start_s = np.array(s.start_s, dtype=np.float64)
        kind = np.array(s.kind, dtype=np.int64)
        seg_temp_c = twin.world.weather.at(start_s) + np.where(
            kind == DRIVE, PACK_WARMING_K[DRIVE], np.where(kind == CHARGE, PACK_WARMING_K[CHARGE], 0.0)
        )
        volt, current, _ = pack_state(grid.soc_pct, grid.power_kw, cells[gv], lfp[gv])
        sensed_a = cars.sensed_current_a(current, gv, seg_temp_c[grid.segment])
        measured_kw = volt * cars.voltage_gain[gv] * sensed_a / 1000.0
        prefix_used = np.concatenate([[0.0], np.cumsum(np.maximum(measured_kw, 0.0) * grid.weight / 3600.0)])
        prefix_recd = np.concatenate([[0.0], np.cumsum(np.maximum(-measured_kw, 0.0) * grid.weight / 3600.0)])
        # Parked: constant awake load for the first minutes (true SoC holds still), then asleep, counting 0.
        soc0 = np.array(s.soc0_pct, dtype=np.float64)
        awake_kw = np.full(n_seg, PARKED_AWAKE_KW)
        park_v, park_i, _ = pack_state(soc0, awake_kw, cells[seg_vehicle], lfp[seg_vehicle])
        park_a = cars.sensed_current_a(park_i, seg_vehicle, seg_temp_c)
        park_kw = park_v * cars.voltage_gain[seg_vehicle] * park_a / 1000.0
        is_grid = count > 0
        dur = np.array(s.end_s, dtype=np.float64) - np.array(s.start_s, dtype=np.float64)
        awake_h = np.where(is_grid, 0.0, np.minimum(dur, AWAKE_AFTER_STOP_S) / 3600.0)
        last = first_row + count
        total_used = np.where(
            is_grid, prefix_used[last] - prefix_used[first_row], np.maximum(park_kw, 0) * awake_h
        )
        total_recd = np.where(
            is_grid, prefix_recd[last] - prefix_recd[first_row], np.maximum(-park_kw, 0) * awake_h
        )
        used0 = self._segment_starts(self.used_kwh, seg_vehicle, np.array(s.start_s), total_used)
        recd0 = self._segment_starts(self.recd_kwh, seg_vehicle, np.array(s.start_s), total_recd)
        # readings: the counter at the segment's start plus what it counted in the whole seconds since
        seg, rel = samples.segment, samples.since_start_s
        on_grid = is_grid[seg]
        k = np.minimum(np.floor(rel).astype(np.int64), count[seg])
        row = np.where(on_grid, first_row[seg] + k, 0)
        base = np.where(on_grid, first_row[seg], 0)
        park_h = np.minimum(rel, AWAKE_AFTER_STOP_S) / 3600.0
        used = used0[seg] + np.where(
            on_grid, prefix_used[row] - prefix_used[base], np.maximum(park_kw[seg], 0) * park_h
        )
        recd = recd0[seg] + np.where(
            on_grid, prefix_recd[row] - prefix_recd[base], np.maximum(-park_kw[seg], 0) * park_h
        )
        self.used_kwh += np.bincount(seg_vehicle, total_used, minlength=len(fleet))
        self.recd_kwh += np.bincount(seg_vehicle, total_recd, minlength=len(fleet))
        return _quantise(used), _quantise(recd)

    @staticmethod
    def _segment_starts(day_start: F64, vehicle: I64, start_s: F64, total: F64) -> F64:
        """Each segment's counter at its start: the car's reading at midnight plus its earlier segments."""
        order = np.lexsort((start_s, vehicle))
        ordered = total[order]
        before = np.cumsum(ordered) - ordered  # running sum over all cars, exclusive
        v = vehicle[order]
        first_of_car = np.r_[True, v[1:] != v[:-1]]
        car_start = np.maximum.accumulate(np.where(first_of_car, np.arange(v.size), 0))
        out = np.empty_like(total)
        out[order] = day_start[v] + before - before[car_start]
        return out


def _quantise(kwh: F64) -> F64:
    return np.asarray(np.round(np.round(kwh / COUNTER_STEP_KWH) * COUNTER_STEP_KWH, 6), dtype=np.float64)
