"""History accuracy: drives and charges derived from twin telemetry, scored against the twin's truth.

The twin (``microfleet.sim``) drives a fleet for two weeks and sends its telemetry through a faulty link
(duplicated, delayed and therefore shuffled messages), on its realistic sensor model where it has one.
Every system sees the same records (de-duplicated and sorted):

* "microfleet": ``HistoryDeriver.rederive`` with every method on;
* the ablation: Microfleet with one part of its method switched off in turn (``DerivationOptions``:
  counters, counter offset/gain correction, SoC anchoring, per-car thresholds), derived the same way;
* the fair baseline, ``bench/threshold_baseline.py``: trips by Traccar's rules, charges from the charger's
  own attributes, energy as ΔSoC x the physics-resolved capacity of the car's catalogue model (never the
  twin's true capacity);
* "microfleet as ingested", on the first ``--ingested-cars`` cars (default all): the messages in send
  order, in hourly batches per car, each batch re-deriving the window it touches
  (``HistoryDeriver.records_landed``), exactly as the ingest pipeline does; the bench counts the cars
  whose history then equals "microfleet"'s.

Scoring reads only the twin's truth: ``truth/trips`` (drive times and battery energy) and
``truth/samples`` (state and battery power at every sample: charge sessions are its runs of "charge").
Every system is matched by one rule: a boundary counts when within 60 s of the truth, a drive ends where
it stops and a charge where its energy stops (Microfleet's ``power_end_ts_ms``, the baseline's last powered
record). An energy counts when the item's both boundaries matched and it is within 2 % of the truth, scored
three ways: over every truth item (the target), over the items the system itself matched ("own matches"),
and over the items every system matched ("shared boundaries", so the energy methods meet on identical
drives and charges). Seeds 101 and 202 are scored; no constant was chosen on them (development: seed 1).

    .venv/bin/python bench/history_accuracy.py [--seed 101 202] [--quick] [--ingested-cars N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

import threshold_baseline as baseline  # bench/ is on sys.path when this file runs as a script
from microfleet.domain.catalogue import Catalogue, load_catalogue
from microfleet.domain.derivation import (
    CALIBRATION_SESSIONS,
    DerivedHistory,
    ResumePoint,
    VehicleContext,
)
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns
from microfleet.errors import PhysicsInputError
from microfleet.physics import resolve_spec, usable_kwh
from microfleet.physics.priors import USABLE_FRACTION_OF_STATED
from microfleet.services.derivation import HistoryDeriver
from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario

try:  # the ablation's switches; its rows appear once derivation has them
    from microfleet.domain.derivation import DerivationOptions
except ImportError:
    DerivationOptions = None

RESULTS = Path(__file__).parent / "results" / "history_accuracy.json"
SCORED_SEEDS = (101, 202)  # no constant of the derivation, the baseline or this bench was chosen on these
DEVELOPMENT_SEED = 1  # what constants were checked on (and --quick's default)
# one system per switch of DerivationOptions, each off alone
ABLATIONS = {
    "microfleet without counters": "counters",
    "microfleet without counter correction": "counter_correction",
    "microfleet without soc anchoring": "soc_anchoring",
    "microfleet without per-car thresholds": "per_car_thresholds",
    "microfleet without offset drift": "offset_drift",
    "microfleet without counter sub-step": "counter_sub_step",
}
# Microfleet derived batch by batch as messages arrive, on the first --ingested-cars cars (it must equal
# "microfleet", derived from scratch; the windowed re-derivation is what costs the bench's time)
INGESTED = "microfleet as ingested"
BOUNDARY_TOLERANCE_MS = 60_000
ENERGY_TOLERANCE = 0.02
BATCH_MS = 3_600_000  # messages reach the server in hourly batches per car
LINK = LinkFaults(duplicate_p=0.03, delay_p=0.05, delay_max_s=900.0)  # shuffles come from the delays
FLOATS = (
    "lat_deg", "lon_deg", "speed_kmh", "odometer_km", "soc_pct", "pack_voltage_v", "pack_current_a",
    "pack_temp_c", "charger_power_kw", "charger_ac_voltage_v", "ambient_temp_c", "altitude_m",
    "energy_used_kwh", "energy_recovered_kwh",
)  # fmt: skip
# The energy figures split by what the car reports (extra rows; the targets are over every car):
# the BMS's energy counters (and V x I), pack V x I without counters, or SoC only.
REPORTS = {
    "counters": "cars with counters",
    "pack V x I": "cars with pack V x I only",
    "soc": "cars reporting only SoC",
}
# the five figures the issue asks of every system, then the energy scored on matched items only
HEADLINE = (
    "drive boundary f1", "charge boundary f1", "drives energy within 2% share",
    "charges energy within 2% share", "double-counted records",
)  # fmt: skip


class MemoryHistory:
    """A real in-memory implementation of ``HistoryPort`` for one car: the records that have arrived so
    far (first copy of each timestamp kept, like the store) and the derived rows."""

    def __init__(self, all_cols: TelemetryColumns, ctx: VehicleContext) -> None:
        self.cols = all_cols  # every record the car will ever send, sorted by ts, one per ts
        self.arrived = np.zeros(len(all_cols), dtype=bool)
        self.ctx = ctx
        self.history = DerivedHistory([], [], [], [], [], [])

    def land(self, ts_ms: np.ndarray) -> list[int]:
        """Mark records as stored; return the timestamps that were new (duplicates are no-ops)."""
        idx = np.searchsorted(self.cols.ts_ms, ts_ms)
        fresh = np.unique(idx[~self.arrived[idx]])
        self.arrived[fresh] = True
        return self.cols.ts_ms[fresh].tolist()

    def load_window(self, vehicle_id: str, from_ms: int | None) -> TelemetryColumns:
        mask = self.arrived.copy()
        if from_ms is not None:
            mask[: int(np.searchsorted(self.cols.ts_ms, from_ms))] = False
        return self.cols.take(mask)

    def resume_point(self, vehicle_id: str, at_or_before_ms: int) -> ResumePoint | None:
        best = None
        for s in self.history.spans:
            if s.resume is not None and s.start_ts_ms <= at_or_before_ms:
                best = s.resume
        return best

    def replace_history(self, vehicle_id: str, from_ms: int | None, new: DerivedHistory) -> None:
        lo = -1 if from_ms is None else from_ms
        h = self.history
        self.history = DerivedHistory(
            [s for s in h.spans if s.start_ts_ms < lo] + new.spans,
            [d for d in h.drives if d.start_ts_ms < lo] + new.drives,
            [c for c in h.charges if c.start_ts_ms < lo] + new.charges,
            [d for d in h.drains if d.start_ts_ms < lo] + new.drains,
            [q for q in h.excluded if q.ts_ms < lo] + new.excluded,
            [],
        )

    def vehicle_context(self, vehicle_id: str, before_ms: int | None) -> VehicleContext:
        if before_ms is None:  # from the first record: no stored charge comes before
            return self.ctx
        seen = [
            c.kwh_per_soc_pct for c in self.history.charges if c.start_ts_ms < before_ms and c.kwh_per_soc_pct
        ]
        return replace(self.ctx, kwh_per_soc_pct_samples=tuple(seen[-CALIBRATION_SESSIONS:]))


@dataclass
class Fleet:
    """Telemetry per car in arrival order, truth drives and charges per car, model per car."""

    arrivals: dict[str, list[pa.Table]] = field(default_factory=dict)
    send_ms: dict[str, list[np.ndarray]] = field(default_factory=dict)
    truth_drives: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)
    truth_samples: list[pa.Table] = field(default_factory=list)
    model: dict[str, str] = field(default_factory=dict)
    messages: int = 0
    duplicated: int = 0
    delayed: int = 0


def simulate(vehicles: int, days: int, seed: int, sensor_model: str | None) -> Fleet:
    model: dict[str, Any] = {} if sensor_model is None else {"sensor_model": sensor_model}
    twin = Twin(Scenario(vehicles=vehicles, days=days, seed=seed, link=LINK, **model))
    fleet = Fleet(model={v.vehicle_id: v.model.model_id for v in twin.fleet})
    for day in run_days(twin):
        tel = day.telemetry
        fleet.messages += tel.num_rows
        ev = day.truth["link_events"].column("event").to_pylist()
        fleet.duplicated += ev.count("duplicated")
        fleet.delayed += ev.count("delayed")
        vids = np.array(tel.column("vehicle_id").to_pylist())
        for vid in np.unique(vids):
            rows = np.flatnonzero(vids == vid)
            fleet.arrivals.setdefault(str(vid), []).append(tel.take(pa.array(rows)))
            fleet.send_ms.setdefault(str(vid), []).append(np.asarray(day.send_ms)[rows])
        for r in day.truth["trips"].to_pylist():
            fleet.truth_drives.setdefault(r["vehicle_id"], []).append(
                (r["depart_ts_ms"], r["arrive_ts_ms"], r["energy_kwh"])
            )
        s = day.truth["samples"].select(["vehicle_id", "ts_ms", "state", "true_power_kw"])
        fleet.truth_samples.append(s)
    return fleet


def truth_charges(samples: pa.Table) -> dict[str, list[tuple[int, int, float]]]:
    """Charge sessions in the truth: runs of "charge" samples; energy into the pack from true power."""
    out: dict[str, list[tuple[int, int, float]]] = {}
    vids = np.array(samples.column("vehicle_id").to_pylist())
    ts_all = samples.column("ts_ms").to_numpy()
    charging_all = np.array(samples.column("state").to_pylist()) == "charge"
    power_all = samples.column("true_power_kw").to_numpy()
    for vid in np.unique(vids):
        rows = np.flatnonzero(vids == vid)
        order = rows[np.argsort(ts_all[rows], kind="stable")]
        ts, ch, p = ts_all[order], charging_all[order], power_all[order]
        edges = np.flatnonzero(np.diff(np.r_[0, ch.astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            end = int(ts[b]) if b < ts.size else int(ts[b - 1])
            t_next = np.r_[ts[a + 1 : b], end]
            energy = float(np.sum(-p[a:b] * (t_next - ts[a:b])) / 3_600_000)
            out.setdefault(str(vid), []).append((int(ts[a]), end, energy))
    return out


def to_columns(vid: str, tables: list[pa.Table]) -> TelemetryColumns:
    t = pa.concat_tables(tables)
    arrays: dict[str, Any] = {"ts_ms": t.column("ts_ms").to_numpy()}
    for name in FLOATS:
        arrays[name] = t.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
    for name in ("ignition_on", "charger_connected"):
        vals = t.column(name).to_pylist()
        arrays[name] = np.array([np.nan if v is None else float(v) for v in vals])
    arrays["gear_code"] = np.array([GEAR_CODES.get(g, -1) if g else -1 for g in t.column("gear").to_pylist()])
    return TelemetryColumns.from_arrays(vid, arrays)


def match(truth: list[tuple[int, int]], pred: list[tuple[int, int]]) -> tuple[int, list[int | None]]:
    """Match boundaries one to one within the tolerance; return true positives and, per truth item,
    the index of the predicted item whose start and end both matched it (else None)."""
    tp = 0
    starts: list[int | None] = []
    ends: list[int | None] = []
    for k in (0, 1):
        t_vals = [x[k] for x in truth]
        p_vals = np.array([x[k] for x in pred], dtype=np.int64)
        used = np.zeros(p_vals.size, dtype=bool)
        found: list[int | None] = []
        for tv in t_vals:
            j = int(np.searchsorted(p_vals, tv))
            best = None
            for c in (j - 2, j - 1, j, j + 1):
                ok = (
                    0 <= c < p_vals.size and not used[c] and abs(int(p_vals[c]) - tv) <= BOUNDARY_TOLERANCE_MS
                )
                if ok and (best is None or abs(int(p_vals[c]) - tv) < abs(int(p_vals[best]) - tv)):
                    best = c
            if best is not None:
                used[best] = True
                tp += 1
            found.append(best)
        (starts if k == 0 else ends).extend(found)
    both = [s if s is not None and s == e else None for s, e in zip(starts, ends, strict=True)]
    return tp, both


@dataclass
class Score:
    tp: int = 0
    n_truth: int = 0
    n_pred: int = 0
    matched: list[bool] = field(default_factory=list)  # per truth item: both boundaries found
    within: list[bool] = field(default_factory=list)  # per truth item: energy within the tolerance
    reports: list[str] = field(default_factory=list)  # per truth item: what its car reports (REPORTS)

    def add(
        self,
        truth: list[tuple[int, int, float]],
        pred: list[tuple[int, int, float | None]],
        reports: str = "",
    ) -> None:
        pred = sorted(pred)
        tp, both = match([(a, b) for a, b, _ in truth], [(a, b) for a, b, _ in pred])
        self.tp += tp
        self.n_truth += 2 * len(truth)
        self.n_pred += 2 * len(pred)
        for (_, _, e_true), j in zip(truth, both, strict=True):
            e_pred = pred[j][2] if j is not None else None
            self.matched.append(j is not None)
            self.reports.append(reports)
            self.within.append(e_pred is not None and abs(e_pred - e_true) <= ENERGY_TOLERANCE * abs(e_true))

    @property
    def f1(self) -> float:
        return 2 * self.tp / (self.n_truth + self.n_pred) if self.n_truth + self.n_pred else 1.0

    def energy_share_on(self, items: np.ndarray | None = None) -> float | None:
        """Energy within the tolerance over the truth items in ``items`` (a boolean mask; None: all)."""
        within = np.asarray(self.within, dtype=bool)
        if items is None:
            items = np.ones(within.size, dtype=bool)
        return float(within[items].mean()) if items.any() else None


def resolved_capacity(catalogue: Catalogue, model_id: str) -> float | None:
    """The baseline's capacity: what the physics resolves for the car's catalogue model (``resolve_spec``:
    stated usable kWh, else the cited 0.93 x the stated kWh). A model the physics cannot resolve for want
    of another value (the QQ Ice Cream has no published mass) gets the same rule for capacity."""
    spec = catalogue.get(model_id)
    try:
        return float(resolve_spec(spec, catalogue.all()).usable_kwh.value)
    except PhysicsInputError:
        if spec.battery_usable_kwh:
            return float(spec.battery_usable_kwh.value)
        stated = spec.battery_gross_kwh or spec.battery_nominal_kwh
        return stated.value * USABLE_FRACTION_OF_STATED if stated else None


def double_counted(mem: MemoryHistory) -> int:
    """Records inside two derived windows at once, or counted more often than they are stored."""
    ts = mem.cols.ts_ms[mem.arrived]
    counts = np.zeros(ts.size, dtype=np.int64)
    extra = 0
    windows = [(d.start_ts_ms, d.end_ts_ms, d.end_reason, d.record_count) for d in mem.history.drives]
    windows += [(c.start_ts_ms, c.end_ts_ms, c.end_reason, c.record_count) for c in mem.history.charges]
    for start, end, reason, reported in windows:
        a = int(np.searchsorted(ts, start))
        b = int(np.searchsorted(ts, end, side="right"))
        extra += max(0, reported - (b - a))  # a record counted twice inside one window
        # the record that ends a window by a change of state belongs to what comes next
        counts[a : b - 1 if reason in ("stopped", "unplugged", "drove_off", "next_charge") else b] += 1
    return int(extra + np.sum(np.maximum(counts - 1, 0)))


def double_counted_spans(n: int, spans: list[baseline.ThresholdSpan]) -> int:
    """The baseline's records inside two of its trips and charges at once."""
    counts = np.zeros(n, dtype=np.int64)
    for s in spans:
        counts[s.first : s.stop] += 1
    return int(np.sum(np.maximum(counts - 1, 0)))


