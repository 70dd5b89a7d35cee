"""Maintenance detectors against the twin's injected faults: lead time, precision, recall, AUROC, false
alarms.

``--fleet twin`` (the default) runs the whole twin: people, routes, second-by-second driving and charging,
the realistic sensor model (tyres, 12 V and cells included: ``sim/sensor_errors.py``), faults at the
scenario's default rates and the link, in groups of ``GROUP_CARS`` cars (each group its own twin city
seed, ``seed * 1000 + group``), ``--jobs`` groups at a time. Each car's telemetry, deduplicated and in
time order as the store keeps it, becomes the detectors' series through ``CarSeries.from_columns``, the
same mapping the maintenance service uses. The truth (``twin.faults``) is read only for scoring.

``--fleet sampled`` is the earlier, cheaper fleet, kept for comparison: the twin's own
``schedule_faults`` draws each car's faults at the scenario's default rates (``FaultRates``) and
``apply_faults`` makes them act on sample columns laid out as ``sim/sensors.sense`` lays them (tyre
pressure with the twin's temperature term, 12 V at rest and awake, cell min/max, GPS), every 5 minutes.
On top, the same sensor errors the twin's realistic model now has for these signals: per-wheel TPMS
offsets, natural tyre permeation and monthly top-ups, TPMS dropouts, the 12 V battery's surface charge
after a drive, each pack's own cell spread widening with load, cell-voltage noise and bias
(``sensor_errors.CELL_VOLTAGE_NOISE_MV``), and a Shanghai-like temperature year.
It skips people, routes and physics.

Thresholds were tuned on seed 11: on the sampled fleet (``--fleet sampled --seed 11 --quick``), and the 12 V
rule's rest-reading count on the whole twin's seed 11; the committed results score seed 3, not looked at
before: ``python bench/maintenance.py --seed 3 --jobs 2`` (full: 1,000 cars, 182 days) or ``--quick``
(100 cars, 60 days). Driver behaviour's rows are merged from ``bench/driver_eval.py``'s own scenario.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driver_eval import driver_rows  # bench/ is on sys.path when this file runs as a script
from microfleet.intelligence.maintenance import aux_battery, cells, diagnostics, tyres
from microfleet.intelligence.maintenance.learned import ResidualForest, residual_features
from microfleet.intelligence.maintenance.series import BUCKET_MS, DAY_MS, SERIES_SIGNALS, CarSeries
from microfleet.services.maintenance import WINDOW_DAYS
from microfleet.sim.engine import Twin
from microfleet.sim.faults import Fault, SampleColumns, apply_faults, schedule_faults
from microfleet.sim.fleet import NOMINAL_TYRE_KPA
from microfleet.sim.run import run_days
from microfleet.sim.scenario import FaultRates, Scenario
from microfleet.sim.sensor_errors import CELL_VOLTAGE_NOISE_MV
from microfleet.sim.sensors import AUX_CHARGING_V, AUX_REST_V, TYRE_KPA_PER_K

RESULTS = Path(__file__).parent / "results" / "maintenance.json"
TUNING_SEED = 11
STEP_S = 300.0
CHUNK = 50
GROUP_CARS = 50  # cars per twin run of the twin fleet (memory: ~12 M records for 182 days)
CHECK_EVERY_DAYS = 7  # the detectors without a per-bucket trace are judged weekly, on the service's window
START_MS = 1_767_542_400_000  # 2026-01-04T16:00Z = 2026-01-05 00:00 Shanghai, the twin's default start
# Shanghai monthly mean temperatures, Jan-Dec, °C (China Meteorological Administration 1991-2020 normals,
# as tabled in Wikipedia "Shanghai", climate section)
SHANGHAI_C = np.array([4.8, 6.6, 10.4, 15.8, 21.0, 24.7, 28.8, 28.4, 24.9, 19.9, 14.1, 7.8])
PERMEATION_KPA_DAY = (0.1, 0.35)  # NHTSA FMVSS 138 final rule (2005): tyres lose ~1 psi a month
TPMS_OFFSET_SD_KPA = 3.0  # TPMS sensors are specified ±1.5 psi ≈ ±10 kPa (assumed 1 sigma 3 kPa)
TPMS_DROPOUT_P = 0.03  # a reading missing on one wheel (assumed)
SURFACE_V, SURFACE_TAU_H = 0.25, 1.5  # BU-903: surface charge raises rest voltage for hours after charging
FAIL_12V_V = aux_battery.FLAT_V
LEAD_12V_DAYS = 7.0
INTERVAL_DAYS = 30  # Traccar-style maintenance reminder: every 30 days (or N km, not binding in town)
INTERVAL_TYRE_FRACTION = 0.9  # a mechanic re-inflates a tyre found 10 % under its placard
INTERVAL_12V_V = 12.4  # a mechanic replaces a 12 V battery resting under 12.4 V (BU-903: ~75 % charged)
MONTH_DAYS = 30.4375
PER_100 = "per 100 vehicle-months"


@dataclass
class Tally:
    """What the scoring collects over the chunks."""

    leak_lead_h: list[float] = field(default_factory=list)
    leak_lead_h_interval: list[float] = field(default_factory=list)
    aux_fail_caught: list[bool] = field(default_factory=list)
    aux_fail_caught_interval: list[bool] = field(default_factory=list)
    aux_alerts_true: int = 0
    aux_alerts: int = 0
    aux_interval_true: int = 0
    aux_interval: int = 0
    checked: dict[str, int] = field(default_factory=dict)  # weekly detectors' suspected episodes, all
    cells_unsent: int = 0  # cars that send no cell voltages (no cell detector: not scored on cells)
    false_alarms: dict[str, int] = field(default_factory=dict)
    interval_false: int = 0
    cell_labels: list[int] = field(default_factory=list)
    cell_rule: list[float] = field(default_factory=list)
    cell_rows: list[np.ndarray] = field(default_factory=list)
    soh_snapshots: list[dict[str, tuple[str, float]]] = field(default_factory=list)
    weak_by_snapshot: list[set[str]] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)  # per car: (buckets, 6)
    faulty_any: list[np.ndarray] = field(default_factory=list)  # per car: (buckets,) a true fault active

    def false(self, detector: str, n: int = 1) -> None:
        """Count false alarms of a detector."""
        self.false_alarms[detector] = self.false_alarms.get(detector, 0) + n


def temperature(t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ambient °C: monthly normals interpolated, a ±4 °C day cycle and a slow weather wobble."""
    day = t_s / 86400.0
    month = (day / MONTH_DAYS) % 12.0
    seasonal = np.interp(month, np.arange(12) + 0.5, SHANGHAI_C, period=12.0)
    diurnal = 4.0 * np.sin(2 * np.pi * ((day % 1.0) - 0.375))
    n_days = int(day.max()) + 2
    wobble = np.convolve(rng.normal(0, 2.5, n_days + 4), np.ones(5) / 5 * 2.0, mode="same")[:n_days]
    return seasonal + diurnal + np.interp(day, np.arange(n_days), wobble)


