"""Trip energy per car on held-out weeks, and energy-aware routing, on the twin; FASTSim and RouteE beside.

Two twin scenarios on the realistic sensor model, every catalogue model the twin drives (the Mini EVs and
the Ami send no pack current: their drives' energy is ΔSoC x usable capacity), owners and car sharing:

* "mild": spring (from 2026-04-06), Shanghai's climate;
* "winter": January with the climate moved by ``WINTER_OFFSET_C`` so that trips run around -10 °C.

Each car's telemetry is derived into drives by Microfleet's own derivation (``HistoryDeriver``, as
``bench/history_accuracy.py``). The models fit on the drives of the first ``train_days`` and are scored on
the twin's true trips (``truth/trips``: energy at the battery) of the later days, 2 km or longer. A trip
to predict is what a driver asks before leaving: origin and destination (snapped to the road graph), the
departure time and the ambient temperature at departure (a forecast); its route is the graph's fastest
(as the twin drives) and its duration the route's length at the car's own learned speed for that hour.

* "microfleet": ``intelligence/trip_energy`` (per-car physics calibration, the fleet's residual, conformal
  P10/P90 from the last quarter of each car's training drives);
* "fastsim": NREL FASTSim 3.1 with the catalogue's parameters (``bench/fastsim_peer.py``), its auxiliary
  load plus the same HVAC prior at the trip's temperature, on the same nominal trace as Microfleet's prior;
  its P10-P90 band from its log-ratio on a sample of training drives (split conformal, fleet-wide);
* "routee": NREL RouteE-Powertrain's bundled offline model (Chevrolet Bolt BEV 2017, random forest over
  link speed and grade) on the route's links; no small car ships with it, so its kWh are scaled per model
  by the median ratio of measured to predicted energy on the training drives, and its band is conformal
  on the same drives.

Routing: 1,000 random origin-destination pairs on the graph, each for a random fitted car, hour and the
scenario's temperature at that hour: energy-optimal vs fastest route (kWh saved %, minutes added) and the
wall time of one plan (edge costs + both Dijkstras).

The ~40 % bias detail: Mini EV cars whose real consumption is the prior's / 0.6 (measured and true energy
both scaled; issue 17: a real quadricycle's prior under-predicted by about 40 %), learned from scratch:
MAPE of the prior and after 1, 2 and 3 weeks of drives.

    .venv/bin/python bench/route_energy.py [--seed 101] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

import fastsim_peer  # bench/ is on sys.path when this file runs as a script
from history_accuracy import MemoryHistory, to_columns
from microfleet.domain.catalogue import Sourced, load_catalogue
from microfleet.domain.derivation import VehicleContext
from microfleet.domain.drives import Drive
from microfleet.intelligence.energy_routing import RoadGraph, plan_route
from microfleet.intelligence.trip_energy import (
    COLD_C,
    DriveObservation,
    PhysicsPrior,
    ResidualModel,
    TripEnergyModel,
    TripQuery,
    log_ratio,
    nominal_segment,
    prior_for_model,
)
from microfleet.physics import resolve_spec, usable_kwh
from microfleet.physics.calibration import PRIORS
from microfleet.physics.hvac import hvac_power_kw
from microfleet.services.derivation import HistoryDeriver
from microfleet.sim.engine import Twin
from microfleet.sim.road_graph import road_graph
from microfleet.sim.run import run_days
from microfleet.sim.scenario import CITY_FILES, Scenario

RESULTS = Path(__file__).parent / "results" / "route_energy.json"
DEFAULT_SEED = 101  # scored; nothing was tuned on it (development: seed 1)
MODELS = (
    "wuling-hongguang-mini-ev-gen1-14kwh", "wuling-hongguang-mini-ev-gen1-9kwh", "chery-qq-ice-cream-14kwh",
    "dacia-spring-65-2024", "citroen-ami",
)  # fmt: skip
WINTER_OFFSET_C = -14.0  # Shanghai's January (about 4-5 °C mean) moved to about -10 °C
# The full run: 100 cars a scenario, two weeks fitted and one held out (the issue: at least 100 cars)
FULL = {"vehicles": 100, "days": 21, "train_days": 14, "fastsim_trips": 200, "od_pairs": 1000}
QUICK = {"vehicles": 20, "days": 14, "train_days": 10, "fastsim_trips": 60, "od_pairs": 100}
MIN_TRIP_KM = 2.0
LOCAL_UTC_OFFSET_S = 8 * 3600  # the twin's Shanghai days
ROUTEE_MODEL = "resources/bundled_registry/v2/chevrolet/bolt_bev/2017/rf_c3326385/v1"
FASTSIM_BAND_DRIVES = 150
DERIVATION_FAILURES: list[str] = []  # cars whose history derivation raised (a bug outside this bench)


@dataclass
class CarData:
    """One car: its model, derived drives, and true trips."""

    vehicle_id: str
    model_id: str
    drives: list[Drive] = field(default_factory=list)
    truth: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Scored:
    """Predictions against the truth for one system."""

    truth: list[float] = field(default_factory=list)
    p10: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p90: list[float] = field(default_factory=list)
    cold: list[bool] = field(default_factory=list)

    def add(self, truth: float, p10: float, p50: float, p90: float, ambient_c: float) -> None:
        self.truth.append(truth)
        self.p10.append(p10)
        self.p50.append(p50)
        self.p90.append(p90)
        self.cold.append(ambient_c < COLD_C)

    def mape(self, mask: np.ndarray | None = None) -> float | None:
        t, p = np.array(self.truth), np.array(self.p50)
        m = np.ones(t.size, dtype=bool) if mask is None else mask
        return round(float(np.mean(np.abs(p[m] - t[m]) / t[m]) * 100), 2) if m.any() else None

    def coverage(self, mask: np.ndarray | None = None) -> float | None:
        t = np.array(self.truth)
        m = np.ones(t.size, dtype=bool) if mask is None else mask
        inside = (np.array(self.p10) <= t) & (t <= np.array(self.p90))
        return round(float(inside[m].mean()), 4) if m.any() else None


def local_hour(ts_ms: float) -> float:
    return ((ts_ms / 1000 + LOCAL_UTC_OFFSET_S) % 86400) / 3600


def is_weekend(ts_ms: float) -> bool:
    return dt.datetime.fromtimestamp(ts_ms / 1000 + LOCAL_UTC_OFFSET_S, dt.UTC).weekday() >= 5


def simulate(
    seed: int, vehicles: int, days: int, start: dt.date, offset_c: float
) -> tuple[Twin, list[CarData]]:
    """Run the twin, derive each car's drives from its telemetry, keep its true trips."""
    twin = Twin(Scenario(vehicles=vehicles, days=days, seed=seed, start_date=start, temp_offset_c=offset_c,
                         models=MODELS))  # fmt: skip
    cars = {v.vehicle_id: CarData(v.vehicle_id, v.model.model_id) for v in twin.fleet}
    arrivals: dict[str, list[pa.Table]] = {}
    for day in run_days(twin):
        tel = day.telemetry
        vids = np.array(tel.column("vehicle_id").to_pylist())
        for vid in np.unique(vids):
            arrivals.setdefault(str(vid), []).append(tel.take(pa.array(np.flatnonzero(vids == vid))))
        for r in day.truth["trips"].to_pylist():
            cars[r["vehicle_id"]].truth.append(r)
    catalogue = load_catalogue()
    for vid, tables in arrivals.items():
        spec = catalogue.get(cars[vid].model_id)
        usable = usable_kwh(spec, catalogue.all())  # the product's capacity rule, never the twin's pack
        mem = MemoryHistory(
            to_columns(vid, tables), VehicleContext(usable_kwh=usable.value if usable else None)
        )
        mem.arrived[:] = True
        try:
            HistoryDeriver(mem).rederive(vid)
        except IndexError as exc:  # domain/charges.py summarise_charge: car left out, said
            DERIVATION_FAILURES.append(f"{vid}: {type(exc).__name__}: {exc}")
            continue
        cars[vid].drives = [d for d in mem.history.drives if d.energy_used_kwh is not None]
    return twin, [c for c in cars.values() if c.drives]