@dataclass
class System:
    """One system's scores on one seed."""

    drives: Score = field(default_factory=Score)
    charges: Score = field(default_factory=Score)
    double_counted: int = 0

    def score(
        self,
        truth: tuple[list[Any], list[Any]],
        pred: tuple[list[Any], list[Any]],
        dbl: int,
        reports: str = "",
    ) -> None:
        self.drives.add(truth[0], pred[0], reports)
        self.charges.add(truth[1], pred[1], reports)
        self.double_counted += dbl


def reports_of(cols: TelemetryColumns) -> str:
    """What a car reports that energy can be read from (a key of :data:`REPORTS`), read off its records."""
    if np.any(~np.isnan(cols.energy_used_kwh)):
        return "counters"
    if np.any(~np.isnan(cols.pack_current_a)):
        return "pack V x I"
    return "soc"


def _ours(history: DerivedHistory) -> tuple[list[tuple[int, int, float | None]], ...]:
    # a charge is matched on where its energy stops, like the truth's runs of "charge" and the baseline
    return (
        [(d.start_ts_ms, d.end_ts_ms, d.energy_used_kwh) for d in history.drives],
        [(c.start_ts_ms, c.power_end_ts_ms, c.energy_added_kwh) for c in history.charges],
    )


def ablations() -> dict[str, Any]:
    """The ablation's systems and their options, once derivation has ``DerivationOptions``."""
    if DerivationOptions is None:
        return {}
    names = {f.name for f in dataclasses.fields(DerivationOptions)}
    return {
        system: replace(DerivationOptions(), **{switch: False})
        for system, switch in ABLATIONS.items()
        if switch in names
    }