def build_chunk(
    n_cars: int, days: int, faults: list[Fault], rng: np.random.Generator
) -> tuple[SampleColumns, dict[str, np.ndarray]]:
    """Sample columns of ``n_cars`` for ``days`` (5 min steps), the twin's faults applied."""
    t1 = np.arange(0.0, days * 86400.0, STEP_S)
    m = t1.size
    n = m * n_cars
    veh = np.repeat(np.arange(n_cars), m)
    t = np.tile(t1, n_cars)
    amb = np.concatenate([temperature(t1, rng) for _ in range(n_cars)])
    # drives: 2-4 a day of 15-45 min between 7:00 and 21:00 (owners' and shared cars' days, simplified)
    driving = np.zeros(n, dtype=bool)
    for c in range(n_cars):
        k = rng.poisson(3.0 * days)
        s0 = rng.integers(0, days, k) * 86400.0 + rng.uniform(7, 21, k) * 3600.0
        dur = rng.uniform(900, 2700, k)
        i0, i1 = np.searchsorted(t1, s0), np.searchsorted(t1, s0 + dur)
        edge = np.zeros(m + 1, dtype=np.int64)
        np.add.at(edge, i0, 1)
        np.add.at(edge, i1, -1)
        driving[c * m : (c + 1) * m] = np.cumsum(edge[:-1]) > 0
    awake = driving.copy()
    since_h = np.empty(n)
    for c in range(n_cars):
        sl = slice(c * m, (c + 1) * m)
        last = np.maximum.accumulate(np.where(driving[sl], t1, -1e12))
        since_h[sl] = np.where(last > -1e11, (t1 - last) / 3600.0, 1e9)
    awake |= since_h < 0.25  # awake for 15 min after a drive (twin: AWAKE_AFTER_STOP_S)
    speed = np.where(driving, rng.uniform(10, 60, n), 0.0)
    # tyres: the twin's model, plus each sensor's offset, permeation since the last monthly top-up, dropouts
    offset = rng.normal(0, TPMS_OFFSET_SD_KPA, (n_cars, 4))[veh]
    perm = rng.uniform(*PERMEATION_KPA_DAY, (n_cars, 4))[veh]
    topup_day = rng.uniform(0, INTERVAL_DAYS, n_cars)[veh]
    since_topup = ((t / 86400.0 - topup_day) % INTERVAL_DAYS)[:, None]
    tyre = (NOMINAL_TYRE_KPA + TYRE_KPA_PER_K * (amb + np.where(driving, 8.0, 0.0) - 20.0))[:, None]
    tyre = tyre + offset - perm * since_topup + rng.normal(0, 1.0, (n, 4))
    # 12 V: the twin's rest/awake levels, each battery's own rest level, surface charge fading after a drive
    rest_v = rng.uniform(12.55, 12.75, n_cars)[veh] + (AUX_REST_V - 12.7)
    aux = np.where(awake, AUX_CHARGING_V, rest_v + SURFACE_V * np.exp(-since_h / SURFACE_TAU_H))
    aux = aux + rng.normal(0, 0.02, n)
    # cells: each pack's own spread, wider under load and at low SoC, read with the BMS's noise and bias
    soc = 30 + 60 * (0.5 + 0.5 * np.sin(2 * np.pi * t / (86400.0 * rng.uniform(2, 4, n_cars)[veh])))
    current = np.where(driving, rng.uniform(10, 90, n), np.where(awake, 3.0, 0.3))
    spread_mv = rng.uniform(5, 15, n_cars)[veh] + 0.15 * current + np.where(soc < 25, 8.0, 0.0)
    cell_v = 3.2 + 0.003 * soc - 0.0008 * current
    noise = rng.normal(0, CELL_VOLTAGE_NOISE_MV / 1000.0, (2, n))
    bias = rng.normal(0, 0.001, n_cars)[veh]
    home = rng.uniform(-0.05, 0.05, (2, n_cars))
    cols = SampleColumns(
        vehicle=veh.astype(np.int64), t_s=t, driving=driving, parked=~awake, speed_kmh=speed,
        lat_deg=31.23 + home[0][veh] + np.where(driving, rng.normal(0, 0.01, n), 0),
        lon_deg=121.47 + home[1][veh] + np.where(driving, rng.normal(0, 0.01, n), 0),
        gps_hdop=np.clip(rng.gamma(4.0, 0.25, n), 0.5, None), tyre_kpa=tyre,
        cell_min_v=cell_v - spread_mv / 2000.0 + noise[0] + bias, aux_v=aux, dtc={},
    )  # fmt: skip
    cell_max = cell_v + spread_mv / 2000.0 + noise[1] + bias
    apply_faults(faults, cols, rng)
    cols.tyre_kpa[rng.random((n, 4)) < TPMS_DROPOUT_P] = np.nan
    extra = {"ambient_c": amb, "soc_pct": np.floor(soc), "current_a": current, "cell_max_v": cell_max,
             "ignition": driving.astype(float)}  # fmt: skip
    return cols, extra