class Routes:
    """Fastest routes (free-flow time) on the routing graph, many origins per Dijkstra call."""

    def __init__(self, graph: RoadGraph) -> None:
        self.g = graph
        n = graph.n_nodes
        t = graph.edge_length_m / (graph.edge_free_speed_kmh / 3.6)
        keys = graph.edge_src * n + graph.edge_dst
        order = np.lexsort((t, keys))
        first = np.r_[True, keys[order][1:] != keys[order][:-1]]
        self.edge = order[first]
        self.keys = keys[self.edge]
        self.csr = csr_matrix(
            (t[self.edge], (graph.edge_src[self.edge], graph.edge_dst[self.edge])), shape=(n, n)
        )

    def many(self, pairs: list[tuple[int, int]]) -> list[np.ndarray]:
        """Edge ids of the fastest route of each (origin, destination) node pair."""
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(pairs)
        origins = np.unique([o for o, _ in pairs])
        n = self.g.n_nodes
        for start in range(0, origins.size, 64):
            batch = origins[start : start + 64]
            _, pred = dijkstra(self.csr, directed=True, indices=batch, return_predecessors=True)
            row = {int(o): i for i, o in enumerate(batch)}
            for k, (o, d) in enumerate(pairs):
                if o not in row or o == d:
                    continue
                p, cur, hops = pred[row[o]], d, []
                while cur != o and p[cur] >= 0:
                    prev = int(p[cur])
                    hops.append(self.edge[np.searchsorted(self.keys, prev * n + cur)])
                    cur = prev
                out[k] = np.array(hops[::-1], dtype=np.int64)
        return out


