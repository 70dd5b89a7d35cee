"""Charging plans on real sessions: ACN-Data's Caltech and JPL workplace garages in ACN-Sim (issue 15).

Every system is run inside acnportal's simulator on the same sessions (``--acn-days`` from Monday
2019-06-03, Pacific time; one day with ``--quick``), with acnportal's own site models (``caltech_acn``,
``jpl_acn``: their EVSEs, with ``basic_evse=True`` for continuous pilots, and their transformer and line
constraints) and 15-minute periods. As in acnportal's ``acndata_events``, an EV asks for the energy it
was delivered; the only foresight is the driver's estimated departure (the real departure where the
driver gave none). Microfleet plans every period over the next 24 hours, each session's energy due by
the driver's estimate less the margin by which 10 % of drivers left earlier in May 2019 (learned before
the scored window), with the site's transformer capacity as its one site limit (150 kW Caltech,
45 + 150 kW JPL); its first period is scaled down, if needed, until the network's phase constraints
(which the planner does not model) accept it. The offline optimum is Microfleet's programme over the
whole window with the real departures, on the site limit alone (a lower bound). Prices: SCE TOU-EV-8
(2018), as shipped in ``domain/data/tariffs``; ACN-Sim measures energy at the EVSE, so there are no
charging losses here.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from microfleet.domain.reference_data import reference_data_dir
from microfleet.domain.tariffs import load_example_tariff
from microfleet.planning.charging import (
    Booking,
    Car,
    CareBounds,
    Charger,
    FleetSnapshot,
    PlugWindow,
    Site,
    Tariff,
    plan,
)
from microfleet.planning.charging_model import solve

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
from acnportal import acnsim, algorithms  # noqa: E402 (after the filter: acnportal imports pkg_resources)

ACN = reference_data_dir() / "charging_sessions" / "acn"
PERIOD_MIN = 15
PACIFIC = dt.timezone(dt.timedelta(hours=-7))  # PDT in June
START = dt.datetime(2019, 6, 3, tzinfo=PACIFIC)  # a Monday
SITE_KW = {"caltech": 150.0, "jpl": 45.0 + 150.0}  # acnportal site models' transformer capacities (kW)
HORIZON = 96
LOSSLESS = ((7.0, 1.0),)


@dataclass(frozen=True)
class Session:
    """One ACN session in periods from the start."""

    session_id: str
    station_id: str
    arrival: int
    departure: int
    estimated: int
    energy_kwh: float


def early_departure_margin(site: str) -> int:
    """Periods by which drivers leave before their estimate, 10th percentile, from the site's May 2019.

    Learned on sessions before the scored window (never on it): Microfleet plans each session's energy
    to be in by its estimate less this margin, and keeps charging until the estimate if needed.
    """
    errors = []
    with gzip.open(ACN / site / "2019-05-01_2019-08-31.csv.gz", "rt") as fh:
        for r in csv.DictReader(fh):
            if r["estimated_departure"] and r["arrival"] < "2019-06-01":
                gap = dt.datetime.fromisoformat(r["departure"]) - dt.datetime.fromisoformat(
                    r["estimated_departure"]
                )
                errors.append(gap.total_seconds() / 60 / PERIOD_MIN)
    return max(0, math.ceil(-float(np.quantile(errors, 0.1)))) if errors else 0


def load_sessions(site: str, days: int) -> list[Session]:
    """Sessions arriving in the window, on stations of the site model, one at a time per station."""
    end = START + dt.timedelta(days=days)
    out: list[Session] = []
    busy: dict[str, int] = {}
    with gzip.open(ACN / site / "2019-05-01_2019-08-31.csv.gz", "rt") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["arrival"])
    for r in rows:
        arrival = dt.datetime.fromisoformat(r["arrival"])
        if not START <= arrival < end:
            continue
        a = math.ceil((arrival - START).total_seconds() / 60 / PERIOD_MIN)
        d = math.floor((dt.datetime.fromisoformat(r["departure"]) - START).total_seconds() / 60 / PERIOD_MIN)
        est_text = r["estimated_departure"]
        e = d
        if est_text:
            e = math.floor((dt.datetime.fromisoformat(est_text) - START).total_seconds() / 60 / PERIOD_MIN)
        energy = float(r["delivered_energy (kWh)"] or 0.0)
        if d <= a or energy <= 0 or busy.get(r["station_id"], -1) > a:
            continue
        busy[r["station_id"]] = d
        out.append(Session(r["session_id"], r["station_id"], a, d, max(e, a + 1), energy))
    return out


def network(site: str) -> acnsim.ChargingNetwork:
    """acnportal's site model with continuous pilots."""
    if site == "caltech":
        return acnsim.network.sites.caltech_acn(basic_evse=True)
    return acnsim.network.sites.jpl_acn(basic_evse=True)