def run_seed(seed: int, vehicles: int, days: int, sensor_model: str | None, ingested: int) -> dict[str, Any]:
    """Score every system on one seed; the first ``ingested`` cars are also derived as they arrive."""
    console = Console()
    t0 = time.perf_counter()
    fleet = simulate(vehicles, days, seed, sensor_model)
    console.print(
        f"seed {seed}: twin {vehicles} cars x {days} days, {fleet.messages:,} messages "
        f"({fleet.duplicated:,} duplicated, {fleet.delayed:,} delayed) in {time.perf_counter() - t0:.0f} s"
    )
    charges_truth = truth_charges(pa.concat_tables(fleet.truth_samples))
    catalogue = load_catalogue()
    derived = {"microfleet": None, **ablations()}  # None: DerivationOptions' defaults
    systems = {name: System() for name in (*derived, baseline.NAME, INGESTED)}
    capacity: dict[str, float | None] = {}
    recomputes = recomputed_records = identical = 0
    seconds = dict.fromkeys(systems, 0.0)
    for k, (vid, tables) in enumerate(fleet.arrivals.items()):
        model_id = fleet.model[vid]
        spec = catalogue.get(model_id)
        usable = usable_kwh(spec, catalogue.all())  # the product's rule (bootstrap), never the twin's pack
        ctx = VehicleContext(usable_kwh=usable.value if usable else None)
        capacity[model_id] = resolved_capacity(catalogue, model_id)
        cols = to_columns(vid, tables)
        reports = reports_of(cols)
        truth = (fleet.truth_drives.get(vid, []), charges_truth.get(vid, []))
        # Microfleet and each switch off alone, derived from scratch on every record
        from_scratch = None
        for name, opts in derived.items():
            t = time.perf_counter()
            mem = MemoryHistory(cols, ctx)
            mem.arrived[:] = True
            (HistoryDeriver(mem) if opts is None else HistoryDeriver(mem, options=opts)).rederive(vid)
            seconds[name] += time.perf_counter() - t
            from_scratch = from_scratch or mem.history
            systems[name].score(truth, _ours(mem.history), double_counted(mem), reports)
        # the fair baseline on the same records
        t = time.perf_counter()
        trips = baseline.threshold_trips(cols, capacity[model_id])
        charges = baseline.threshold_charges(cols, capacity[model_id], trips=trips)
        seconds[baseline.NAME] += time.perf_counter() - t
        systems[baseline.NAME].score(
            truth,
            ([(s.start_ts_ms, s.end_ts_ms, s.energy_kwh) for s in trips],
             [(s.start_ts_ms, s.end_ts_ms, s.energy_kwh) for s in charges]),
            double_counted_spans(len(cols), trips + charges), reports,
        )  # fmt: skip
        if k >= ingested or from_scratch is None:
            continue
        # Microfleet as the ingest pipeline runs it: hourly batches in send order, each re-derived
        t = time.perf_counter()
        arrival_ts = pa.concat_tables(tables).column("ts_ms").to_numpy()
        send = np.concatenate(fleet.send_ms[vid])
        mem = MemoryHistory(cols, ctx)
        deriver = HistoryDeriver(mem)
        order = np.argsort(send, kind="stable")
        for part in np.split(order, np.flatnonzero(np.diff(send[order] // BATCH_MS)) + 1):
            report = deriver.records_landed(vid, mem.land(arrival_ts[part]))
            if report is not None:
                recomputes += 1
                recomputed_records += report.records
        seconds[INGESTED] += time.perf_counter() - t
        systems[INGESTED].score(truth, _ours(mem.history), double_counted(mem), reports)
        same = (mem.history.drives, mem.history.charges) == (from_scratch.drives, from_scratch.charges)
        identical += same
    ingested = min(ingested, len(fleet.arrivals))
    console.print(
        f"seed {seed}: derivation {', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())}; "
        f"{INGESTED}: {ingested} cars, {recomputes:,} recomputes over {recomputed_records:,} records, "
        f"{identical} equal to from scratch"
    )
    rows: list[dict[str, Any]] = []

    def row(metric: str, system: str, value: float | int | None, unit: str) -> None:
        rows.append({"metric": metric, "system": system, "value": value, "unit": unit, "seed": seed})

    # the truth items whose boundaries every system found: energy methods meet on identical items
    shared = {
        kind: np.logical_and.reduce(
            [np.asarray(getattr(s, kind).matched, dtype=bool) for n, s in systems.items() if n != INGESTED]
        )
        for kind in ("drives", "charges")
    }
    for name, sys_ in systems.items():
        if not sys_.drives.matched and not sys_.charges.matched:
            continue  # no car derived as it arrived
        row("drive boundary f1", name, round(sys_.drives.f1, 4), "F1")
        row("charge boundary f1", name, round(sys_.charges.f1, 4), "F1")
        for kind in ("drives", "charges"):
            sc: Score = getattr(sys_, kind)
            row(f"{kind} energy within 2% share", name, _round(sc.energy_share_on()), "share")
        row("double-counted records", name, sys_.double_counted, "records")
        for kind in ("drives", "charges"):
            sc = getattr(sys_, kind)
            own = np.asarray(sc.matched, dtype=bool)
            row(f"{kind} energy within 2% share, own matches", name, _round(sc.energy_share_on(own)), "share")
            if name != INGESTED:  # its cars are a subset: the shared items are counted over all cars
                share = _round(sc.energy_share_on(shared[kind]))
                row(f"{kind} energy within 2% share, shared boundaries", name, share, "share")
            for key, label in REPORTS.items():
                cars = np.asarray(sc.reports) == key
                if cars.any():
                    row(
                        f"{kind} energy within 2% share, {label}",
                        name,
                        _round(sc.energy_share_on(cars)),
                        "share",
                    )
    row("cars derived as they arrive", INGESTED, ingested, "cars")
    row("cars whose incremental history equals from-scratch", INGESTED, identical, "cars")
    row("drives with shared boundaries", "twin", int(shared["drives"].sum()), "drives")
    row("charges with shared boundaries", "twin", int(shared["charges"].sum()), "sessions")
    row("truth drives", "twin", len(systems["microfleet"].drives.matched), "drives")
    row("truth charges", "twin", len(systems["microfleet"].charges.matched), "sessions")
    row("messages", "twin", fleet.messages, "messages")
    return {
        "rows": rows,
        "baseline_capacity_kwh": capacity,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def worst_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per metric and system (not the twin's counts): the worst seed's figure and the median over seeds."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["system"] != "twin":
            by.setdefault((r["metric"], r["system"]), []).append(r)
    out = []
    for (metric, system), rs in by.items():
        values = [r["value"] for r in rs if r["value"] is not None]
        if not values:
            continue
        higher_is_worse = metric in ("double-counted records",)
        worst = max(values) if higher_is_worse else min(values)
        unit = rs[0]["unit"]
        out.append({"metric": metric, "system": system, "value": worst, "unit": unit, "seed": "worst"})
        med = statistics.median(values)
        out.append(
            {"metric": metric, "system": system, "value": round(med, 4), "unit": unit, "seed": "median"}
        )
    return out


def default_sensor_model() -> str | None:
    """The twin's realistic sensor model where it has one; None (its only model) before."""
    names = {f.name for f in dataclasses.fields(Scenario)}
    return "realistic" if "sensor_model" in names else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seed",
        type=int,
        nargs="+",
        help=f"seeds to score (default {SCORED_SEEDS}; --quick: {DEVELOPMENT_SEED})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="6 cars x 3 days instead of 100 x 14; writes no JSON"
    )
    parser.add_argument("--sensor-model", default=default_sensor_model(), help="the twin's sensor model")
    parser.add_argument("--vehicles", type=int, help="cars (default 100; --quick: 6)")
    parser.add_argument("--days", type=int, help="days (default 14; --quick: 3)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, one process each (default 1)")
    parser.add_argument(
        "--ingested-cars", type=int, help="cars also derived batch by batch as they arrive (default: all)"
    )
    args = parser.parse_args()
    seeds = args.seed or ([DEVELOPMENT_SEED] if args.quick else list(SCORED_SEEDS))
    vehicles = args.vehicles or (6 if args.quick else 100)
    days = args.days or (3 if args.quick else 14)
    t0 = time.perf_counter()
    ingested = vehicles if args.ingested_cars is None else args.ingested_cars
    ran_on = provenance()  # before the run: others may commit to the tree while it runs
    work = [(seed, vehicles, days, args.sensor_model, ingested) for seed in seeds]
    if args.jobs > 1:
        with multiprocessing.Pool(min(args.jobs, len(seeds))) as pool:
            per_seed = pool.starmap(run_seed, work)
    else:
        per_seed = [run_seed(*w) for w in work]
    rows = [r for res in per_seed for r in res["rows"]]
    rows += worst_rows(rows)
    print_table(rows, seeds)
    wall_s = time.perf_counter() - t0
    Console().print(f"baseline capacities: {per_seed[0]['baseline_capacity_kwh']}; wall {wall_s:.0f} s")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        cmd = "python bench/history_accuracy.py " + " ".join(sys.argv[1:])
        result = {
            "benchmark": "history_accuracy",
            "command": cmd.strip(),
            "seeds": seeds,
            "development_seed": DEVELOPMENT_SEED,
            "vehicles": vehicles,
            "days": days,
            "ingested_cars": ingested,
            "sensor_model": args.sensor_model or "ideal (the twin's only model at this run)",
            **ran_on,
            "baseline": baseline.NAME,
            "baseline_capacity_kwh": per_seed[0]["baseline_capacity_kwh"],
            "seconds": {str(s): res["seconds"] for s, res in zip(seeds, per_seed, strict=True)},
            "wall_s": round(wall_s),
            "rows": rows,
        }
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")


def provenance() -> dict[str, Any]:
    """The commit the run was on and any product file that differed from it (others edit the same tree)."""

    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=Path(__file__).parent, capture_output=True, text=True)
        return out.stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "../src").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_src_at_run": dirty}


def print_table(rows: list[dict[str, Any]], seeds: list[int]) -> None:
    """Metrics down, systems across: the worst seed, then each seed's figure in brackets."""
    systems = list(dict.fromkeys(r["system"] for r in rows if r["system"] != "twin"))
    cell: dict[tuple[str, str], dict[Any, Any]] = {}
    for r in rows:
        cell.setdefault((r["metric"], r["system"]), {})[r["seed"]] = r["value"]
    short = {baseline.NAME: "threshold rules (baseline)"}
    table = Table(
        title=f"History accuracy against twin truth: worst seed (seeds {', '.join(map(str, seeds))})"
    )
    table.add_column("metric")
    for s in systems:
        table.add_column(short.get(s, s.replace("microfleet without ", "without ")))
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    for metric in metrics:
        if (metric, systems[0]) not in cell and not any((metric, s) in cell for s in systems):
            per = cell.get((metric, "twin"), {})
            table.add_row(metric + " (twin)", " / ".join(str(per.get(s)) for s in seeds))
            continue
        vals = []
        for s in systems:
            c = cell.get((metric, s))
            if c is None:
                vals.append("")
                continue
            each = " / ".join(str(c.get(seed)) for seed in seeds)
            vals.append(f"{c.get('worst')} ({each})" if len(seeds) > 1 else str(c.get(seeds[0])))
        table.add_row(metric, *vals)
    Console(width=max(Console().width, 200)).print(table)


if __name__ == "__main__":
    main()
