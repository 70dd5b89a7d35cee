"""The realistic sensor model's day: BMS SoC, counters, flags, GPS and clock as real cars send them.

Applied after :func:`microfleet.sim.sensors.sense` to one day's telemetry columns when the scenario's
``sensor_model`` is ``"realistic"``; per-car errors come from :class:`~microfleet.sim.sensor_profiles.
CarSensors`, per-trip and per-day draws from the run's own stream ([seed, 7]). The true samples are only
read. What carries from day to day (SoC error, counter bases, clock offset) is in :class:`SensorState`.
Bands with their sources are next to each constant; ``docs/twin.md`` tables them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from microfleet.sim.city import RoadNetwork
from microfleet.sim.engine import Twin
from microfleet.sim.samples import CADENCE_DRIVING_S, TrueSamples
from microfleet.sim.sensor_profiles import TYRE_TOPUP_EVERY_DAYS, CarSensors
from microfleet.sim.sensors import AUX_REST_V, CELL_SPREAD_V
from microfleet.sim.timeline import CHARGE, DRIVE, PARK
from microfleet.sim.vehicles import OCV_LFP_V, OCV_NMC_V, OCV_SOC_PCT

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# BMS SoC. Where the OCV curve is steep enough that a few mV of cell-voltage error is under 1 % of SoC,
# the BMS corrects its coulomb count from voltage (assumed threshold 4 mV per %: an LFP cell below 20 %
# or above 90 %, an NMC cell everywhere); on the LFP plateau (1-2 mV per %) it cannot, and its error
# grows until the voltage leaves the plateau, then snaps. ACCURE (accure.net, "SOC estimation errors for
# LFP batteries can exceed 15 %", 2024): LFP BMS errors of ±15 % are common in field data.
OBSERVABLE_SLOPE_MV_PER_PCT: Final = 4.0
CELL_VOLTAGE_NOISE_MV: Final = 0.5  # per reading, 1 sigma (assumed)
MAX_SOC_ERROR_PCT: Final = 40.0  # ACCURE's outliers exceed 40 %
# Flags. A driver stays in the car with the climate on after parking, ignition on and gear P, after 15 %
# of drives for 1-15 minutes (assumed); each flag drops out for stretches (1 gap per flag per car-day,
# 1-30 min, assumed); the charger flag is missing for a whole session on 5 % of sessions (assumed).
LONG_STOP_S: Final = 20.0  # a driver shifts out of D only at a stop this long (assumed)
STOPPED_KMH: Final = 0.5
CLIMATE_STAY_P: Final = 0.15
CLIMATE_STAY_S: Final = (60.0, 900.0)
FLAG_GAPS_PER_DAY: Final = 1.0
FLAG_GAP_S: Final = (60.0, 1800.0)
CHARGER_FLAG_DROPOUT_P: Final = 0.05
# GPS. The densest fifth of the city's 200 m cells (by road nodes) stands for streets between tall
# buildings, where multipath adds a slowly varying error: 15 m per axis, 1 sigma, correlated over 30 s
# (assumed; urban-canyon errors of tens of metres are typical of consumer receivers). A drive passes a
# tunnel or an underpass with probability 0.15 (assumed, Shanghai's river tunnels and elevated roads):
# 20-120 s without a fix, and the fix returns 20-80 m off, settling within 15 s (assumed). HDOP follows
# the error: at least |error| / 5 m, a consumer receiver's UERE (assumed).
CANYON_CELL_M: Final = 200.0
CANYON_QUANTILE: Final = 0.8
MULTIPATH_SD_M: Final = 15.0
MULTIPATH_TAU_S: Final = 30.0
TUNNEL_P: Final = 0.15
TUNNEL_S: Final = (20.0, 120.0)
REACQUIRE_M: Final = (20.0, 80.0)
REACQUIRE_S: Final = 15.0
GPS_UERE_M: Final = 5.0
# Clock. The device's clock drifts (CarSensors.clock_drift_ppm) and is set once a day from the network
# at a random moment (assumed); once per car-month (assumed) the network sets it wrong by ±5-30 s until
# the next day's setting, which puts a few records out of order when it steps back.
CLOCK_BAD_STEPS_PER_DAY: Final = 1.0 / 30.0
CLOCK_BAD_STEP_S: Final = (5.0, 30.0)
# Tyres, 12 V and cells (issue 18; per-car levels in sensor_profiles). A TPMS reading is missing from 3 %
# of records (assumed: a wheel sensor's frame lost, and the car then sends no pressures at all). After the
# DC-DC converter stops, a 12 V battery's surface charge lifts its rest voltage by about 0.25 V, fading
# over hours (Battery University BU-903: rest 4+ hours for a true reading; e-folding time 1.5 h assumed).
# A pack's cell spread widens under load (0.15 mV per A, assumed: cells' resistances differ by ~10 % of
# a ~1.5 mOhm cell) and below 25 % SoC, where the OCV curve steepens (8 mV, assumed).
TPMS_DROPOUT_P: Final = 0.03
SURFACE_CHARGE_V: Final = 0.25
SURFACE_CHARGE_TAU_H: Final = 1.5
CELL_SPREAD_MV_PER_A: Final = 0.15
LOW_SOC_PCT: Final = 25.0
LOW_SOC_SPREAD_MV: Final = 8.0
METRES_PER_DEG_LAT: Final = 111_195.0
DAY_S: Final = 86_400.0


@dataclass
class SensorState:
    """What the realistic sensors carry from one day to the next, per car."""

    soc_error_pct: F64
    last_true_soc_pct: F64
    counter_base_kwh: F64  # (used, recovered) x car: the raw counts at the last reset
    counter_start_kwh: F64  # (used, recovered) x car: the reading at the last reset
    clock_offset_ms: F64
    canyon_cells: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_awake_s: F64 = field(default_factory=lambda: np.zeros(0))  # per car; -inf: not awake yet

    @classmethod
    def start(cls, cars: CarSensors, net: RoadNetwork) -> SensorState:
        """The state when the run starts: the BMS right after a full charge, counters at their lifetime."""
        n = cars.current_gain.size
        return cls(
            np.zeros(n), np.full(n, np.nan), np.zeros((2, n)),
            np.stack([cars.counter_used0_kwh, cars.counter_recd0_kwh]), np.zeros(n), canyon_cells(net),
            np.full(n, -np.inf),
        )  # fmt: skip


def canyon_cells(net: RoadNetwork) -> I64:
    """Keys of the city's densest 200 m cells (sorted): where the twin puts GPS multipath."""
    keys = _cell_keys(net.lat_deg, net.lon_deg, float(np.mean(net.lat_deg)))
    cells, counts = np.unique(keys, return_counts=True)
    return cells[counts >= np.quantile(counts, CANYON_QUANTILE)]