def prices(n: int) -> np.ndarray:
    """SCE TOU-EV-8 per period from the start."""
    tou = load_example_tariff("sce_tou_ev_8_oct_2018")
    t0 = int(START.timestamp() * 1000)
    return np.array([tou.price_at(t0 + k * PERIOD_MIN * 60_000) for k in range(n)])


class MicrofleetAlgo(algorithms.BaseAlgorithm):  # type: ignore[misc]
    """Microfleet's planner as an ACN-Sim scheduler: a 24-hour plan every period, its first period applied."""

    def __init__(self, limit_kw: float, price: np.ndarray, margin: int) -> None:
        super().__init__()
        self.limit_kw = limit_kw
        self.margin = margin
        self.price = price
        self.max_recompute = 1
        self.solve_s = 0.0

    def schedule(self, active_sessions: list[algorithms.SessionInfo]) -> dict[str, list[float]]:
        """Grid kW from the plan, turned into pilot amps and scaled into the network's constraints."""
        if not active_sessions:
            return {}
        now = self.interface.current_time
        horizon = max(HORIZON, max(s.estimated_departure - now for s in active_sessions) + 1)
        cars, chargers, bookings = [], [], []
        for s in active_sessions:
            volts = self.interface.evse_voltage(s.station_id)
            kw = self.interface.max_pilot_signal(s.station_id) * volts / 1000.0
            until = max(1, s.estimated_departure - now)
            due = max(1, until - self.margin)
            need = s.requested_energy
            cars.append(
                Car(s.session_id, min(s.energy_delivered, need), need, kw, efficiency_points=((kw, 1.0),),
                    plugged_charger=s.station_id, plugged_until_slot=due)
            )  # fmt: skip
            chargers.append(Charger(s.station_id, "site", kw))
            # planned as leaving at the estimate less the margin; a later re-plan moves that on if it stays
            bookings.append(Booking(s.session_id, s.session_id, due, need))
        price = (
            np.resize(self.price[now:], horizon)
            if now < len(self.price)
            else np.full(horizon, self.price[-1])
        )
        snap = FleetSnapshot(
            0, horizon, tuple(cars), tuple(chargers), (Site("site", self.limit_kw),), tuple(bookings),
            Tariff(tuple(float(p) for p in price), "USD"), CareBounds(1.0, 1.0, 0.0), PERIOD_MIN * 60,
        )  # fmt: skip
        t0 = time.perf_counter()
        kw_now = solve(snap, time_limit_s=30.0, shortfall_penalty_per_kwh=None).power_kw[:, 0]
        self.solve_s += time.perf_counter() - t0
        amps = {
            s.station_id: [float(k) * 1000.0 / self.interface.evse_voltage(s.station_id)]
            for s, k in zip(active_sessions, kw_now, strict=True)
        }
        if self.interface.is_feasible(amps):
            return amps
        lo, hi = 0.0, 1.0
        for _ in range(20):  # the largest common scale the phase constraints accept
            mid = (lo + hi) / 2
            if self.interface.is_feasible({k: [v[0] * mid] for k, v in amps.items()}):
                lo = mid
            else:
                hi = mid
        return {k: [v[0] * lo] for k, v in amps.items()}


