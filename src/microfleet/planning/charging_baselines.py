"""The alternatives the planner is measured against, on the same :class:`FleetSnapshot`.

Each walks the horizon slot by slot, as a charger controller would, and returns a :class:`ChargingPlan`
scored by :func:`microfleet.planning.charging.evaluate` exactly as the optimiser's plan is:

* ``uncontrolled`` — every plugged car charges at full power until its care cap (an operator's charge limit
  in the car), ignoring the site limit (as ACN-Sim's ``UncontrolledCharging``).
* ``earliest_deadline_first`` / ``least_laxity_first`` — every plugged car wants full power to its care cap
  (or its next booking's need if higher); each site grants power in order of the next booking's start
  (cars with none last), or of laxity (hours until that start minus hours of charging still needed),
  until the site limit is used (ACN-Sim's ``SortedSchedulingAlgo`` with ``earliest_deadline_first`` and
  ``least_laxity_first``).
* ``cheapest_slots`` — evcc's planner per car: when a car plugs in it picks the cheapest slots before its
  next booking (or the end of its plug window) enough to reach its target at full power; a site over its
  limit scales every car down in proportion (evcc's load-management circuits).

The perfect-foresight optimum is :func:`microfleet.planning.charging.plan` on a snapshot that holds every
booking and plug window of the period.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from microfleet.planning.charging import ChargingPlan, FleetSnapshot, evaluate, validate
from microfleet.planning.charging_model import Layout, battery_kw, layout

Allocator = Callable[[int, NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def _grid_for_battery(lay: Layout, t: int, batt_kw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Grid kW that gives ``batt_kw`` at the battery in slot ``t`` (segments filled in order)."""
    width, slope = lay.width[:, t], lay.slope[:, t]
    before = np.cumsum(width, axis=1) - width
    return np.asarray((slope * np.clip(batt_kw[:, None] - before, 0.0, width)).sum(axis=1), dtype=np.float64)


def _targets(snapshot: FleetSnapshot) -> NDArray[np.float64]:
    care = snapshot.care
    return np.array(
        [
            c.capacity_kwh * (care.lfp_max_frac if c.chemistry == "lfp" else care.nmc_max_frac)
            for c in snapshot.cars
        ]
    )


def _next_booking(snapshot: FleetSnapshot, lay: Layout) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per car per slot: the start slot of the next booking at or after the slot, and its need (kWh)."""
    n, t_n = lay.plugged.shape
    start = np.full((n, t_n), np.iinfo(np.int64).max // 4, dtype=np.int64)
    need = np.zeros((n, t_n))
    for b in sorted(snapshot.bookings, key=lambda b: -b.start_slot):
        i = lay.car_index[b.car_id]
        upto = min(b.start_slot, t_n - 1)
        start[i, : upto + 1] = b.start_slot
        need[i, : upto + 1] = b.need_kwh
    return start, need


def _simulate(
    snapshot: FleetSnapshot, lay: Layout, allocate: Allocator, steps: int | None = None
) -> NDArray[np.float64]:
    """Walk the slots (the first ``steps``, else all): cars ask for full power, ``allocate`` grants kW."""
    n, t_n = lay.plugged.shape
    dt = snapshot.slot_s / 3600.0
    target = _targets(snapshot)
    _, need_next = _next_booking(snapshot, lay)
    needs = {(lay.car_index[b.car_id], b.start_slot): b for b in snapshot.bookings}
    energy = np.array([c.soc_kwh for c in snapshot.cars], dtype=np.float64)
    cap_kwh = np.array([c.capacity_kwh for c in snapshot.cars])
    power = np.zeros((n, t_n))
    for t in range(t_n if steps is None else min(steps, t_n)):
        goal = np.minimum(np.maximum(target, need_next[:, t]), cap_kwh)
        want_batt = np.clip((goal - energy) / dt, 0.0, None)
        want = np.where(
            lay.plugged[:, t], np.minimum(_grid_for_battery(lay, t, want_batt), lay.cap_kw[:, t]), 0.0
        )
        power[:, t] = allocate(t, want, energy)
        energy = energy + battery_kw_slot(lay, t, power[:, t]) * dt
        for i in np.flatnonzero(lay.trip_kwh[:, t] > 0):
            b = needs[(int(i), t)]
            energy[i] = energy[i] + max(0.0, b.need_kwh - energy[i]) - b.energy_kwh
    return power


def battery_kw_slot(lay: Layout, t: int, grid_kw: NDArray[np.float64]) -> NDArray[np.float64]:
    """Battery kW of every car in slot ``t`` for its grid kW."""
    sub = Layout(
        car_index=lay.car_index,
        plugged=lay.plugged[:, t : t + 1],
        site_of=lay.site_of[:, t : t + 1],
        charger_of=lay.charger_of[:, t : t + 1],
        cap_kw=lay.cap_kw[:, t : t + 1],
        slope=lay.slope[:, t : t + 1],
        width=lay.width[:, t : t + 1],
        trip_kwh=lay.trip_kwh[:, t : t + 1],
        site_limit=lay.site_limit,
    )
    return battery_kw(sub, grid_kw[:, None])[:, 0]


def _by_priority(
    lay: Layout, t: int, want: NDArray[np.float64], key: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Grant each site's limit to its cars in order of ``key`` (smallest first), ties by car order."""
    site = lay.site_of[:, t]
    on = np.flatnonzero((site >= 0) & (want > 0))
    grant = np.zeros_like(want)
    if not len(on):
        return grant
    order = on[np.lexsort((on, key[on], site[on]))]
    w, s = want[order], site[order]
    csum = np.cumsum(w)
    first = np.r_[True, s[1:] != s[:-1]]
    base = np.maximum.accumulate(np.where(first, csum - w, 0.0))
    before = csum - w - base
    grant[order] = np.clip(lay.site_limit[s] - before, 0.0, w)
    return grant