def speed_by_hour(drives: list[DriveObservation]) -> np.ndarray:
    """The car's mean trip speed (km/h) by local hour from its drives (its overall speed where few)."""
    km = np.array([d.trip.distance_km for d in drives])
    h = np.array([d.trip.duration_s for d in drives]) / 3600
    hour = np.array([int(d.trip.hour) for d in drives])
    overall = km.sum() / max(h.sum(), 1e-9) if drives else 20.0
    out = np.full(24, overall)
    for k in range(24):
        sel = hour == k
        if sel.sum() >= 3:
            out[k] = km[sel].sum() / h[sel].sum()
    return out


def observation(d: Drive, ambient_c: float) -> DriveObservation:
    km = d.distance_odometer_km if d.distance_odometer_km else d.distance_gps_km
    res = d.energy_resolution_kwh or 0.0
    trip = TripQuery(km, d.duration_s, ambient_c, local_hour(d.start_ts_ms), is_weekend(d.start_ts_ms))
    return DriveObservation(trip, float(d.energy_used_kwh or 0.0), res, d.end_ts_ms)


def predicted(obs: DriveObservation, speed_kmh: np.ndarray) -> DriveObservation:
    """The same drive with the duration Microfleet would have predicted before it (the car's hourly speed)."""
    t = obs.trip
    return replace(obs, trip=replace(t, duration_s=t.distance_km / speed_kmh[int(t.hour)] * 3600))


def fastsim_kwh(fs_dict: dict[str, Any], speed: np.ndarray, hvac_w: float) -> float:
    d = json.loads(json.dumps(fs_dict))
    d["pwr_aux_base_watts"] = d["pwr_aux_base_watts"] + hvac_w
    state, error, _ = fastsim_peer._simulate(d, speed, 0.5)
    if error is not None:
        return float("nan")
    return float(state["pt_type"]["BEV"]["res"]["state"]["energy_out_electrical_joules"] / 3.6e6)


def trace_of(q: TripQuery) -> np.ndarray:
    _, n_seg, seg = nominal_segment(np.array([q.distance_km * 1000.0]), np.array([q.duration_s]))
    return np.tile(seg[0], int(n_seg[0]))