def _cell_keys(lat: F64, lon: F64, lat0: float) -> I64:
    y = np.floor(lat * METRES_PER_DEG_LAT / CANYON_CELL_M).astype(np.int64)
    x = np.floor(lon * METRES_PER_DEG_LAT * np.cos(np.radians(lat0)) / CANYON_CELL_M).astype(np.int64)
    return np.asarray(y * 1_000_000 + x, dtype=np.int64)


@dataclass(frozen=True)
class _Cars:
    """Index helpers over a day's samples, which are in time order within each vehicle."""

    vehicle: I64
    start: I64  # index of each sample's vehicle's first sample
    last: Bools  # the vehicle's last sample of the day

    @classmethod
    def of(cls, vehicle: I64) -> _Cars:
        n = vehicle.size
        first = np.ones(n, dtype=bool)
        first[1:] = vehicle[1:] != vehicle[:-1]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        return cls(vehicle, np.maximum.accumulate(np.where(first, np.arange(n), 0)), last)


@dataclass
class SensorEvents:
    """Truth: the sensor events of a day (counter resets, clock steps, GPS outages)."""

    vehicle: list[int] = field(default_factory=list)
    t_s: list[float] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self, vehicle: int, t_s: float, kind: str, value: float) -> None:
        """Record one event."""
        self.vehicle.append(vehicle)
        self.t_s.append(t_s)
        self.kind.append(kind)
        self.value.append(value)


