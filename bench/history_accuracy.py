"""History accuracy: drives and charges derived from twin telemetry, scored against the twin's truth.

The twin (``microfleet.sim``) drives a fleet for two weeks and sends its telemetry through a faulty link
(duplicated, delayed and therefore shuffled messages). Microfleet receives the messages in send order,
in hourly batches per car, and after each batch re-derives the window the new records touch
(``HistoryDeriver.records_landed``), exactly as the ingest pipeline does. The thresholds-only baseline
(Traccar's rules on speed, position, time and SoC; ``domain/threshold_trips.py``) sees the same records,
de-duplicated and sorted, all at once. Its energy is ΔSoC x a capacity, and it is scored three ways: with
no capacity (the catalogue states no usable kWh for either default model, so it reports no energy: the old
"threshold rules" rows, kept for one release); "with capacity", the capacity the physics resolves for the
car (``physics.resolve_spec``: the stated usable kWh, else the cited 0.93 x the stated kWh; SoC is a share
of usable energy, so this is its best honest figure); and "with rated capacity", the kWh as the catalogue
states it (usable, else gross, else the headline figure: what a spec-sheet report would use). Never the
twin's true capacity.

Scoring reads only the twin's truth: ``truth/trips`` (drive times and battery energy) and
``truth/samples`` (state and battery power at every sample: charge sessions are its runs of "charge").
A boundary counts when within 60 s of the truth; an energy counts when the drive's (charge's) both
boundaries matched and the energy is within 2 % of the truth. Every system is scored by the same rule
against the same truth items; the "shared boundaries" rows score energy only on the truth items whose two
boundaries Microfleet and the baseline both found, so the energy methods meet on identical boundaries.

    .venv/bin/python bench/history_accuracy.py [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from microfleet.domain.catalogue import Catalogue, load_catalogue
from microfleet.domain.derivation import (
    CALIBRATION_SESSIONS,
    DerivedHistory,
    ResumePoint,
    VehicleContext,
)
from microfleet.domain.threshold_trips import threshold_charges, threshold_trips
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns
from microfleet.errors import PhysicsInputError
from microfleet.physics import resolve_spec
from microfleet.physics.priors import USABLE_FRACTION_OF_STATED
from microfleet.services.derivation import HistoryDeriver
from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario

RESULTS = Path(__file__).parent / "results" / "history_accuracy.json"
# the baseline's systems: no capacity (old rows), physics-resolved capacity, rated capacity
BASELINES = ("threshold rules", "threshold rules with capacity", "threshold rules with rated capacity")
BOUNDARY_TOLERANCE_MS = 60_000
ENERGY_TOLERANCE = 0.02
BATCH_MS = 3_600_000  # messages reach the server in hourly batches per car
LINK = LinkFaults(duplicate_p=0.03, delay_p=0.05, delay_max_s=900.0)  # shuffles come from the delays
FLOATS = (
    "lat_deg", "lon_deg", "speed_kmh", "odometer_km", "soc_pct", "pack_voltage_v", "pack_current_a",
    "charger_power_kw", "charger_ac_voltage_v", "ambient_temp_c", "altitude_m", "energy_used_kwh",
    "energy_recovered_kwh",
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


def simulate(vehicles: int, days: int, seed: int) -> Fleet:
    twin = Twin(Scenario(vehicles=vehicles, days=days, seed=seed, link=LINK))
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
    energy_ok: int = 0
    matched: list[bool] = field(default_factory=list)  # per truth item: both boundaries found
    within: list[bool] = field(default_factory=list)  # per truth item: energy within the tolerance

    def add(self, truth: list[tuple[int, int, float]], pred: list[tuple[int, int, float | None]]) -> None:
        pred = sorted(pred)
        tp, both = match([(a, b) for a, b, _ in truth], [(a, b) for a, b, _ in pred])
        self.tp += tp
        self.n_truth += 2 * len(truth)
        self.n_pred += 2 * len(pred)
        for (_, _, e_true), j in zip(truth, both, strict=True):
            e_pred = pred[j][2] if j is not None else None
            ok = e_pred is not None and abs(e_pred - e_true) <= ENERGY_TOLERANCE * abs(e_true)
            self.energy_ok += ok
            self.matched.append(j is not None)
            self.within.append(ok)

    @property
    def f1(self) -> float:
        return 2 * self.tp / (self.n_truth + self.n_pred) if self.n_truth + self.n_pred else 1.0

    def energy_share(self) -> float:
        return self.energy_ok / (self.n_truth // 2) if self.n_truth else 1.0

    def energy_share_on(self, common: np.ndarray) -> float | None:
        """Energy within the tolerance over the truth items in ``common`` (a boolean mask)."""
        return float(np.asarray(self.within)[common].mean()) if common.any() else None


def capacities(catalogue: Catalogue, model_id: str) -> tuple[float | None, float | None]:
    """The baseline's two honest capacities for a model: rated (as the catalogue states it) and resolved.

    Rated: usable kWh if the catalogue states it, else gross, else the headline kWh. Resolved: what the
    physics uses (``resolve_spec``); a car the physics cannot resolve for want of another value (the QQ
    Ice Cream has no published mass) gets the same rule for capacity: stated usable, else the cited prior
    fraction of the stated kWh.
    """
    spec = catalogue.get(model_id)
    stated = spec.battery_usable_kwh or spec.battery_gross_kwh or spec.battery_nominal_kwh
    rated = stated.value if stated else None
    try:
        resolved: float | None = resolve_spec(spec, catalogue.all()).usable_kwh.value
    except PhysicsInputError:
        if spec.battery_usable_kwh:
            resolved = spec.battery_usable_kwh.value
        else:
            resolved = rated * USABLE_FRACTION_OF_STATED if rated is not None else None
    return rated, resolved


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


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


def run(seed: int, quick: bool) -> dict[str, Any]:
    vehicles, days = (6, 3) if quick else (50, 14)
    console = Console()
    t0 = time.perf_counter()
    fleet = simulate(vehicles, days, seed)
    console.print(
        f"twin: {vehicles} cars x {days} days, {fleet.messages:,} messages "
        f"({fleet.duplicated:,} duplicated, {fleet.delayed:,} delayed) in {time.perf_counter() - t0:.0f} s"
    )
    charges_truth = truth_charges(pa.concat_tables(fleet.truth_samples))
    catalogue = load_catalogue()
    ours: dict[str, Score] = {"d": Score(), "c": Score()}
    # the baseline without capacity (old rows), with the physics-resolved and with the rated capacity
    bases: dict[str, dict[str, Score]] = {s: {"d": Score(), "c": Score()} for s in BASELINES}
    given: dict[str, dict[str, float | None]] = {}
    dbl = recomputes = recomputed_records = 0
    identical = True
    t1 = time.perf_counter()
    for vid, tables in fleet.arrivals.items():
        spec = catalogue.get(fleet.model[vid])
        usable = spec.battery_usable_kwh.value if spec.battery_usable_kwh else None
        rated, resolved = capacities(catalogue, fleet.model[vid])
        given[fleet.model[vid]] = {"usable_kwh": usable, "rated_kwh": rated, "resolved_kwh": resolved}
        arrival_ts = pa.concat_tables(tables).column("ts_ms").to_numpy()
        send = np.concatenate(fleet.send_ms[vid])
        cols = to_columns(vid, tables)
        mem = MemoryHistory(cols, VehicleContext(usable_kwh=usable))
        deriver = HistoryDeriver(mem)
        order = np.argsort(send, kind="stable")
        batch = send[order] // BATCH_MS
        cuts = np.flatnonzero(np.diff(batch)) + 1
        for part in np.split(order, cuts):
            fresh = mem.land(arrival_ts[part])
            report = deriver.records_landed(vid, fresh)
            if report is not None:
                recomputes += 1
                recomputed_records += report.records
        dbl += double_counted(mem)
        incremental = (mem.history.drives, mem.history.charges)
        deriver.rederive(vid)
        identical &= incremental == (mem.history.drives, mem.history.charges)
        ours["d"].add(
            fleet.truth_drives.get(vid, []),
            [(d.start_ts_ms, d.end_ts_ms, d.energy_used_kwh) for d in incremental[0]],
        )
        ours["c"].add(
            charges_truth.get(vid, []),
            [(c.start_ts_ms, c.power_end_ts_ms, c.energy_added_kwh) for c in incremental[1]],
        )
        for system, kwh in zip(BASELINES, (usable, resolved, rated), strict=True):
            bases[system]["d"].add(
                fleet.truth_drives.get(vid, []),
                [(s.start_ts_ms, s.end_ts_ms, s.energy_kwh) for s in threshold_trips(cols, kwh)],
            )
            bases[system]["c"].add(
                charges_truth.get(vid, []),
                [(s.start_ts_ms, s.end_ts_ms, s.energy_kwh) for s in threshold_charges(cols, kwh)],
            )
    console.print(
        f"derivation: {recomputes:,} recomputes over {recomputed_records:,} records "
        f"in {time.perf_counter() - t1:.0f} s; incremental == from scratch: {identical}"
    )
    rows = []
    for system, sc in (("microfleet", ours), *bases.items()):
        for metric, value, unit in (
            ("drive boundary f1", sc["d"].f1, "F1"),
            ("charge boundary f1", sc["c"].f1, "F1"),
            ("drives energy within 2% share", sc["d"].energy_share(), "share"),
            ("charges energy within 2% share", sc["c"].energy_share(), "share"),
        ):
            rows.append({"metric": metric, "system": system, "value": round(value, 4), "unit": unit})
    # the baseline's boundaries do not depend on the capacity: one shared set serves both capacities
    for kind, noun in (("d", "drives"), ("c", "charges")):
        common = np.asarray(ours[kind].matched) & np.asarray(bases[BASELINES[0]][kind].matched)
        for system, sc in (("microfleet", ours), *list(bases.items())[1:]):
            rows.append({
                "metric": f"{noun} energy within 2% share, shared boundaries", "system": system,
                "value": _round(sc[kind].energy_share_on(common)), "unit": "share",
            })  # fmt: skip
        rows.append({
            "metric": f"{noun} with shared boundaries", "system": "twin", "value": int(common.sum()),
            "unit": noun if noun == "drives" else "sessions",
        })  # fmt: skip
    rows.append({"metric": "double-counted records", "system": "microfleet", "value": dbl, "unit": "records"})
    rows.append(
        {
            "metric": "incremental equals from-scratch",
            "system": "microfleet",
            "value": int(identical),
            "unit": "bool",
        }
    )
    rows.append(
        {"metric": "truth drives", "system": "twin", "value": ours["d"].n_truth // 2, "unit": "drives"}
    )
    rows.append(
        {"metric": "truth charges", "system": "twin", "value": ours["c"].n_truth // 2, "unit": "sessions"}
    )
    rows.append({"metric": "messages", "system": "twin", "value": fleet.messages, "unit": "messages"})
    return {"baseline_capacity_kwh": given, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="6 cars x 3 days instead of 50 x 14")
    args = parser.parse_args()
    result = run(args.seed, args.quick)
    table = Table(title="History accuracy against twin truth")
    for col in ("metric", "microfleet (twin)", *BASELINES, "unit"):
        table.add_column(col)
    by_metric: dict[str, dict[str, Any]] = {}
    for r in result["rows"]:
        by_metric.setdefault(r["metric"], {"unit": r["unit"]})[r["system"]] = r["value"]
    for metric, v in by_metric.items():
        table.add_row(
            metric,
            str(v.get("microfleet", v.get("twin", ""))),
            *(str(v.get(b, "")) for b in BASELINES),
            v["unit"],
        )
    console = Console(width=max(Console().width, 150))
    console.print(f"baseline capacities: {result['baseline_capacity_kwh']}")
    console.print(table)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        cmd = "python bench/history_accuracy.py " + " ".join(sys.argv[1:])
        RESULTS.write_text(
            json.dumps({"benchmark": "history_accuracy", "command": cmd.strip(), **result}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