def car_series(c: int, m: int, cols: SampleColumns, extra: dict[str, np.ndarray], soh: float) -> CarSeries:
    """One car's CarSeries from the chunk's columns (rounded as the twin's sensors round)."""
    sl = slice(c * m, (c + 1) * m)
    ts = START_MS + np.round(cols.t_s[sl] * 1000).astype(np.int64)
    s = CarSeries.empty(f"car-{c}", ts)
    q = np.round
    dtc = {i - c * m: tuple(v) for i, v in cols.dtc.items() if c * m <= i < (c + 1) * m}
    return CarSeries(
        s.vehicle_id, ts, q(cols.speed_kmh[sl], 1), extra["ignition"][sl], q(extra["ambient_c"][sl] * 2) / 2,
        q(cols.aux_v[sl], 2), q(cols.cell_min_v[sl], 3), q(extra["cell_max_v"][sl], 3), extra["soc_pct"][sl],
        extra["current_a"][sl], np.full(m, soh), s.energy_recovered_kwh, cols.gps_hdop[sl], cols.lat_deg[sl],
        cols.lon_deg[sl], q(cols.tyre_kpa[sl]), dtc,
    )  # fmt: skip


def episodes(flags: np.ndarray) -> np.ndarray:
    """Bucket indices where an alert is raised: a flag after at least a day (4 buckets) without one."""
    idx = np.flatnonzero(flags)
    if idx.size == 0:
        return idx
    return idx[np.r_[True, np.diff(idx) > 4]]