def simulate(site: str, sessions: list[Session], algo: object, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ACN-Sim; returns kW per station per period and energy delivered per session."""
    net = network(site)
    events = acnsim.EventQueue()
    for s in sessions:
        battery = acnsim.Battery(100.0, 0.0, 7.0)
        ev = acnsim.EV(s.arrival, s.departure, s.energy_kwh, s.station_id, s.session_id, battery, s.estimated)
        events.add_event(acnsim.PluginEvent(s.arrival, ev))
    sim = acnsim.Simulator(net, algo, events, START, period=PERIOD_MIN, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.run()
    volts = np.array([net._voltages[i] for i in range(len(net.station_ids))])
    rates = np.zeros((len(net.station_ids), n))
    got = sim.charging_rates[:, :n]
    rates[:, : got.shape[1]] = got
    delivered = np.array([sim.ev_history[s.session_id].energy_delivered for s in sessions])
    return rates * volts[:, None] / 1000.0, delivered


def offline_optimum(
    site: str, sessions: list[Session], price: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The whole window with real departures known: grid kW per session per period, energy per session."""
    cars = tuple(
        Car(s.session_id, 0.0, s.energy_kwh, 6.656, efficiency_points=((6.656, 1.0),),
            later_plugs=(PlugWindow(s.station_id, s.arrival, s.departure),))
        for s in sessions
    )  # fmt: skip
    chargers = tuple(Charger(st, "site", 6.656) for st in sorted({s.station_id for s in sessions}))
    bookings = tuple(Booking(s.session_id, s.session_id, s.departure, s.energy_kwh) for s in sessions)
    snap = FleetSnapshot(
        0, n, cars, chargers, (Site("site", SITE_KW[site]),), bookings,
        Tariff(tuple(float(p) for p in price), "USD"),
        CareBounds(1.0, 1.0, 0.0), PERIOD_MIN * 60,
    )  # fmt: skip
    p = plan(snap, time_limit_s=300.0)
    delivered = np.array([b.expected_kwh for b in p.bookings])
    return p.power_kw, delivered


def acn_rows(*, days: int) -> list[dict[str, object]]:
    """Rows with the suffix " acn": both garages together, every system, ``days`` from 2019-06-03."""
    n = (days + 1) * 24 * 60 // PERIOD_MIN
    price = prices(n)
    dt_h = PERIOD_MIN / 60.0
    totals: dict[str, dict[str, float]] = {}
    n_sessions = 0
    for site in ("caltech", "jpl"):
        sessions = load_sessions(site, days)
        n_sessions += len(sessions)
        need = np.array([s.energy_kwh for s in sessions])
        systems: dict[str, object] = {
            "uncontrolled": algorithms.UncontrolledCharging(),
            "acnportal edf": algorithms.SortedSchedulingAlgo(algorithms.earliest_deadline_first),
            "acnportal llf": algorithms.SortedSchedulingAlgo(algorithms.least_laxity_first),
            # 1 A steps (acnportal's default 0.1 A makes round robin ~10x slower on this 2-core machine)
            "acnportal round robin": algorithms.RoundRobin(
                algorithms.first_come_first_served, continuous_inc=1.0
            ),
            "microfleet": MicrofleetAlgo(SITE_KW[site], price, early_departure_margin(site)),
        }
        results = {name: simulate(site, sessions, algo, n) for name, algo in systems.items()}
        results["perfect foresight"] = offline_optimum(site, sessions, price, n)
        for name, (kw, delivered) in results.items():
            t = totals.setdefault(
                name, {"cost": 0.0, "peak kw": 0.0, "served": 0.0, "energy": 0.0, "need": 0.0}
            )
            t["cost"] += float((kw.sum(axis=0) * price[: kw.shape[1]]).sum() * dt_h)
            t["peak kw"] += float(kw.sum(axis=0).max())
            t["served"] += float((delivered >= 0.99 * need).sum())  # within 1 % of the energy asked for
            t["energy"] += float(np.minimum(delivered, need).sum())
            t["need"] += float(need.sum())
        solve_s = systems["microfleet"].solve_s  # type: ignore[attr-defined]
        totals["microfleet"]["plan s"] = totals["microfleet"].get("plan s", 0.0) + solve_s
        print(f"  acn {site}: {len(sessions)} sessions", file=sys.stderr)
    rows: list[dict[str, object]] = []
    opt, unc = totals["perfect foresight"], totals["uncontrolled"]
    for name, t in totals.items():
        rows += [
            _row("cost acn", name, t["cost"], "USD"),
            _row("cost vs optimum acn", name, t["cost"] / opt["cost"], "fraction"),
            _row("cost vs uncontrolled acn", name, t["cost"] / unc["cost"], "fraction"),
            _row("peak vs uncontrolled acn", name, t["peak kw"] / unc["peak kw"], "fraction"),
            _row("peak kw acn", name, t["peak kw"], "kW"),
            _row("bookings served share acn", name, t["served"] / n_sessions, "fraction"),
            _row("energy served share acn", name, t["energy"] / t["need"], "fraction"),
        ]
        if "plan s" in t:
            rows.append(_row("plan time total s acn", name, t["plan s"], "s"))
    rows.append(_row("sessions acn", "all", n_sessions, "sessions"))
    return rows


def _row(metric: str, system: str, value: float, unit: str) -> dict[str, object]:
    return {"metric": metric, "system": system, "value": round(float(value), 4), "unit": unit}