def routee_kwh(model: Any, links: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """RouteE's kWh for each trip given its links' lengths (m) and speeds (km/h), one call for all."""
    import pandas as pd

    trip = np.concatenate([np.full(len(m), i) for i, (m, _) in enumerate(links)])
    length = np.concatenate([m for m, _ in links])
    speed = np.concatenate([v for _, v in links])
    df = pd.DataFrame({"speed_mph": speed / 1.609344, "grade_percent": 0.0, "distance": length / 1609.344})
    kwh = model.predict(df)["kwh"].to_numpy()
    return np.bincount(trip, weights=kwh, minlength=len(links))


def conformal_band(log_ratios: np.ndarray) -> tuple[float, float, float]:
    """Median and 10/90 % split-conformal offsets of a peer's log(measured / predicted)."""
    r = log_ratios[np.isfinite(log_ratios)]
    n = r.size
    return (
        float(np.median(r)),
        float(np.quantile(r, np.floor(0.1 * (n + 1)) / n)),
        float(np.quantile(r, min(1.0, np.ceil(0.9 * (n + 1)) / n))),
    )


def run_scenario(
    name: str, seed: int, size: dict[str, int], start: dt.date, offset_c: float, graph: RoadGraph,
    routes: Routes, routee: Any, rng: np.random.Generator,
) -> dict[str, Any]:  # fmt: skip
    """Fit and score one scenario; its scores per system and what the routing rows need."""
    t0 = time.perf_counter()
    twin, cars = simulate(seed, size["vehicles"], size["days"], start, offset_c)
    t_sim = time.perf_counter() - t0
    origin_ms = twin.start.timestamp() * 1000
    split_ms = origin_ms + size["train_days"] * 86_400_000
    catalogue = load_catalogue()

    def ambient_at(ts_ms: float) -> float:
        return float(twin.world.weather.at(np.array([(ts_ms - origin_ms) / 1000]))[0])

    models: dict[str, TripEnergyModel] = {}
    speeds: dict[str, np.ndarray] = {}
    fit_x, fit_r, cal_x, cal_r = [], [], [], []
    train: dict[str, list[DriveObservation]] = {}
    drives_of: dict[str, list[Drive]] = {}
    for car in cars:
        both = [
            (
                d,
                observation(
                    d, d.ambient_temp_c if d.ambient_temp_c is not None else ambient_at(d.start_ts_ms)
                ),
            )
            for d in car.drives
            if d.end_ts_ms < split_ms
        ]
        both = [(d, o) for d, o in both if o.trip.distance_km >= 0.2 and o.energy_kwh > 0]
        drives_of[car.vehicle_id] = [d for d, _ in both]
        obs = [o for _, o in both]
        train[car.vehicle_id] = obs
        prior, _ = prior_for_model(catalogue, car.model_id)
        speeds[car.vehicle_id] = speed_by_hour(obs)
        cut = int(len(obs) * 0.75)
        model = TripEnergyModel(prior).update(obs[:cut])
        pred = [predicted(o, speeds[car.vehicle_id]) for o in obs]
        if len(obs) >= 8:
            x, r = log_ratio(model, pred[:cut])
            fit_x.append(x)
            fit_r.append(r)
            x, r = log_ratio(model, pred[cut:])
            cal_x.append(x)
            cal_r.append(r)
        models[car.vehicle_id] = model.update(obs[cut:])
    residual = ResidualModel().fit(
        np.concatenate(fit_x), np.concatenate(fit_r), np.concatenate(cal_x), np.concatenate(cal_r), seed=seed
    )
    for m in models.values():
        m.residual = residual
    # test trips: the truth after the split, 2 km or more
    tests: list[tuple[CarData, dict[str, Any], TripQuery, np.ndarray]] = []
    pairs = []
    rows_truth = [
        (c, r)
        for c in cars
        for r in c.truth
        if r["depart_ts_ms"] >= split_ms and r["distance_km"] >= MIN_TRIP_KM
    ]
    for _, r in rows_truth:
        pairs.append((graph.snap(r["origin_lat_deg"], r["origin_lon_deg"]),
                      graph.snap(r["destination_lat_deg"], r["destination_lon_deg"])))  # fmt: skip
    paths = routes.many(pairs)
    for (c, r), path in zip(rows_truth, paths, strict=True):
        if path.size == 0:
            continue
        km = float(graph.edge_length_m[path].sum() / 1000)
        hour = local_hour(r["depart_ts_ms"])
        q = TripQuery(km, km / speeds[c.vehicle_id][int(hour)] * 3600, ambient_at(r["depart_ts_ms"]), hour,
                      is_weekend(r["depart_ts_ms"]))  # fmt: skip
        tests.append((c, r, q, path))
    scores = {s: Scored() for s in ("microfleet", "fastsim", "routee")}
    basis_prior = 0
    for c, r, q, _ in tests:
        f = models[c.vehicle_id].predict([q])
        basis_prior += f.basis != "car"
        scores["microfleet"].add(r["energy_kwh"], f.p10_kwh[0], f.p50_kwh[0], f.p90_kwh[0], q.ambient_temp_c)

    # RouteE: links at the route's free-flow speeds scaled to the predicted duration
    def links(path: np.ndarray, q: TripQuery) -> tuple[np.ndarray, np.ndarray]:
        length = graph.edge_length_m[path]
        v = graph.edge_free_speed_kmh[path]
        free_s = float(np.sum(length / (v / 3.6)))
        return length, v * free_s / max(q.duration_s, 1.0)

    by_model: dict[str, list[float]] = {}
    train_pairs, train_q, train_model, train_y = [], [], [], []
    for c in cars:
        for o, d in zip(train[c.vehicle_id], drives_of[c.vehicle_id], strict=True):
            if d.start_lat_deg is None or d.end_lat_deg is None or o.trip.distance_km < MIN_TRIP_KM:
                continue
            try:
                pair = (
                    graph.snap(d.start_lat_deg, d.start_lon_deg),
                    graph.snap(d.end_lat_deg, d.end_lon_deg),
                )
            except Exception:  # a fix off the graph: the drive is left out of the peer's scaling
                continue
            train_pairs.append(pair)
            train_q.append(predicted(o, speeds[c.vehicle_id]).trip)
            train_model.append(c.model_id)
            train_y.append(o.energy_kwh)
    train_paths = routes.many(train_pairs)
    ok = [i for i, p in enumerate(train_paths) if p.size]
    pred_train = routee_kwh(routee, [links(train_paths[i], train_q[i]) for i in ok])
    for i, kwh in zip(ok, pred_train, strict=True):
        by_model.setdefault(train_model[i], []).append(np.log(train_y[i] / max(kwh, 1e-6)))
    band = {m: conformal_band(np.array(v)) for m, v in by_model.items()}
    pred_test = routee_kwh(routee, [links(p, q) for _, _, q, p in tests])
    everyone = conformal_band(np.concatenate([np.array(v) for v in by_model.values()]))
    for (c, r, q, _), kwh in zip(tests, pred_test, strict=True):
        med, lo, hi = band.get(c.model_id, everyone)
        p50 = kwh * np.exp(med)
        scores["routee"].add(
            r["energy_kwh"], p50 * np.exp(lo - med), p50, p50 * np.exp(hi - med), q.ambient_temp_c
        )
    # FASTSim on a sample (0.1 s a trip): its band from a sample of training drives
    fs_cache: dict[str, tuple[dict[str, Any], PhysicsPrior]] = {}

    def fs_vehicle(model_id: str) -> tuple[dict[str, Any], PhysicsPrior]:
        if model_id not in fs_cache:
            prior, label = prior_for_model(catalogue, model_id)
            spec = catalogue.get(
                model_id if "generic" not in label else "wuling-hongguang-mini-ev-gen1-14kwh"
            )
            resolved = resolve_spec(spec, catalogue.all())
            if "generic" in label:  # the twin's own rule for the QQ: the Mini EV with its (assumed) mass
                twin_mass = next(v.model.curb_mass_kg for v in twin.fleet if v.model.model_id == model_id)
                resolved = replace(resolved, curb_mass_kg=Sourced(twin_mass, "twin assumed mass", "assumed"))
            tyre = spec.tyre_size.value if spec.tyre_size else None
            d, _ = fastsim_peer.vehicle_dict(fastsim_peer.template(), resolved, tyre, PRIORS, 75.0)
            fs_cache[model_id] = (d, prior)
        return fs_cache[model_id]

    def fs_predict(model_id: str, q: TripQuery) -> float:
        d, prior = fs_vehicle(model_id)
        p = prior.params
        hvac = hvac_power_kw(
            np.array([[q.ambient_temp_c]]), 22.0, p.cabin_ua_w_per_k, p.hvac_heat_max_kw, p.hvac_cool_max_kw,
            p.has_heat_pump,
        )  # fmt: skip
        hvac_kw = float(hvac[0, 0])
        return fastsim_kwh(d, trace_of(q), hvac_kw * 1000)

    idx = rng.permutation(len(train_q))[:FASTSIM_BAND_DRIVES]
    fs_r = np.array([np.log(train_y[i] / fs_predict(train_model[i], train_q[i])) for i in idx])
    med, lo, hi = conformal_band(fs_r)
    for k in rng.permutation(len(tests))[: size["fastsim_trips"]]:
        c, r, q, _ = tests[k]
        kwh = fs_predict(c.model_id, q)
        if np.isfinite(kwh):
            scores["fastsim"].add(r["energy_kwh"], kwh * np.exp(lo), kwh, kwh * np.exp(hi), q.ambient_temp_c)
    fitted = [vid for vid, m in models.items() if m.calibration is not None and m.calibration.n_drives >= 10]
    return {
        "name": name,
        "twin": twin,
        "models": models,
        "speeds": speeds,
        "fitted": fitted,
        "scores": scores,
        "train": train,
        "tests": tests,
        "cars": cars,
        "details": {
            "cars": len(cars),
            "cars_left_out_derivation_failed": list(DERIVATION_FAILURES),
            "train_drives": sum(len(v) for v in train.values()),
            "test_trips_2km": len(tests),
            "test_trips_on_prior": basis_prior,
            "fastsim_band_from_drives": int(idx.size),
            "fastsim_band_log_ratio": [round(med, 3), round(lo, 3), round(hi, 3)],
            "routee_scale_by_model": {m: round(float(np.exp(b[0])), 3) for m, b in band.items()},
            "ambient_test_mean_c": round(float(np.mean([q.ambient_temp_c for _, _, q, _ in tests])), 1),
            "residual_conformal_cold": [round(x, 3) for x in residual.q_cold],
            "residual_conformal_mild": [round(x, 3) for x in residual.q_mild],
            "simulate_and_derive_s": round(t_sim, 1),
            "total_s": round(time.perf_counter() - t0, 1),
            **{f"{s} mape % / coverage": [sc.mape(), sc.coverage()] for s, sc in scores.items()},
        },
    }


def bias_detail(run: dict[str, Any], split_ms: float) -> dict[str, Any]:
    """Mini EV cars using the prior's / 0.6: MAPE of the prior and after 1, 2, 3 weeks of their drives."""
    out: dict[str, list[float]] = {"prior": [], "week 1": [], "week 2": [], "week 3": []}
    signed: dict[str, list[float]] = {k: [] for k in out}
    catalogue = load_catalogue()
    factor = 1 / 0.6
    for c, r, q, _ in run["tests"]:
        if not c.model_id.startswith("wuling-hongguang-mini-ev-gen1-14"):
            continue
        obs = [replace(o, energy_kwh=o.energy_kwh * factor) for o in run["train"][c.vehicle_id]]
        prior, _ = prior_for_model(catalogue, c.model_id)
        truth = r["energy_kwh"] * factor
        e = TripEnergyModel(prior).predict([q]).p50_kwh[0] / truth - 1
        out["prior"].append(abs(e))
        signed["prior"].append(e)
        t0 = min((o.end_ts_ms for o in obs), default=0)
        for w in (1, 2, 3):
            seen = [o for o in obs if o.end_ts_ms < t0 + w * 7 * 86_400_000]
            m = TripEnergyModel(prior).update(seen)
            m.residual = None
            if m.calibration is not None and m.calibration.n_drives >= 10:
                e = m.calibrated_kwh([q])[0][0] / truth - 1
                out[f"week {w}"].append(abs(e))
                signed[f"week {w}"].append(e)
    return {
        "mape %": {k: (round(float(np.mean(v)) * 100, 1) if v else None) for k, v in out.items()},
        "mean error %": {k: (round(float(np.mean(v)) * 100, 1) if v else None) for k, v in signed.items()},
        "trips": len(out["prior"]),
    }


def routing_samples(
    run: dict[str, Any], graph: RoadGraph, pairs: int, rng: np.random.Generator
) -> tuple[list[float], list[float], list[float]]:
    """Energy-optimal vs fastest over random OD pairs, each for a random fitted car, hour and temperature:
    kWh saved (%), minutes added and the wall time of each plan (ms)."""
    saved: list[float] = []
    added: list[float] = []
    ms: list[float] = []
    cars = run["fitted"]
    while len(ms) < pairs:
        vid = cars[rng.integers(len(cars))]
        o, d = (int(x) for x in rng.integers(0, graph.n_nodes, 2))
        if o == d:
            continue
        hour = float(rng.integers(0, 24))
        day = int(rng.integers(0, run["twin"].scenario.days))
        ambient = float(run["twin"].world.weather.at(np.array([(day * 24 + hour) * 3600]))[0])
        speed = run["speeds"][vid]
        factor = float(np.median(speed) / speed[int(hour)])
        t = time.perf_counter()
        plan = plan_route(
            graph, run["models"][vid], o, d, hour=hour, ambient_temp_c=ambient, time_factor=factor
        )
        ms.append((time.perf_counter() - t) * 1000)
        saved.append(plan.kwh_saved / plan.fastest.energy_kwh * 100)
        added.append(plan.minutes_added)
    return saved, added, ms


def routing_summary(saved: list[float], added: list[float], ms: list[float]) -> dict[str, Any]:
    """The routing rows' figures over every pair."""
    return {
        "kwh saved vs fastest %": round(float(np.mean(saved)), 2),
        "minutes added vs fastest": round(float(np.mean(added)), 2),
        "routing p99 ms": round(float(np.percentile(ms, 99)), 1),
        "routing p50 ms": round(float(np.percentile(ms, 50)), 1),
        "pairs where the energy route differs": int(np.sum(np.array(saved) > 1e-9)),
        "pairs": len(ms),
    }


_SHARED: dict[str, Any] = {}


def scenario_job(job: tuple[str, int, dict[str, int], dt.date, float]) -> dict[str, Any]:
    """One scenario in a worker process: its scores, details, routing samples (half the pairs) and the
    bias detail (the mild scenario's)."""
    name, seed, size, start, offset = job
    rng = np.random.default_rng([seed, 17])
    graph = _SHARED["graph"]
    run = run_scenario(name, seed, size, start, offset, graph, _SHARED["routes"], _SHARED["routee"], rng)
    return {
        "name": name,
        "details": run["details"],
        "scores": run["scores"],
        "routing": routing_samples(run, graph, size["od_pairs"] // 2, rng),
        "bias": bias_detail(run, 0.0) if name == "mild" else None,
    }


def route_prediction(seed: int, quick: bool, details: dict[str, Any]) -> list[dict[str, Any]]:
    """Route prediction's rows (next destination, departure time): with ``--quick``, its ``prediction_rows``
    run here; for a full run, its own full run's JSON of the same seed, else none (and the details say so)."""
    saved = Path(__file__).parent / "results" / "route_prediction_eval.json"
    if not quick:  # their full run is theirs to make (120 cars, 10 weeks): merged from its JSON only
        doc = json.loads(saved.read_text(encoding="utf-8")) if saved.exists() else {}
        if doc.get("details", {}).get("seed") == seed:
            details["route_prediction"] = f"rows from {saved.name} ({doc.get('command')})"
            return list(doc["rows"])
        details["route_prediction"] = f"no {saved.name} of seed {seed} yet: route prediction rows left out"
        return []
    try:
        import route_prediction_eval
    except ImportError as exc:
        details["route_prediction"] = f"bench/route_prediction_eval.py not importable: {exc}"
        return []
    rows, pred_details = route_prediction_eval.prediction_rows(seed, quick)
    details["route_prediction"] = pred_details
    return list(rows)


def main() -> None:
    """Run the benchmark, print its table and write its JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--quick", action="store_true", help="20 cars, 14 days per scenario (full: 100 cars, 28)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--smoke", action="store_true", help="a tiny run that only checks the bench runs")
    ap.add_argument(
        "--merge-route-prediction", action="store_true",
        help="only merge route prediction's full-run rows into the existing results JSON (no new run)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.merge_route_prediction:
        doc = json.loads(args.out.read_text(encoding="utf-8"))
        theirs = ("next destination", "novel", "departure")
        ours = [r for r in doc["rows"] if not r["metric"].startswith(theirs)]
        doc["rows"] = ours + route_prediction(doc["details"]["seed"], False, doc["details"])
        args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
        return
    size = dict(QUICK if args.quick else FULL)
    if args.smoke:
        size.update(vehicles=6, days=5, train_days=4, fastsim_trips=5, od_pairs=10)
    t0 = time.perf_counter()
    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    graph = road_graph((root if root.is_dir() else Path("../shared/data")) / CITY_FILES["shanghai_center"])
    routes = Routes(graph)
    import routee.powertrain as pt

    routee = pt.load_model(Path(pt.__file__).parent / ROUTEE_MODEL)
    jobs = [
        ("mild", args.seed, size, dt.date(2026, 4, 6), 0.0),
        ("winter", args.seed + 1, size, dt.date(2026, 1, 5), WINTER_OFFSET_C),
    ]
    _SHARED.update(graph=graph, routes=routes, routee=routee)
    # the two scenarios in two processes (forked: the graph and RouteE's model are shared)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(scenario_job, jobs)
    rows: list[dict[str, Any]] = []
    for system in ("microfleet", "fastsim", "routee"):
        merged = Scored()
        for run in runs:
            sc: Scored = run["scores"][system]
            for k in ("truth", "p10", "p50", "p90", "cold"):
                getattr(merged, k).extend(getattr(sc, k))
        rows.append({"metric": "trip energy mape %", "system": system, "value": merged.mape(), "unit": "%"})
        rows.append({"metric": "trip energy p10-p90 coverage", "system": system, "value": merged.coverage(),
                     "unit": "fraction"})  # fmt: skip
    routing = routing_summary(*([x for r in runs for x in r["routing"][k]] for k in range(3)))
    rows.append(
        {
            "metric": "kwh saved vs fastest %",
            "system": "microfleet",
            "value": routing["kwh saved vs fastest %"],
            "unit": "%",
        }
    )
    rows.append(
        {
            "metric": "minutes added vs fastest",
            "system": "microfleet",
            "value": routing["minutes added vs fastest"],
            "unit": "min",
        }
    )
    rows.append(
        {"metric": "routing p99 ms", "system": "microfleet", "value": routing["routing p99 ms"], "unit": "ms"}
    )
    details: dict[str, Any] = {
        "seed": args.seed,
        "size": size,
        "scenarios": {r["name"]: r["details"] for r in runs},
        "winter_only": {
            s: [r["scores"][s].mape(), r["scores"][s].coverage()] for r in runs[1:] for s in r["scores"]
        },
        "routing": routing,
        "bias_removal": runs[0]["bias"],
    }
    rows += route_prediction(args.seed, args.quick, details)
    details["total_s"] = round(time.perf_counter() - t0, 1)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="trip energy and energy-aware routing (held-out days)")
    for col in ("metric", "system", "value", "unit"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["metric"], r["system"], str(r["value"]), r["unit"])
    Console().print(table)
    Console().print({k: v for k, v in details.items() if k != "route_prediction"})
    cmd = "python bench/route_energy.py --seed " + str(args.seed) + (" --quick" if args.quick else "")
    doc = {"benchmark": "route_energy", "command": cmd, "rows": rows, "details": details}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