def bucket_time_s(k: np.ndarray | int, start_ms: int) -> np.ndarray:
    """The end of bucket k, in seconds since the run's start (when its verdict is known)."""
    return (start_ms + (np.asarray(k) + 1) * BUCKET_MS - START_MS) / 1000.0


def active(fs: list[Fault], t_s: float, slack_s: float = 86400.0) -> bool:
    """Whether any of these faults is active at ``t_s`` (an episode counts until a day after its end)."""
    return any(f.start_s <= t_s <= f.end_s + slack_s for f in fs)


def score_car(
    c: int, series: CarSeries, fs: list[Fault], days: int, tally: Tally, rng: np.random.Generator
) -> None:
    """Run the rules over one car and score them against its faults."""
    tr_t, tr_a, tr_c = tyres.trace(series), aux_battery.trace(series), cells.trace(series)
    start = tr_t.start_ms
    nb = tr_t.flagged.shape[0]
    feats = residual_features(tr_t, tr_a, tr_c, nb)
    by_kind: dict[str, list[Fault]] = {}
    for f in fs:
        by_kind.setdefault(f.kind, []).append(f)
    check_day = float(rng.uniform(0, INTERVAL_DAYS))
    checks = np.arange(check_day, days, INTERVAL_DAYS) * 86400.0
    # tyres: each leak's lead time (negative: flagged late; -inf: never)
    for f in by_kind.get("tyre_slow_leak", []):
        fail = f.start_s + tyres.WARNING_FRACTION * NOMINAL_TYRE_KPA / f.rate_per_day * 86400.0
        if fail > days * 86400.0:
            continue
        ks = np.flatnonzero(tr_t.flagged[:, f.wheel])
        ts = bucket_time_s(ks, start)
        ts = ts[ts >= f.start_s]
        tally.leak_lead_h.append(float((fail - ts[0]) / 3600.0) if ts.size else -np.inf)
        seen = checks[(checks >= f.start_s)]
        lost = f.rate_per_day * (seen - f.start_s) / 86400.0
        caught = seen[lost >= (1 - INTERVAL_TYRE_FRACTION) * NOMINAL_TYRE_KPA]
        tally.leak_lead_h_interval.append(float((fail - caught[0]) / 3600.0) if caught.size else -np.inf)
    for w in range(4):
        for k in episodes(tr_t.flagged[:, w]).tolist():
            ts = float(bucket_time_s(k, start))
            if not any(f.wheel == w and f.start_s <= ts for f in by_kind.get("tyre_slow_leak", [])):
                tally.false("tyre")
    # 12 V
    aux_faults = by_kind.get("aux_battery_decay", [])
    alert_ts = bucket_time_s(episodes(tr_a.flagged), start)
    for ts in alert_ts.tolist():
        ok = any(f.start_s <= ts for f in aux_faults)
        tally.aux_alerts += 1
        tally.aux_alerts_true += ok
        if not ok:
            tally.false("12v_battery")
    flag_ts = bucket_time_s(np.flatnonzero(tr_a.flagged), start)
    rest_level = float(np.nanmedian(series.aux_battery_v[aux_battery.rest_mask(series)][:500]))
    for f in aux_faults:
        fail = f.start_s + (rest_level - FAIL_12V_V) / f.rate_per_day * 86400.0
        if fail <= days * 86400.0:
            ok = flag_ts[(flag_ts >= f.start_s)]
            tally.aux_fail_caught.append(bool(ok.size and ok[0] <= fail - LEAD_12V_DAYS * 86400.0))
            seen = checks[(checks >= f.start_s) & (checks <= fail - LEAD_12V_DAYS * 86400.0)]
            drop = f.rate_per_day * (seen - f.start_s) / 86400.0
            tally.aux_fail_caught_interval.append(bool((rest_level - drop <= INTERVAL_12V_V).any()))
    for ch in checks.tolist():
        drop = sum(f.rate_per_day * (ch - f.start_s) / 86400.0 for f in aux_faults if f.start_s <= ch)
        if rest_level - drop <= INTERVAL_12V_V:
            tally.aux_interval += 1
            tally.aux_interval_true += drop > 0
            tally.interval_false += drop == 0
    # cells: false alarms, and monthly snapshots for the AUROC (only cars that send cell voltages: the
    # others get "no cell detector", not a score)
    weak = by_kind.get("weak_cell", [])
    sends_cells = series.sends(series.cell_voltage_min_v)
    tally.cells_unsent += not sends_cells
    for ts in bucket_time_s(episodes(tr_c.flagged), start).tolist() if sends_cells else []:
        if not any(f.start_s <= ts for f in weak):
            tally.false("cell_balance")
    for snap in range(1, int(days // 30) + 1) if sends_cells else []:
        k = min(int(snap * 30 * DAY_MS // BUCKET_MS) - 1, nb - 1)
        ts = float(bucket_time_s(k, start))
        started = [f for f in weak if f.start_s <= ts]
        if started and ts - min(f.start_s for f in started) < 3 * 86400.0:
            continue  # a fault younger than 3 days: excluded, neither healthy nor detectable
        tally.cell_labels.append(int(bool(started)))
        tally.cell_rule.append(float(np.nan_to_num(tr_c.growth_mv[k], nan=0.0)))
        tally.cell_rows.append(feats[k])
    # The detectors that answer "now" (no per-bucket trace): judged weekly, as the service's worker does,
    # each on the service's 45-day window; a new suspected episode without its fault is a false alarm.
    was: set[str] = set()
    for end_day in range(CHECK_EVERY_DAYS, days + 1, CHECK_EVERY_DAYS):
        t_end = end_day * 86400.0
        to_ms = START_MS + round(t_end * 1000)
        window = _window(series, to_ms - WINDOW_DAYS * DAY_MS, to_ms)
        if window.ts_ms.size < 2:
            continue
        now: set[str] = set()
        for res in [*diagnostics.thermal(window), *diagnostics.brakes(window), *diagnostics.gps(window),
                    *diagnostics.tpms_sensors(window)]:  # fmt: skip
            if res.verdict != "suspected":
                continue
            now.add(res.detector)
            if res.detector in was:
                continue  # the same episode, still open
            tally.checked[res.detector] = tally.checked.get(res.detector, 0) + 1
            if not _explained(res.detector, by_kind, t_end):
                tally.false(res.detector)
        was = now
    truth = np.zeros(nb, dtype=bool)
    kt = bucket_time_s(np.arange(nb), start)
    for f in fs:
        truth |= (kt >= f.start_s) & (kt <= f.end_s + 86400.0)
    tally.features.append(feats)
    tally.faulty_any.append(truth)


def _window(series: CarSeries, from_ms: int, to_ms: int) -> CarSeries:
    """The series' samples in [from_ms, to_ms): what the service reads at ``to_ms``."""
    lo, hi = np.searchsorted(series.ts_ms, [from_ms, to_ms])
    arrays = {k: v[lo:hi] for k, v in vars(series).items() if isinstance(v, np.ndarray)}
    codes = {i - lo: c for i, c in series.dtc_codes.items() if lo <= i < hi}
    return replace(series, dtc_codes=codes, **arrays)


def _explained(detector: str, by_kind: dict[str, list[Fault]], t_s: float) -> bool:
    """Whether a true fault explains a suspected answer of ``detector`` judged at ``t_s``."""
    day = 86400.0
    if detector == "motor_thermal":  # codes of the last week
        return any(
            f.start_s <= t_s and f.end_s + day >= t_s - 7 * day for f in by_kind.get("motor_overheat", [])
        )
    if detector == "brakes":
        return any(f.start_s <= t_s for f in by_kind.get("brake_wear", []))
    if detector == "gps":  # three glitch episodes in 30 days
        return any(t_s - 30 * day - day <= f.start_s <= t_s for f in by_kind.get("gps_glitch", []))
    return False  # tpms_sensor: the twin injects no failing TPMS sensor


def run(seed: int, cars: int, days: int) -> tuple[Tally, float]:
    """Build the fleet chunk by chunk and score every car; returns the tally and seconds spent."""
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 18])
    faults = schedule_faults(FaultRates(), cars, days, np.random.default_rng([seed, 5]))
    soh0 = rng.normal(97.0, 1.2, cars)
    tally = Tally()
    for lo in range(0, cars, CHUNK):
        hi = min(lo + CHUNK, cars)
        fs = [Fault(f.vehicle - lo, f.kind, f.start_s, f.rate_per_day, f.end_s, f.wheel)
              for f in faults if lo <= f.vehicle < hi]  # fmt: skip
        cols, extra = build_chunk(hi - lo, days, fs, rng)
        m = cols.t_s.size // (hi - lo)
        for c in range(hi - lo):
            mine = [f for f in fs if f.vehicle == c]
            weak_loss = sum(0.02 * f.rate_per_day * max(days - f.start_s / 86400.0, 0) for f in mine
                            if f.kind == "weak_cell")  # fmt: skip
            score_car(c, car_series(c, m, cols, extra, soh0[lo + c] - weak_loss), mine, days, tally, rng)
            # capacity: the fleet's SoH at the end of the run (sim/engine.py: 0.02 % SoH per mV of weak cell)
            tally.soh_snapshots.append({f"car-{lo + c}": ("twin-model", round(soh0[lo + c] - weak_loss))})
            tally.weak_by_snapshot.append({f"car-{lo + c}"} if weak_loss > 0 else set())
        print(f"  cars {hi}/{cars}  {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _capacity_false_alarms(tally)
    return tally, time.perf_counter() - t0


def merge(parts: list[Tally]) -> Tally:
    """One tally from several (lists joined, counts added), in the order given."""
    out = Tally()
    for part in parts:
        for name, value in vars(part).items():
            mine = getattr(out, name)
            if isinstance(value, list):
                mine.extend(value)
            elif isinstance(value, dict):
                for k, v in value.items():
                    mine[k] = mine.get(k, 0) + v
            else:
                setattr(out, name, mine + value)
    return out


def _car_index(day: pa.Table, ids: pa.Array) -> pa.Table:
    """A day's telemetry with the car's fleet index instead of its id, the detectors' columns only."""
    cols = {"car": pc.index_in(day["vehicle_id"], value_set=ids), "ts_ms": day["ts_ms"]}
    for name in SERIES_SIGNALS:
        cols[name] = pc.cast(day[name], pa.float64())
    cols["tyre_pressure_kpa"] = day["tyre_pressure_kpa"]
    cols["dtc_codes"] = day["dtc_codes"]
    return pa.table(cols)


def _twin_series(vehicle_id: str, rows: pa.Table) -> CarSeries:
    """One car's records (time order, one per timestamp) as the maintenance service would see them."""
    n = rows.num_rows
    columns = {name: rows[name].to_numpy(zero_copy_only=False) for name in SERIES_SIGNALS}
    tyre_col = rows["tyre_pressure_kpa"].combine_chunks()
    tyres = np.full((n, 4), np.nan)
    valid = tyre_col.is_valid().to_numpy(zero_copy_only=False)
    tyres[valid] = pc.list_flatten(tyre_col).to_numpy().reshape(-1, 4)
    dtc_col = rows["dtc_codes"].combine_chunks()
    codes = {
        int(i): tuple(dtc_col[int(i)].as_py())
        for i in np.flatnonzero(dtc_col.is_valid().to_numpy(zero_copy_only=False))
    }
    ts = rows["ts_ms"].to_numpy()
    return CarSeries.from_columns(vehicle_id, ts, columns, tyres, codes)


def twin_group(task: tuple[int, int, int, int]) -> tuple[Tally, dict[str, object]]:
    """Run one group of the twin fleet and score its cars; returns the tally and what the run held."""
    seed, group, cars, days = task
    t0 = time.perf_counter()
    twin = Twin(
        Scenario(vehicles=cars, days=days, seed=seed * 1000 + group, vehicle_id_prefix=f"g{group:02d}")
    )
    if int(twin.start.timestamp() * 1000) != START_MS:
        raise SystemExit("the twin's start moved: bucket times below assume START_MS")
    ids = pa.array([v.vehicle_id for v in twin.fleet], pa.string())
    table = pa.concat_tables([_car_index(day.telemetry, ids) for day in run_days(twin)])
    sent = table.num_rows
    table = table.sort_by([("car", "ascending"), ("ts_ms", "ascending")])
    car, ts = table["car"].to_numpy(), table["ts_ms"].to_numpy()
    first = np.r_[True, (car[1:] != car[:-1]) | (ts[1:] != ts[:-1])]  # the store keeps one per timestamp
    table = table.filter(pa.array(first))
    car = car[first]
    sim_s = time.perf_counter() - t0
    rng = np.random.default_rng([seed, 18, group])
    tally = Tally()
    bounds = np.searchsorted(car, np.arange(len(twin.fleet) + 1))
    for c, vehicle in enumerate(twin.fleet):
        series = _twin_series(vehicle.vehicle_id, table.slice(bounds[c], bounds[c + 1] - bounds[c]))
        mine = [f for f in twin.faults if f.vehicle == c]
        if series.ts_ms.size < 2:
            continue
        score_car(c, series, mine, days, tally, rng)
        tally.soh_snapshots.append(
            {vehicle.vehicle_id: (vehicle.model.model_id, cells.capacity_estimate(series))}
        )
        tally.weak_by_snapshot.append(
            {vehicle.vehicle_id} if any(f.kind == "weak_cell" for f in mine) else set()
        )
    held = {"records_sent": sent, "records_kept": table.num_rows, "simulate_s": round(sim_s, 1),
            "score_s": round(time.perf_counter() - t0 - sim_s, 1), "faults": len(twin.faults),
            "models": sorted({v.model.model_id for v in twin.fleet})}  # fmt: skip
    print(f"  group {group}: {cars} cars, {sent:,} records, {sim_s:.0f} s twin, "
          f"{time.perf_counter() - t0 - sim_s:.0f} s scoring", file=sys.stderr)  # fmt: skip
    return tally, held


def run_twin(seed: int, cars: int, days: int, jobs: int) -> tuple[Tally, float, list[dict[str, object]]]:
    """The whole twin, ``GROUP_CARS`` cars a run, ``jobs`` runs at a time; returns the merged tally."""
    t0 = time.perf_counter()
    tasks = [(seed, g, min(GROUP_CARS, cars - lo), days) for g, lo in enumerate(range(0, cars, GROUP_CARS))]
    if jobs > 1:
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            results = pool.map(twin_group, tasks, chunksize=1)
    else:
        results = [twin_group(t) for t in tasks]
    tally = merge([r[0] for r in results])
    _capacity_false_alarms(tally)
    return tally, time.perf_counter() - t0, [r[1] for r in results]


def _capacity_false_alarms(tally: Tally) -> None:
    """Capacity outliers within each model across the whole fleet: any on a car without a weak cell."""
    estimates = {k: v for d in tally.soh_snapshots for k, v in d.items()}
    weak_cars = set().union(*tally.weak_by_snapshot)
    for vid, res in cells.capacity_outliers(estimates).items():
        if res.verdict == "suspected" and vid not in weak_cars:
            tally.false("capacity")


def learned_side(train: Tally, test: Tally, seed: int) -> dict[str, float]:
    """Isolation forest fitted on the tuning seed's residuals, scored on the scoring seed's."""
    from sklearn.metrics import roc_auc_score

    x = np.vstack([f[::4] for f in train.features])
    forest = ResidualForest(seed=seed).fit(x)
    # its alarm threshold: the tuning fleet's 99.9th percentile score of healthy buckets
    healthy = np.vstack([f[~t][::4] for f, t in zip(train.features, train.faulty_any, strict=True)])
    cut = float(np.quantile(forest.score(healthy), 0.999))
    false = 0
    for f, t in zip(test.features, test.faulty_any, strict=True):
        flags = forest.score(f) > cut
        false += int(sum(1 for k in episodes(flags) if not t[k]))
    forest_auroc = (
        float(roc_auc_score(test.cell_labels, forest.score(np.vstack(test.cell_rows))))
        if len(set(test.cell_labels)) == 2
        else None
    )
    return {"false_alarms": float(false), "cell_fault_auroc": forest_auroc, "alarm_score_cut": cut}


def main() -> None:
    """Run, print the table, write bench/results/maintenance.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="scoring seed (thresholds were tuned on 11)")
    parser.add_argument("--quick", action="store_true", help="100 cars x 60 days")
    parser.add_argument(
        "--fleet", choices=("twin", "sampled"), default="twin", help="the whole twin (default)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="twin groups run at a time")
    parser.add_argument("--cars", type=int, help="override the fleet size")
    parser.add_argument("--days", type=int, help="override the run's days")
    args = parser.parse_args()
    cars, days = (100, 60) if args.quick else (1000, 182)
    cars, days = args.cars or cars, args.days or days
    from sklearn.metrics import roc_auc_score

    groups: list[dict[str, object]] = []
    if args.fleet == "twin":
        tally, secs, groups = run_twin(args.seed, cars, days, args.jobs)
    else:
        tally, secs = run(args.seed, cars, days)
    months = cars * days / MONTH_DAYS
    lead = np.array(tally.leak_lead_h)
    lead_i = np.array(tally.leak_lead_h_interval)
    p12 = tally.aux_alerts_true / max(tally.aux_alerts, 1)
    r12 = float(np.mean(tally.aux_fail_caught)) if tally.aux_fail_caught else float("nan")
    auroc = (
        float(roc_auc_score(tally.cell_labels, tally.cell_rule)) if len(set(tally.cell_labels)) == 2 else None
    )
    false_total = sum(tally.false_alarms.values())
    rows = [
        ("slow leak lead h median", "microfleet", float(np.median(lead)) if lead.size else None, "h"),
        ("slow leak lead h median", "interval rules", float(np.median(lead_i)) if lead_i.size else None, "h"),
        ("12v precision", "microfleet", p12, "fraction"),
        ("12v precision", "interval rules", tally.aux_interval_true / max(tally.aux_interval, 1), "fraction"),
        ("12v recall", "microfleet", r12, "fraction"),
        ("12v recall", "interval rules", float(np.mean(tally.aux_fail_caught_interval))
         if tally.aux_fail_caught_interval else None, "fraction"),
        ("cell fault auroc", "microfleet", auroc, "fraction"),
        ("false alarms per 100 vehicle-months", "microfleet", 100 * false_total / months, PER_100),
        ("false alarms per 100 vehicle-months", "interval rules", 100 * tally.interval_false / months,
         "per 100 vehicle-months"),
    ]  # fmt: skip
    # the learned model beside the rules: fitted on the tuning seed's fleet, never on the scored one
    if args.seed == TUNING_SEED:
        train = tally
    elif args.fleet == "twin":  # a smaller twin fleet of the tuning seed: the forest's healthy residuals
        train = run_twin(TUNING_SEED, min(cars, 2 * GROUP_CARS), days, args.jobs)[0]
    else:
        train = run(TUNING_SEED, min(cars, 200), days)[0]
    side = learned_side(train, tally, args.seed)
    side["false_alarms_per_100_vehicle_months"] = 100 * side.pop("false_alarms") / months
    # Driver rows come from bench/driver_eval.py's own 100-car x 28-day scenario: scoring the whole fleet's
    # drivers needs a sparse driver_energy.attribute (its dense drives x drivers matrix asked for 60 GiB at
    # 200 cars x 182 days: every car-sharing rental is a driver).
    d_rows, d_meta = driver_rows(args.seed, args.quick)
    driver_note = f"from bench/driver_eval.py's own scenario: {d_meta}"
    extra_rows: list[dict[str, object]] = list(d_rows)
    body = {
        "benchmark": "maintenance",
        "command": "python bench/maintenance.py " + " ".join(sys.argv[1:]),
        "seed": args.seed, "tuning_seed": TUNING_SEED, "quick": args.quick, "cars": cars, "days": days,
        "fleet": args.fleet, "groups": groups,
        "rows": [{"metric": m, "system": s, "value": v, "unit": u} for m, s, v, u in rows] + extra_rows,
        "detail": {
            "slow_leaks_reaching_warning": int(lead.size), "slow_leaks_flagged_before": int((lead > 0).sum()),
            "aux_failures_in_run": len(tally.aux_fail_caught), "aux_alerts": tally.aux_alerts,
            "cell_snapshots": len(tally.cell_labels), "cell_positives": int(sum(tally.cell_labels)),
            "false_alarms_by_detector": tally.false_alarms, "vehicle_months": round(months, 1),
            "interval_12v_flags": tally.aux_interval, "cars_without_cell_voltages": tally.cells_unsent,
            "weekly_detectors_suspected_episodes": tally.checked,
        },
        "learned_isolation_forest": side,
        "driver": driver_note,
        "seconds": round(secs, 1),
        "load_average": os.getloadavg(),
    }  # fmt: skip
    print(f"{'metric':40s} {'system':16s} value")
    for r in body["rows"]:  # type: ignore[attr-defined]
        v = r["value"]
        print(f"{r['metric']:40s} {r['system']:16s} {v if v is None else round(float(v), 3)}")
    print(json.dumps(body["detail"]), "\nlearned:", json.dumps(side), "\n", driver_note)
    RESULTS.write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