def apply_realistic(
    twin: Twin, s: TrueSamples, cols: dict[str, Any], state: SensorState, day: int, rng: np.random.Generator,
    signal_rng: np.random.Generator,
) -> tuple[I64, SensorEvents]:  # fmt: skip
    """Make one day's sensed columns err like real cars' (in place); return each sample's clock error (ms).

    Called only for the realistic sensor model; ``cols`` are :func:`sense`'s output for ``s``. Tyres, 12 V
    and cells draw from ``signal_rng`` (the run's [seed, 8] stream), so that adding them changed nothing
    else the realistic model draws.
    """
    cars, events = twin.sensors, SensorEvents()
    idx = _Cars.of(s.vehicle)
    if s.t_s.size == 0:
        return np.zeros(0, dtype=np.int64), events
    cols["soc_pct"] = bms_soc(twin, s, idx, state, rng)
    resets = schedule_resets(cars.counter_resets_per_year, day, rng)
    for k, name in enumerate(("energy_used_kwh", "energy_recovered_kwh")):
        cols[name] = _counters(cars, s, idx, np.asarray(cols[name]), state, k, resets, events)
    _flags(cars, s, idx, cols, day, rng)
    _gps(cars, s, idx, cols, state, rng, events)
    _maintenance_signals(cars, s, idx, cols, state, signal_rng)
    no_pack = ~cars.sends_pack[s.vehicle]
    for name in ("pack_voltage_v", "pack_current_a", "cell_voltage_min_v", "cell_voltage_max_v",
                 "energy_used_kwh", "energy_recovered_kwh"):  # fmt: skip
        cols[name] = np.where(no_pack, np.nan, cols[name])
    return _clock_ms(cars, s, idx, state, day, rng, events), events


