"""Charging a shared fleet: Microfleet's planner beside every baseline (issue 15).

Twin scenario: a 200-car car-sharing fleet for 7 days at 2 depots, one 7.4 kW charger per car and each
depot's grid connection at 50 % of its chargers' summed power, under a Chinese time-of-use tariff (State
Grid Beijing public EV charging, 2016, 3 bands) and a Dutch hourly day-ahead one (EnergyZero all-in
excl. VAT, 2025-12-16..18: the fleet's first 3 days). The bookings are drawn with the twin's car-sharing
model (``sim/sharing.py``: the cited 7 bookings per car and day, the departure-hour shares of
``sim/reference.py``, trip lengths from ``sim/people.draw_trip_km``, stops on the way, 120 Wh/km to plan
and the app's rule that a car must hold the trip x 1.5 plus 10 % of its battery), as round trips from a
depot: the full twin (road network, one-way trips, relocation) is not run, and no truth table is read.

Microfleet re-plans every 15 minutes over the next 24 hours, seeing only the bookings made by then
(half are walk-ups known 15 minutes ahead, half reserved 1-24 hours ahead: assumed) and each car's
present energy; the first 15 minutes of each plan are applied. The baselines run the same way. The
perfect-foresight optimum is the same programme over the whole week with every booking and actual trip
energy known. The scale row times one plan for 10,000 cars x 96 slots (50 depots of 200 cars).
The ACN rows (suffix " acn") come from ``bench/charging_acn.py``.

    python bench/charging.py --seed 1          # full run
    python bench/charging.py --seed 1 --quick  # 40 cars, 1 day, 2,000-car scale check, 1 ACN day
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

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
    evaluate,
    plan,
)
from microfleet.planning.charging_baselines import BASELINE_KW
from microfleet.planning.charging_model import battery_kw, layout, solve
from microfleet.sim.people import draw_trip_km
from microfleet.sim.reference import CITED_SHARING_BOOKINGS_PER_CAR_DAY, load_mobility
from microfleet.sim.sharing import MEAN_SPEED_KMH, PLAN_WH_PER_KM, STOP_MEDIAN_S, STOP_SHARE

RESULTS = Path(__file__).parent / "results" / "charging.json"
DATA = reference_data_dir()
SLOT_S = 900
DAY = 96
CHARGER_KW = 7.4  # one 32 A single-phase wallbox per car (IEC 61851 mode 3, 230 V x 32 A)
SITE_SHARE = 0.5  # the site limit: 50 % of the summed charger power
HANDOVER_S = 900.0  # a rental's check-out and check-in at the depot (assumed)
WALK_UP_SHARE = 0.5  # bookings made 15 minutes ahead; the rest 1-24 h ahead (assumed)
CONSUMPTION_SPREAD = 0.15  # lognormal sigma of a trip's real energy around the 120 Wh/km plan (assumed)
# The period runs 07:00 to 07:00, so that it starts and ends after the night's valley hours (23:00-07:00 in
# both tariffs) and every system's fleet is near the same charge at both ends.
START_HOUR = 7
START_FRAC = 0.9  # every car starts the week at the twin's depot charge level (DEPOT_CHARGE_TO_PCT 90)
CARE = CareBounds(nmc_max_frac=0.9, lfp_max_frac=1.0, end_min_frac=0.9)
# Fleet mix from the catalogue (../shared/data/vehicles/catalogue.csv): Dacia Spring 65 (2024, 25 kWh usable,
# 7 kW AC, NMC by default: the catalogue gives no chemistry), Dacia Spring 2025 (24.3 kWh, LFP, 7 kW AC),
# Fiat 500e Action (23.8 kWh, 11 kW AC, limited to the 7.4 kW wallbox).
MODELS = (
    ("spring_2024", 25.0, 7.0, "nmc"),
    ("spring_2025_lfp", 24.3, 7.0, "lfp"),
    ("500e_action", 23.8, 11.0, "nmc"),
)
# Grid carbon intensity, MEE/NBS 2023 North China grid factor (Beijing's grid), ../shared/data/emissions/.
CN_CARBON_G_PER_KWH = 636.1
# Demand (peak-kW) charges per kW of a depot's peak per month; the benchmark's period is its billing period:
# the monthly charge x days / 30 on each depot's peak in it, the same for every system (the optimisers plan
# with it; every system is scored with it).
# Beijing: none. The tariff scored (State Grid Beijing's public EV charging TOU, cn_prices) is energy-only,
# and China exempts centralised EV charging facilities on a two-part tariff from its basic (demand/capacity)
# charge: NDRC notice 发改价格〔2014〕1668号 "2020年前，暂免收取基本电费" (reported e.g. at
# https://fyjt.org/news/hyxw/2018-06-14/1242.html), extended to the end of 2025 by NDRC in 2018 and by
# Beijing's DRC for charging facilities "自8月1日起 ... 免收需量（容量）电费，免收期限至2025年12月31日";
# NDRC/NEA 发改综合〔2023〕545号 extends the exemption to 2030 (its text was not found in the searchable
# pages; the 2025 one was). So the Beijing scenario's cost carries no demand charge.
CN_DEMAND_PER_KW_MONTH = 0.0
# Sensitivity only (rows suffixed " cn demand"): a depot that did pay a Chinese two-part tariff's basic
# charge. The one sourced figure found: Shenzhen's two-part tariff effective 2005-06-01, 44 CNY per kVA of
# maximum demand per month (http://www.szinvest.gov.cn/info/3.htm), read as per kW (power factor ~1 at an
# AC depot's chargers: an assumption).
CN_SENSITIVITY_DEMAND_PER_KW_MONTH = 44.0
# Netherlands: assumed 3 EUR/kW-month (band 1-6; the order of Dutch DSOs' kW-max transport tariffs for
# business connections). No Dutch DSO kW-max price with a source is in ../shared/data/tariffs (its README:
# "No sourced Chinese (two-part tariff) or Dutch (kW-max) demand charge was found"); the only sourced EV
# demand charge there, SCE TOU-EV-4's 15.51 USD/kW-month (acnportal), is of that order.
NL_DEMAND_PER_KW_MONTH = 3.0


@dataclass(frozen=True)
class Trip:
    """One booking of the scenario, as made and as driven."""

    booking_id: str
    car: int
    known_slot: int
    start_slot: int
    end_slot: int  # back on its charger from this slot
    plan_kwh: float
    actual_kwh: float
    need_kwh: float


@dataclass(frozen=True)
class Scenario:
    """A fleet, its depots and a week of bookings (slots from the scenario's start)."""

    cars: tuple[Car, ...]  # soc = the week's start; no plug windows (added per snapshot)
    chargers: tuple[Charger, ...]
    sites: tuple[Site, ...]
    home: tuple[str, ...]  # each car's charger
    trips: tuple[Trip, ...]
    n_slots: int


def make_scenario(n_cars: int, n_depots: int, days: int, rng: np.random.Generator) -> Scenario:
    """Draw a fleet and its bookings with the twin's car-sharing model (round trips from depots)."""
    mob = load_mobility(DATA)
    cars, chargers, home = [], [], []
    for i in range(n_cars):
        _, kwh, ac_kw, chem = MODELS[i % len(MODELS)]
        depot = i % n_depots
        ch = f"d{depot}-c{i}"
        chargers.append(Charger(ch, f"depot-{depot}", CHARGER_KW))
        home.append(ch)
        cars.append(Car(f"car-{i}", kwh * START_FRAC, kwh, ac_kw, chemistry=chem))  # type: ignore[arg-type]
    per_depot = np.bincount(np.arange(n_cars) % n_depots, minlength=n_depots)
    sites = tuple(Site(f"depot-{d}", SITE_SHARE * CHARGER_KW * int(per_depot[d])) for d in range(n_depots))
    busy_until = np.zeros(n_cars, dtype=np.int64)
    idle_since = np.zeros(n_cars, dtype=np.int64)
    trips: list[Trip] = []
    n_slots = days * DAY
    for day in range(days + 1):  # demand by local hour from midnight; the period starts at START_HOUR
        weekend = (day % 7) >= 5
        per_hour = rng.poisson(
            CITED_SHARING_BOOKINGS_PER_CAR_DAY * n_cars * mob.departure_hour_share[int(weekend)]
        )
        for h, k in enumerate(per_hour):
            for t_s in np.sort((day * 24 + h + rng.random(k)) * 3600.0):
                km = draw_trip_km(mob, rng)
                stop_s = (
                    float(rng.lognormal(math.log(STOP_MEDIAN_S), 0.6)) if rng.random() < STOP_SHARE else 0.0
                )
                dur_s = km / MEAN_SPEED_KMH * 3600.0 + stop_s + HANDOVER_S
                start = int(t_s // SLOT_S) - START_HOUR * 4
                end = math.ceil((t_s + dur_s) / SLOT_S) - START_HOUR * 4
                if start < 1 or end >= n_slots:
                    continue
                depot = int(rng.integers(n_depots))
                free = np.flatnonzero((np.arange(n_cars) % n_depots == depot) & (busy_until <= start))
                free = free[idle_since[free] < start]  # back at least one slot before
                if not len(free):
                    continue  # no car free at that depot: demand lost, the same for every system
                car = int(free[np.argmin(idle_since[free])])
                plan_kwh = km * PLAN_WH_PER_KM / 1000.0
                actual = plan_kwh * float(rng.lognormal(0.0, CONSUMPTION_SPREAD))
                need = 1.5 * plan_kwh + 0.1 * cars[car].capacity_kwh
                lead = 1 if rng.random() < WALK_UP_SHARE else int(rng.integers(4, 97))
                trips.append(
                    Trip(f"b{len(trips)}", car, max(0, start - lead), start, end, plan_kwh, actual, need)
                )
                busy_until[car] = end
                idle_since[car] = end
    return Scenario(tuple(cars), tuple(chargers), sites, tuple(home), tuple(trips), n_slots)


def snapshot_at(
    sc: Scenario,
    now: int,
    energy: np.ndarray,
    prices: np.ndarray,
    carbon: np.ndarray,
    horizon: int,
    *,
    foresight: bool,
    peaks: np.ndarray | None = None,
    currency: str = "CNY",
    demand_per_kw: float = 0.0,
) -> FleetSnapshot:
    """The fleet as the planner sees it at slot ``now``: known bookings only, unless ``foresight``."""
    known = [
        tr
        for tr in sc.trips
        if tr.start_slot > now and (foresight or tr.known_slot <= now) and tr.start_slot < now + horizon
    ]
    away = {tr.car: tr for tr in sc.trips if tr.start_slot <= now < tr.end_slot}
    by_car: dict[int, list[Trip]] = {}
    for tr in known:
        by_car.setdefault(tr.car, []).append(tr)
    cars, bookings = [], []
    for i, car in enumerate(sc.cars):
        edges = [0 if i not in away else away[i].end_slot - now]
        ends = []
        for tr in sorted(by_car.get(i, []), key=lambda t: t.start_slot):
            ends.append(tr.start_slot - now)
            edges.append(tr.end_slot - now)
            use = tr.actual_kwh if foresight else tr.plan_kwh
            bookings.append(
                Booking(tr.booking_id, car.car_id, tr.start_slot - now, use, max(0.0, tr.need_kwh - use))
            )
        ends.append(horizon)
        windows = [
            PlugWindow(sc.home[i], a, min(b, horizon))
            for a, b in zip(edges, ends, strict=True)
            if a < min(b, horizon)
        ]
        cars.append(
            replace(
                car, soc_kwh=float(min(max(energy[i], 0.0), car.capacity_kwh)), later_plugs=tuple(windows)
            )
        )
    sites = (
        sc.sites
        if peaks is None
        else tuple(replace(s, peak_so_far_kw=float(p)) for s, p in zip(sc.sites, peaks, strict=True))
    )
    tariff = Tariff(
        tuple(float(p) for p in prices[now : now + horizon]),
        currency=currency,
        carbon_g_per_kwh=tuple(float(c) for c in carbon[now : now + horizon]),
        peak_charge_per_kw=demand_per_kw,
    )
    return FleetSnapshot(0, horizon, tuple(cars), sc.chargers, sites, tuple(bookings), tariff, CARE, SLOT_S)


def depot_parts(sc: Scenario) -> list[Scenario]:
    """One scenario per depot (independent: each car charges only at its own depot)."""
    parts = []
    for site in sc.sites:
        idx = [
            i
            for i, h in enumerate(sc.home)
            if next(c.site_id for c in sc.chargers if c.charger_id == h) == site.site_id
        ]
        new = {old: k for k, old in enumerate(idx)}
        parts.append(
            Scenario(
                tuple(sc.cars[i] for i in idx),
                tuple(c for c in sc.chargers if c.site_id == site.site_id),
                (site,),
                tuple(sc.home[i] for i in idx),
                tuple(replace(tr, car=new[tr.car]) for tr in sc.trips if tr.car in new),
                sc.n_slots,
            )
        )
    return parts


def rolling(
    sc: Scenario, prices: np.ndarray, carbon: np.ndarray, system: str, currency: str, demand_per_kw: float
) -> tuple[np.ndarray, float, int]:
    """Every 15 minutes, per depot: re-plan if anything changed (a booking made, a car left or came back),
    else keep the last plan; apply its first slot. Returns grid kW (cars x slots), plan seconds, re-plans.

    The horizon is the next 24 hours, cut at the period's end in its last day: there every car should hold
    ``end_min_frac`` of its capacity, the terminal rule the perfect-foresight optimum has (without the cut
    the last plans aim 24 h past the end and the fleet ends the period emptier than the optimum's).
    ``demand_per_kw`` is the demand charge for the whole period. A kW of peak is paid once for the rest of
    the period, so each plan prices its peak (above the peak so far, which is free) at that charge x its
    horizon / the time left in the period: the optimum's one plan gets the whole charge by the same rule
    (its horizon is the period). A 24-hour plan charged the whole period's price per kW traded a day's
    energy against a week's demand and flattened far more than the optimum (cost 1.20 x the optimum's on
    the 7-day Beijing run); x horizon / whole period (not the time left) was tried on a 2-day run of seed 1:
    the same Beijing cost, 1.027 x the optimum in the Dutch run against 1.006 with the time left.
    """
    n, t_n = len(sc.cars), sc.n_slots
    energy = np.array([c.soc_kwh for c in sc.cars])
    executed = np.zeros((n, t_n))
    departs: dict[int, list[Trip]] = {}
    for tr in sc.trips:
        departs.setdefault(tr.start_slot, []).append(tr)
    solve_s, replans = 0.0, 0
    peaks = np.zeros(len(sc.sites))
    last: tuple[object, np.ndarray] | None = None
    for now in range(t_n):
        horizon = min(DAY, t_n - now)
        for tr in departs.get(now, []):
            energy[tr.car] -= tr.actual_kwh  # may go below the need: scored by evaluate() afterwards
        snap = snapshot_at(
            sc,
            now,
            energy,
            prices,
            carbon,
            horizon,
            foresight=False,
            peaks=peaks,
            currency=currency,
            demand_per_kw=demand_per_kw * horizon / (t_n - now),
        )
        away = frozenset(tr.car for tr in sc.trips if tr.start_slot <= now < tr.end_slot)
        signature = (frozenset(b.booking_id for b in snap.bookings), away)
        t0 = time.perf_counter()
        if last is not None and last[0] == signature and last[1].shape[1] > 1:
            power = last[1][:, 1:]  # nothing changed: the same plan, one slot on
        elif system == "microfleet":
            power = solve(snap, time_limit_s=60.0, shortfall_penalty_per_kwh=None).power_kw
            replans += 1
        else:
            power = BASELINE_KW[system](snap, layout(snap), 1)  # only the first slot is applied
            replans += 1
        solve_s += time.perf_counter() - t0
        last = (signature, power)
        lay = layout(snap)
        executed[:, now] = power[:, 0]
        energy += battery_kw(lay, power[:, :1])[:, 0] * SLOT_S / 3600.0
        peaks = np.maximum(peaks, power[:, 0].sum())
    return executed, solve_s, replans


def week_snapshot(
    sc: Scenario, prices: np.ndarray, carbon: np.ndarray, currency: str, demand_per_kw: float
) -> FleetSnapshot:
    """The whole week with every booking and actual trip energy known (the perfect-foresight problem)."""
    energy = np.array([c.soc_kwh for c in sc.cars])
    return snapshot_at(
        sc,
        0,
        energy,
        prices,
        carbon,
        sc.n_slots,
        foresight=True,
        currency=currency,
        demand_per_kw=demand_per_kw,
    )


def cn_prices(start: dt.datetime, n: int) -> tuple[np.ndarray, str]:
    """State Grid Beijing public EV charging TOU (2016), energy only (without its 0.8 CNY/kWh service fee)."""
    tou = load_example_tariff("cn_bj_public_ev_charging_2016")
    t0 = int(start.timestamp() * 1000)
    return np.array([tou.price_at(t0 + k * SLOT_S * 1000) - tou.fee_per_kwh for k in range(n)]), tou.currency


def nl_prices(n: int) -> np.ndarray:
    """EnergyZero all-in excl. VAT, hourly from 2025-12-16 07:00 local (repeated past the 3 days' end)."""
    with (DATA / "tariffs" / "nl_dayahead_energyzero_2025-12-16_to_18.csv").open() as fh:
        hourly = [float(r["all_in_excl_vat_eur_per_kwh"]) for r in csv.DictReader(fh)]
    return np.resize(np.roll(np.repeat(hourly, 4), -START_HOUR * 4), n)


def nl_carbon(n: int) -> np.ndarray:
    """Electricity Maps NL 2022 hourly direct intensity from 2022-12-16 07:00 CET, per slot."""
    with (DATA / "emissions" / "nl_carbon_intensity_hourly_2022_electricitymaps.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["datetime_utc"] >= "2022-12-16T06"]
    return np.repeat([float(r["ci_direct_gco2eq_per_kwh"]) for r in rows[: n // 4 + 1]], 4)[:n]


def score(snap: FleetSnapshot, power: np.ndarray, status: str) -> dict[str, float]:
    """Cost, peak (sum of the depots' peaks), losses, carbon, energy, served share over the period.

    "cost" values the fleet's energy at the end against its start at the period's mean price per grid
    kWh (x 1/0.905, the planner's best efficiency), so that a system that leaves the cars emptier does
    not look cheaper: every system starts at 90 % and is charged as if to end there.
    """
    p = evaluate(snap, power, status=status, gap=0.0, solve_time_s=0.0)
    served = [b.served for b in p.bookings]
    start_kwh = float(p.energy_kwh[:, 0].sum())
    end_kwh = float(p.energy_kwh[:, -1].sum())
    mean_price = float(np.mean(snap.tariff.price_per_kwh))
    demand = snap.tariff.peak_charge_per_kw * float(sum(p.peak_kw_by_site.values()))
    return {
        "cost": p.cost + (start_kwh - end_kwh) * mean_price / 0.905,
        "energy cost unadjusted": p.cost - demand,
        "demand cost": demand,
        "end energy kwh": end_kwh,
        "peak kw": float(sum(p.peak_kw_by_site.values())),
        "losses kwh": p.losses_kwh,
        "carbon kg": p.carbon_kg,
        "energy kwh": p.energy_kwh_total,
        "bookings served share": float(np.mean(served)) if served else 1.0,
    }


def twin_rows(
    sc: Scenario,
    prices: np.ndarray,
    carbon: np.ndarray,
    currency: str,
    suffix: str,
    demand_per_kw_month: float,
) -> list[dict[str, object]]:
    """Every system on one tariff (the monthly demand charge prorated to the period), metrics + ``suffix``."""
    demand = demand_per_kw_month * sc.n_slots / DAY / 30.0
    week = week_snapshot(sc, prices[: sc.n_slots], carbon[: sc.n_slots], currency, demand)
    t0 = time.perf_counter()
    optimum = plan(week, time_limit_s=600.0)
    pf_s = time.perf_counter() - t0
    results: dict[str, dict[str, float]] = {"perfect foresight": score(week, optimum.power_kw, "pf")}
    results["perfect foresight"]["solve s"] = pf_s
    parts = depot_parts(sc)
    for system in ("microfleet", *BASELINE_KW):
        t0 = time.perf_counter()
        runs = [rolling(part, prices, carbon, system, currency, demand) for part in parts]
        executed = np.zeros((len(sc.cars), sc.n_slots))
        for part, (power, _, _) in zip(parts, runs, strict=True):
            rows = [int(c.car_id.split("-")[1]) for c in part.cars]
            executed[rows] = power
        results[system] = score(week, executed, system)
        results[system]["solve s"] = sum(r[1] for r in runs)
        results[system]["re-plans"] = sum(r[2] for r in runs)
        print(f"  {system}{suffix}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return rows_for(results, currency, suffix)


def rows_for(results: dict[str, dict[str, float]], currency: str, suffix: str) -> list[dict[str, object]]:
    """The issue's rows (ratios as fractions) for every system in ``results``."""
    rows: list[dict[str, object]] = []
    opt, unc = results["perfect foresight"], results["uncontrolled"]
    units = {
        "cost": currency,
        "energy cost unadjusted": currency,
        "demand cost": currency,
        "end energy kwh": "kWh",
        "peak kw": "kW",
        "losses kwh": "kWh",
        "carbon kg": "kg",
        "energy kwh": "kWh",
    }
    metrics = (
        "cost",
        "energy cost unadjusted",
        "demand cost",
        "end energy kwh",
        "peak kw",
        "losses kwh",
        "carbon kg",
    )
    for system, r in results.items():
        for metric in (*metrics, "energy kwh", "bookings served share"):
            if metric in r:
                rows.append(_row(metric + suffix, system, r[metric], units.get(metric, "fraction")))
        rows.append(_row("cost vs optimum" + suffix, system, r["cost"] / opt["cost"], "fraction"))
        rows.append(_row("cost vs uncontrolled" + suffix, system, r["cost"] / unc["cost"], "fraction"))
        energy_vs = r["energy cost unadjusted"] / unc["energy cost unadjusted"]
        rows.append(_row("energy cost vs uncontrolled" + suffix, system, energy_vs, "fraction"))
        rows.append(_row("peak vs uncontrolled" + suffix, system, r["peak kw"] / unc["peak kw"], "fraction"))
        if "solve s" in r:
            rows.append(_row("plan time total s" + suffix, system, r["solve s"], "s"))
        if "re-plans" in r:
            rows.append(_row("re-plans" + suffix, system, r["re-plans"], "plans"))
    return rows


def _row(metric: str, system: str, value: float, unit: str) -> dict[str, object]:
    return {"metric": metric, "system": system, "value": round(float(value), 4), "unit": unit}


def scale_rows(n_cars: int, rng: np.random.Generator) -> list[dict[str, object]]:
    """One plan for ``n_cars`` x 96 slots (depots of 100 cars, as the twin fleet's), every booking known."""
    sc = make_scenario(n_cars, max(1, n_cars // 100), 2, rng)
    prices, _ = cn_prices(
        dt.datetime(2026, 6, 1, START_HOUR, tzinfo=dt.timezone(dt.timedelta(hours=8))), 2 * DAY
    )
    energy = np.array([c.soc_kwh for c in sc.cars]) * rng.uniform(0.3, 1.0, n_cars)
    snap = snapshot_at(sc, DAY // 2, energy, prices, np.zeros(2 * DAY), DAY, foresight=True)
    t0, c0 = time.perf_counter(), time.process_time()
    p = plan(snap, time_limit_s=120.0)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    gap = p.gap if math.isfinite(p.gap) else -1.0
    return [
        _row(f"solve time {n_cars} cars x 96 slots s", "microfleet", took, "s"),
        _row(f"cpu time {n_cars} cars x 96 slots s", "microfleet", cpu, "s"),
        _row(f"gap {n_cars} cars", "microfleet", gap, "fraction"),
        _row(f"unserved bookings {n_cars} cars", "microfleet", len(p.unserved), "bookings"),
    ]


def main() -> None:
    """Run the scenarios, print the table, write bench/results/charging.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="40 cars, 1 day; 2,000-car scale; 1 ACN day")
    parser.add_argument("--days", type=int, default=7, help="days of the twin scenario (the issue's 7)")
    parser.add_argument("--acn-days", type=int, default=7, help="days of ACN sessions from 2019-06-03")
    parser.add_argument("--scale-cars", type=int, default=10000)
    parser.add_argument("--skip-acn", action="store_true", help="leave the ACN rows as they are in the JSON")
    parser.add_argument("--only-acn", action="store_true", help="only the ACN rows, merged into the JSON")
    parser.add_argument("--only-scale", action="store_true", help="only the scale rows, merged into the JSON")
    args = parser.parse_args()
    if args.only_acn:
        merge_rows(_acn(1 if args.quick else args.acn_days), lambda m: m.endswith(" acn"), "acn")
        return
    if args.only_scale:
        rows = scale_rows(2000 if args.quick else args.scale_cars, np.random.default_rng(args.seed))
        merge_rows(rows, lambda m: " cars" in m, "scale")
        return
    rng = np.random.default_rng(args.seed)
    n_cars, days = (40, 1) if args.quick else (200, args.days)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rows: list[dict[str, object]] = []
    acn_from = "this run"
    sc = make_scenario(n_cars, 2, days, rng)
    n = (days + 1) * DAY
    start = dt.datetime(
        2026, 6, 1, START_HOUR, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )  # a Monday, Beijing
    cn, currency = cn_prices(start, n)
    print(f"twin: {len(sc.trips)} bookings, {n_cars} cars, {days} days", file=sys.stderr)
    rows += twin_rows(sc, cn, np.full(n, CN_CARBON_G_PER_KWH), currency, "", CN_DEMAND_PER_KW_MONTH)
    rows += twin_rows(
        sc, cn, np.full(n, CN_CARBON_G_PER_KWH), currency, " cn demand", CN_SENSITIVITY_DEMAND_PER_KW_MONTH
    )
    # the Dutch series holds 3 real days: the same fleet's first 3 days (or fewer), not the week repeated
    nl_days = min(days, 3)
    sc_nl = replace(sc, trips=tuple(t for t in sc.trips if t.end_slot < nl_days * DAY), n_slots=nl_days * DAY)
    nl_p, nl_c = nl_prices((nl_days + 1) * DAY), nl_carbon((nl_days + 1) * DAY)
    rows += twin_rows(sc_nl, nl_p, nl_c, "EUR", " nl", NL_DEMAND_PER_KW_MONTH)
    rows += scale_rows(2000 if args.quick else args.scale_cars, rng)
    if not args.skip_acn:
        rows += _acn(1 if args.quick else args.acn_days)
    elif RESULTS.exists():
        old = json.loads(RESULTS.read_text())
        rows += [r for r in old["rows"] if str(r["metric"]).endswith(" acn")]
        acn_from = old.get("acn_rows_from", f"{old.get('command')} ({old.get('load_at_end', '')})")
    print(f"{'metric':42} {'system':24} {'value':>12} unit")
    for r in rows:
        print(f"{r['metric']!s:42} {r['system']!s:24} {r['value']!s:>12} {r['unit']}")
    body = {
        "benchmark": "charging",
        "command": "python " + " ".join(sys.argv),
        "seed": args.seed,
        "quick": args.quick,
        "load_at_start": load,
        "load_at_end": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "scenario": {"cars": n_cars, "days": days, "bookings": len(sc.trips), "depots": 2},
        "acn_rows_from": acn_from,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(body, indent=2) + "\n")


def _acn(days: int) -> list[dict[str, object]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from charging_acn import acn_rows

    return acn_rows(days=days)


def merge_rows(rows: list[dict[str, object]], replaces: Callable[[str], bool], part: str) -> None:
    """Put one part's rows into the existing JSON in place of that part's old rows (the rest kept)."""
    body = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "charging", "rows": []}
    body["rows"] = [r for r in body["rows"] if not replaces(str(r["metric"]))] + rows
    body[f"{part}_command"] = "python " + " ".join(sys.argv)
    body[f"{part}_load_at_end"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for r in rows:
        print(f"{r['metric']!s:42} {r['system']!s:24} {r['value']!s:>12} {r['unit']}")
    RESULTS.write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