def _plan(snapshot: FleetSnapshot, name: str) -> ChargingPlan:
    validate(snapshot)
    t0 = time.perf_counter()
    lay = layout(snapshot)
    power = BASELINE_KW[name](snapshot, lay, None)
    return evaluate(snapshot, power, status=name, gap=math.nan, solve_time_s=time.perf_counter() - t0)


def uncontrolled_kw(snapshot: FleetSnapshot, lay: Layout, steps: int | None = None) -> NDArray[np.float64]:
    """Grid kW (cars x slots): full power from plug-in to the care cap, the site limit not enforced."""
    return _simulate(snapshot, lay, lambda t, want, energy: want, steps)


def earliest_deadline_first_kw(
    snapshot: FleetSnapshot, lay: Layout, steps: int | None = None
) -> NDArray[np.float64]:
    """Grid kW (cars x slots) of earliest-deadline-first under the site limits (the time-out fallback)."""
    start, _ = _next_booking(snapshot, lay)
    return _simulate(
        snapshot, lay, lambda t, want, energy: _by_priority(lay, t, want, start[:, t].astype(float)), steps
    )


def least_laxity_first_kw(
    snapshot: FleetSnapshot, lay: Layout, steps: int | None = None
) -> NDArray[np.float64]:
    """Grid kW (cars x slots) of least-laxity-first under the site limits."""
    dt = snapshot.slot_s / 3600.0
    start, need = _next_booking(snapshot, lay)
    max_batt = (lay.width.sum(axis=2)).max(axis=1) + 1e-9

    def allocate(t: int, want: NDArray[np.float64], energy: NDArray[np.float64]) -> NDArray[np.float64]:
        hours_left = (start[:, t] - t) * dt
        laxity = hours_left - np.clip(need[:, t] - energy, 0.0, None) / max_batt
        return _by_priority(lay, t, want, laxity)

    return _simulate(snapshot, lay, allocate, steps)


def cheapest_slots_kw(snapshot: FleetSnapshot, lay: Layout, steps: int | None = None) -> NDArray[np.float64]:
    """Grid kW (cars x slots): each car's cheapest slots before it leaves, sites scaled to their limit."""
    prices = np.asarray(snapshot.tariff.price_per_kwh)
    dt = snapshot.slot_s / 3600.0
    start, need = _next_booking(snapshot, lay)
    target = _targets(snapshot)
    chosen = np.zeros(lay.plugged.shape, dtype=bool)
    n_sites = len(lay.site_limit)
    t_n = lay.plugged.shape[1]

    def allocate(t: int, want: NDArray[np.float64], energy: NDArray[np.float64]) -> NDArray[np.float64]:
        arriving = lay.plugged[:, t] & (~lay.plugged[:, t - 1] if t > 0 else True)
        for i in np.flatnonzero(arriving):
            rest = lay.plugged[i, t:]
            end = t + int(np.argmin(rest)) if not rest.all() else t_n
            end = int(min(end, start[i, t]))
            goal = max(target[i], need[i, t])
            per_slot = float(lay.width[i, t].sum()) * dt
            k = math.ceil(max(0.0, goal - energy[i]) / per_slot - 1e-9) if per_slot > 0 else 0
            chosen[i, t + np.argsort(prices[t:end], kind="stable")[:k]] = True
        grant = np.where(chosen[:, t], want, 0.0)
        site = lay.site_of[:, t]
        on = site >= 0
        load = np.bincount(site[on], weights=grant[on], minlength=n_sites)
        scale = np.minimum(1.0, lay.site_limit / np.maximum(load, 1e-12))
        return np.where(on, grant * scale[np.clip(site, 0, None)], 0.0)

    return _simulate(snapshot, lay, allocate, steps)


BASELINE_KW: dict[str, Callable[[FleetSnapshot, Layout, int | None], NDArray[np.float64]]] = {
    "uncontrolled": uncontrolled_kw,
    "edf": earliest_deadline_first_kw,
    "llf": least_laxity_first_kw,
    "cheapest slots": cheapest_slots_kw,
}


def uncontrolled(snapshot: FleetSnapshot) -> ChargingPlan:
    """Full power from plug-in to the care cap; the site limit is not enforced."""
    return _plan(snapshot, "uncontrolled")


def earliest_deadline_first(snapshot: FleetSnapshot) -> ChargingPlan:
    """The site's power to the car whose next booking starts first."""
    return _plan(snapshot, "edf")


def least_laxity_first(snapshot: FleetSnapshot) -> ChargingPlan:
    """The site's power to the car with the least slack: hours to its booking minus hours still to charge."""
    return _plan(snapshot, "llf")


def cheapest_slots(snapshot: FleetSnapshot) -> ChargingPlan:
    """evcc-style: each car, at plug-in, books the cheapest slots before it must leave; sites scale down."""
    return _plan(snapshot, "cheapest slots")


BASELINES: dict[str, Callable[[FleetSnapshot], ChargingPlan]] = {
    "uncontrolled": uncontrolled,
    "edf": earliest_deadline_first,
    "llf": least_laxity_first,
    "cheapest slots": cheapest_slots,
}