def _maintenance_signals(
    cars: CarSensors, s: TrueSamples, idx: _Cars, cols: dict[str, Any], state: SensorState,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """Tyres, 12 V and cell voltages as real sensors read them, on top of :func:`sense`'s (faults kept)."""
    veh, n = s.vehicle, s.t_s.size
    # tyres: each sensor's offset, permeation since the owner's last monthly top-up, missing readings
    since_topup = np.mod(s.t_s / DAY_S - cars.tyre_topup_day[veh], TYRE_TOPUP_EVERY_DAYS)[:, None]
    sensed = np.asarray(cols["tyre_pressure_kpa"], dtype=np.float64) + cars.tpms_offset_kpa[veh]
    lost = cars.tyre_permeation_kpa_per_day[veh] * since_topup
    tyres = np.asarray(np.round(np.clip(sensed - lost, 0.0, None)), dtype=np.float64)
    tyres[rng.random(n) < TPMS_DROPOUT_P] = np.nan
    cols["tyre_pressure_kpa"] = tyres
    # 12 V at rest: the battery's own level plus surface charge fading since the car was last awake
    big = 1e12  # per-car keys: vehicle * big + time, so one running maximum never crosses cars
    first = idx.start == np.arange(n)
    carried = np.where(np.isfinite(state.last_awake_s[veh]), state.last_awake_s[veh], -1e11)
    key = np.where(s.awake, s.t_s, np.where(first, carried, -1e11)) + veh * big
    last_awake = np.maximum.accumulate(key) - veh * big
    state.last_awake_s[veh[idx.last]] = np.where(last_awake[idx.last] > -1e10, last_awake[idx.last], -np.inf)
    hours = (s.t_s - last_awake) / 3600.0
    rest = cars.aux_rest_v[veh] - AUX_REST_V + SURFACE_CHARGE_V * np.exp(-hours / SURFACE_CHARGE_TAU_H)
    cols["aux_battery_v"] = np.round(np.asarray(cols["aux_battery_v"]) + np.where(s.awake, 0.0, rest), 2)
    # cells: the pack's own spread, wider under load and at low SoC, read with the BMS's noise and bias
    spread_mv = (
        cars.cell_spread_mv[veh] + CELL_SPREAD_MV_PER_A * np.abs(s.pack_current_a)
        + np.where(s.soc_pct < LOW_SOC_PCT, LOW_SOC_SPREAD_MV, 0.0)
    )  # fmt: skip
    widen_v = (spread_mv - 1000.0 * CELL_SPREAD_V) / 2000.0
    bias_v = cars.cell_voltage_bias_mv[veh] / 1000.0
    noise_v = rng.normal(0.0, CELL_VOLTAGE_NOISE_MV / 1000.0, (2, n))
    cols["cell_voltage_min_v"] = np.round(
        np.asarray(cols["cell_voltage_min_v"]) - widen_v + bias_v + noise_v[0], 3
    )
    cols["cell_voltage_max_v"] = np.round(
        np.asarray(cols["cell_voltage_max_v"]) + widen_v + bias_v + noise_v[1], 3
    )


def ocv_slope_mv_per_pct(soc_pct: F64, is_lfp: Bools) -> F64:
    """Slope of the cell's open-circuit voltage against SoC at ``soc_pct`` (mV per %)."""
    seg = np.clip(np.searchsorted(OCV_SOC_PCT, soc_pct, side="right") - 1, 0, OCV_SOC_PCT.size - 2)
    d_soc = np.diff(OCV_SOC_PCT)
    lfp = np.diff(OCV_LFP_V) / d_soc * 1000.0
    nmc = np.diff(OCV_NMC_V) / d_soc * 1000.0
    return np.where(is_lfp, lfp[seg], nmc[seg])


def bms_soc(twin: Twin, s: TrueSamples, idx: _Cars, state: SensorState, rng: np.random.Generator) -> F64:
    """The SoC the BMS reports, in the profile's steps (rounded down).

    Coulomb counting with the sensed current against the capacity the BMS believes in, corrected from cell
    voltage wherever the OCV curve is steep enough.
    """
    cars, veh, n = twin.sensors, s.vehicle, s.t_s.size
    usable = np.array([v.model.usable_kwh for v in twin.fleet])[veh]
    lfp = np.array([v.model.chemistry == "LFP" for v in twin.fleet])[veh]
    first = idx.start == np.arange(n)
    prev_soc = np.empty(n)
    prev_soc[1:] = s.soc_pct[:-1]
    carried = state.last_true_soc_pct[veh]
    prev_soc[first] = np.where(np.isnan(carried), s.soc_pct, carried)[first]
    factor = cars.current_gain[veh] * s.capacity_kwh / (usable * cars.bms_capacity_belief[veh])
    dt_h = np.diff(s.t_s, prepend=s.t_s[:1]) / 3600.0
    dt_h[first] = 0.0
    offset_a = cars.sensed_current_a(np.zeros(n), veh, s.pack_temp_c)
    # the offset counts only while the BMS is awake; positive reads as discharge, so the BMS SoC falls
    offset_pct = np.where(s.awake, offset_a * dt_h * s.pack_voltage_v, 0.0) / (usable * 10.0)
    incr = (s.soc_pct - prev_soc) * (factor - 1.0) - offset_pct
    slope = ocv_slope_mv_per_pct(s.soc_pct, lfp)
    volt_err = cars.cell_voltage_bias_mv[veh] + rng.normal(0.0, CELL_VOLTAGE_NOISE_MV, n)
    recal = slope >= OBSERVABLE_SLOPE_MV_PER_PCT
    c = np.cumsum(incr)
    last = np.maximum.accumulate(np.where(recal, np.arange(n), -1))
    since_recal = last >= idx.start
    at = np.maximum(last, 0)
    before_day = c[idx.start] - incr[idx.start]
    err = np.where(
        since_recal, volt_err[at] / slope[at] + c - c[at], state.soc_error_pct[veh] + c - before_day
    )
    err = np.clip(err, -MAX_SOC_ERROR_PCT, MAX_SOC_ERROR_PCT)
    state.soc_error_pct[veh[idx.last]] = err[idx.last]
    state.last_true_soc_pct[veh[idx.last]] = s.soc_pct[idx.last]
    step = cars.soc_step_pct[veh]
    reported = np.clip(s.soc_pct + err, 0.0, 100.0)
    return np.asarray(np.round(np.floor(np.round(reported / step, 6)) * step, 6), dtype=np.float64)


def schedule_resets(per_year: F64, day: int, rng: np.random.Generator) -> tuple[I64, F64]:
    """Counter resets of one day: (vehicle, time in s since the run's start), Poisson at each car's rate."""
    count = rng.poisson(per_year / 365.0)
    vehicle = np.repeat(np.arange(per_year.size), count)
    t_s = day * DAY_S + rng.uniform(0.0, DAY_S, vehicle.size)
    order = np.lexsort((t_s, vehicle))  # in time order per car: a later reset starts from an earlier one
    return vehicle[order], t_s[order]


def _counters(
    cars: CarSensors, s: TrueSamples, idx: _Cars, raw: F64, state: SensorState, k: int,
    resets: tuple[I64, F64], events: SensorEvents,
) -> F64:  # fmt: skip
    """Lifetime counter readings: the start reading plus what was counted since the last reset, wrapped."""
    veh = s.vehicle
    base = state.counter_base_kwh[k][veh]
    start = state.counter_start_kwh[k][veh]
    for v, t_r in zip(*resets, strict=True):
        rows = np.flatnonzero(veh == v)
        if rows.size == 0 or s.t_s[rows[-1]] < t_r:
            continue  # in the minutes after the car's last sample of the day: not applied (rare)
        j = rows[np.searchsorted(s.t_s[rows], t_r)]
        base[j : rows[-1] + 1] = raw[j]
        start[j : rows[-1] + 1] = 0.0
        if k == 0:
            events.add(int(v), float(s.t_s[j]), "counter_reset", 0.0)
    state.counter_base_kwh[k][veh[idx.last]] = base[idx.last]
    state.counter_start_kwh[k][veh[idx.last]] = start[idx.last]
    total = start + raw - base
    wrap = cars.counter_wrap_kwh[veh]
    total = np.where(np.isfinite(wrap), np.mod(total, np.where(np.isfinite(wrap), wrap, 1.0)), total)
    step = cars.counter_step_kwh[veh]
    return np.asarray(np.round(np.floor(np.round(total / step, 6)) * step, 6), dtype=np.float64)


def _gap_mask(s: TrueSamples, idx: _Cars, vehicles: int, day: int, rng: np.random.Generator) -> Bools:
    """Samples inside a flag's dropouts: Poisson gaps per car-day at uniform times."""
    count = rng.poisson(FLAG_GAPS_PER_DAY, vehicles)
    vehicle = np.repeat(np.arange(vehicles), count)
    t0 = day * DAY_S + rng.uniform(0.0, DAY_S, vehicle.size)
    t1 = t0 + rng.uniform(*FLAG_GAP_S, vehicle.size)
    # samples are sorted by (vehicle, time): find each gap's rows by a search on a combined key
    key = s.vehicle * 2.0 * DAY_S * (day + 2) + s.t_s
    lo = np.searchsorted(key, vehicle * 2.0 * DAY_S * (day + 2) + t0)
    hi = np.searchsorted(key, vehicle * 2.0 * DAY_S * (day + 2) + t1)
    edges = np.zeros(s.t_s.size + 1, dtype=np.int64)
    np.add.at(edges, lo, 1)
    np.add.at(edges, hi, -1)
    return np.cumsum(edges[:-1]) > 0


def _flags(
    cars: CarSensors, s: TrueSamples, idx: _Cars, cols: dict[str, Any], day: int, rng: np.random.Generator
) -> None:
    """Gear, ignition and charger flags: shifts at long stops, climate on while parked, lags, gaps."""
    veh, n = s.vehicle, s.t_s.size
    n_seg = int(s.segment.max()) + 1
    ar = np.arange(n)
    driving = s.kind == DRIVE
    stopped = driving & (s.speed_kmh < STOPPED_KMH)
    last_moving = np.maximum.accumulate(np.where(~stopped | (idx.start == ar), ar, 0))
    long_stop = stopped & (s.t_s - s.t_s[last_moving] >= LONG_STOP_S)
    shifts = long_stop & (rng.random(n)[last_moving] < cars.shift_habit[veh])
    gear = np.where(driving, "D", "P").astype(object)
    gear[shifts] = cars.stop_gear[veh[shifts]]
    # after a drive, some drivers sit on with the climate on: ignition on, gear P, doors locked no more
    seg_first = np.maximum.accumulate(np.where(np.diff(s.segment, prepend=-1) != 0, ar, 0))
    after_drive = (seg_first > idx.start) & (s.kind[np.maximum(seg_first - 1, 0)] == DRIVE)
    stay_s = np.where(rng.random(n_seg) < CLIMATE_STAY_P, rng.uniform(*CLIMATE_STAY_S, n_seg), 0.0)
    climate = (s.kind == PARK) & after_drive & (s.since_start_s < stay_s[s.segment])
    ignition = (driving | climate).astype(object)
    cols["hvac_on"] = np.asarray(cols["hvac_on"]) | climate
    cols["locked"] = np.asarray(cols["locked"]) & ~climate
    charger = np.asarray(cols["charger_connected"]).astype(object)
    # each segment's flags trail the true state by 0..the car's lag in samples, never across cars
    seg_vehicle = np.zeros(n_seg, dtype=np.int64)
    seg_vehicle[s.segment] = veh
    lag = np.floor(rng.random(n_seg) * (cars.flag_lag_max[seg_vehicle] + 1)).astype(np.int64)
    src = np.maximum(ar - lag[s.segment], idx.start)
    gear, ignition, charger = gear[src], ignition[src], charger[src]
    dropped = rng.random(n_seg) < CHARGER_FLAG_DROPOUT_P
    charger[(s.kind == CHARGE) & dropped[s.segment]] = None
    n_cars = cars.current_gain.size
    for flag, sent in ((gear, cars.sends_gear), (ignition, cars.sends_ignition), (charger, None)):
        flag[_gap_mask(s, idx, n_cars, day, rng)] = None
        if sent is not None:
            flag[~sent[veh]] = None
    cols["gear"], cols["ignition_on"], cols["charger_connected"] = gear, ignition, charger


def _gps(
    cars: CarSensors, s: TrueSamples, idx: _Cars, cols: dict[str, Any], state: SensorState,
    rng: np.random.Generator, events: SensorEvents,
) -> None:  # fmt: skip
    """Multipath in dense streets (correlated while driving), tunnel dropouts, a jump as the fix returns."""
    veh, n = s.vehicle, s.t_s.size
    lat0 = float(np.mean(s.lat_deg))
    canyon = np.isin(_cell_keys(s.lat_deg, s.lon_deg, lat0), state.canyon_cells, assume_unique=False)
    sd_m = MULTIPATH_SD_M * cars.gps_factor[veh] * canyon
    rho = np.exp(-CADENCE_DRIVING_S / MULTIPATH_TAU_S)
    err = rng.normal(0.0, 1.0, (2, n))
    drive = np.flatnonzero(s.kind == DRIVE)
    # drive samples are 5 s apart: an AR(1) over them is the correlated error; parked fixes are minutes apart
    err[:, drive] = lfilter([np.sqrt(1.0 - rho**2)], [1.0, -rho], err[:, drive], axis=1)
    err *= sd_m
    n_seg = int(s.segment.max()) + 1
    dur = np.zeros(n_seg)
    np.maximum.at(dur, s.segment, s.since_start_s)
    seg_kind = np.full(n_seg, PARK)
    seg_kind[s.segment] = s.kind
    tunnel = (seg_kind == DRIVE) & (rng.random(n_seg) < TUNNEL_P)
    t_in = rng.uniform(0.0, 1.0, n_seg) * dur
    t_out = t_in + rng.uniform(*TUNNEL_S, n_seg)
    rel_in, rel_out = t_in[s.segment], t_out[s.segment]
    in_tunnel = tunnel[s.segment]
    no_fix = in_tunnel & (s.since_start_s >= rel_in) & (s.since_start_s < rel_out)
    settle = in_tunnel & (s.since_start_s >= rel_out) & (s.since_start_s < rel_out + REACQUIRE_S)
    jump_m = rng.uniform(*REACQUIRE_M, n_seg)
    bearing = rng.uniform(0.0, 2.0 * np.pi, n_seg)
    fade = 1.0 - (s.since_start_s - rel_out) / REACQUIRE_S
    jump = np.where(settle, jump_m[s.segment] * fade, 0.0)
    err[0] += jump * np.cos(bearing[s.segment])
    err[1] += jump * np.sin(bearing[s.segment])
    for seg in np.flatnonzero(tunnel & (t_in < dur)).tolist():
        rows = np.flatnonzero(s.segment == seg)
        events.add(
            int(veh[rows[0]]), float(s.t_s[rows[0]] + t_in[seg]), "gps_outage", float(t_out[seg] - t_in[seg])
        )
    cos_lat = np.cos(np.radians(s.lat_deg))
    lat = np.asarray(cols["lat_deg"]) + err[0] / METRES_PER_DEG_LAT
    lon = np.asarray(cols["lon_deg"]) + err[1] / (METRES_PER_DEG_LAT * cos_lat)
    hdop = np.maximum(np.asarray(cols["gps_hdop"]), np.hypot(err[0], err[1]) / GPS_UERE_M)
    cols["lat_deg"] = np.where(no_fix, np.nan, np.round(lat, 6))
    cols["lon_deg"] = np.where(no_fix, np.nan, np.round(lon, 6))
    cols["gps_hdop"] = np.where(no_fix, np.nan, np.round(np.minimum(hdop, 99.9), 1))
    cols["heading_deg"] = np.where(no_fix, np.nan, cols["heading_deg"])


def _clock_ms(
    cars: CarSensors, s: TrueSamples, idx: _Cars, state: SensorState, day: int, rng: np.random.Generator,
    events: SensorEvents,
) -> I64:  # fmt: skip
    """Each sample's device-clock error: drift, a daily setting from the network, rare wrong steps, jitter."""
    veh, n_cars = s.vehicle, cars.current_gain.size
    day0 = day * DAY_S
    sync = day0 + rng.uniform(0.0, DAY_S, n_cars)
    bad = rng.random(n_cars) < CLOCK_BAD_STEPS_PER_DAY
    bad_t = day0 + rng.uniform(0.0, DAY_S, n_cars)
    bad_ms = (
        np.where(bad, rng.choice([-1.0, 1.0], n_cars) * rng.uniform(*CLOCK_BAD_STEP_S, n_cars), 0.0) * 1000
    )
    drift_ms_per_s = cars.clock_drift_ppm * 1e-3

    def offset(v: I64, t: F64) -> F64:
        synced = t >= sync[v]
        out = np.where(
            synced,
            drift_ms_per_s[v] * (t - sync[v]),
            state.clock_offset_ms[v] + drift_ms_per_s[v] * (t - day0),
        )
        # a wrong setting lasts until the next good one
        wrong = (t >= bad_t[v]) & ~((bad_t[v] < sync[v]) & synced)
        return np.asarray(out + np.where(wrong, bad_ms[v], 0.0), dtype=np.float64)

    for v in np.flatnonzero(bad).tolist():
        events.add(v, float(bad_t[v]), "clock_step", float(bad_ms[v]))
    jitter = np.clip(rng.normal(0.0, 1.0, s.t_s.size), -3.0, 3.0) * cars.clock_jitter_sd_ms[veh]
    clock = np.round(offset(veh, s.t_s) + jitter).astype(np.int64)
    all_cars = np.arange(n_cars)
    state.clock_offset_ms[:] = offset(all_cars, np.full(n_cars, day0 + DAY_S))
    return _unique_per_vehicle(veh, np.round(s.t_s * 1000.0).astype(np.int64), clock)


def _unique_per_vehicle(vehicle: I64, true_ms: I64, clock_ms: I64) -> I64:
    """Nudge clock errors by whole ms so no two records of a car share a timestamp (a conflict)."""
    while True:
        ts = true_ms + clock_ms
        order = np.lexsort((ts, vehicle))
        same = (np.diff(ts[order]) == 0) & (np.diff(vehicle[order]) == 0)
        if not same.any():
            return clock_ms
        clock_ms[order[1:][same]] += 1
