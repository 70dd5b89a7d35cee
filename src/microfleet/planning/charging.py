"""Charge a shared fleet at least cost: the pure problem and its HiGHS optimiser.

The planner sees a :class:`FleetSnapshot` and returns a :class:`ChargingPlan`; it never knows whether the
cars are real or twins (the snapshot is built by ``services/charging.py`` from the stores).

Interface
---------
* Time is in slots of ``slot_s`` seconds (default 900 s) from ``start_ms``; slot ``t`` covers
  ``[start_ms + t*slot_s*1000, start_ms + (t+1)*slot_s*1000)``. ``n_slots`` slots are planned.
* :class:`Car` — energy now (``soc_kwh``) and usable capacity (kWh), the on-board charger's AC limit and the
  DC limit (kW, at the grid side), its AC efficiency curve as ``(grid_kw, efficiency)`` points, where it is
  plugged: ``plugged_charger`` until ``plugged_until_slot`` (exclusive; ``None`` = the whole horizon) plus
  any ``later_plugs`` (:class:`PlugWindow`, e.g. where it returns after a booking), the chemistry
  (``"nmc"`` or ``"lfp"``) and whether an LFP calibration full charge is due.
* :class:`Charger` (``max_kw`` > 0, ``min_kw``, ``dc``) belongs to a :class:`Site` with a ``limit_kw`` on the
  sum of its chargers' grid power.
* :class:`Booking` — the car must hold ``energy_kwh + reserve_kwh`` when slot ``start_slot`` begins; the trip
  uses ``energy_kwh`` (the car is away from ``start_slot`` until its next plug window).
* :class:`Tariff` — a price per kWh per slot (negative prices are real prices), the currency, an optional
  carbon intensity per slot (g/kWh) with a carbon price per tonne, a peak demand charge per kW of each
  site's peak, and a waste price per kWh lost in charging.
* :class:`CareBounds` — the battery-care band: NMC cars are not held above ``nmc_max_frac`` of capacity
  (no dwell at 100 %) unless a booking needs more at its start; LFP cars may go to 100 % and get a full charge
  in their last plug window when ``Car.full_charge_due``; at the horizon's end every car should hold at least
  ``end_min_frac x capacity`` (soft: ready for the bookings not yet made).

``plan(snapshot, time_limit_s=...)`` validates the snapshot (:class:`microfleet.errors.ChargingInputError`
names the input), solves one linear programme per independent group of sites (cars that move between sites
join their sites into one group) and returns per car per slot grid kW, the expected energy at each booking,
cost, carbon, losses, each site's peak, the bookings that cannot be served with the shortfall in kWh, the
solver's status, gap and time, and one explanation per car.

The linear programme (written out in ``docs/charging.md``): battery-side power in the slot is split into
the segments of the convex lower envelope of the car's grid-kW-vs-battery-kW curve, so losses are convex;
a power on the envelope between two measured points is reached by running at the two points' powers for
parts of the slot (OCPP profiles have periods in seconds), and a charger's minimum current is met the same
way. Booking needs, the end-of-horizon level and LFP full charges are soft with high penalties, so the
programme is always feasible and an infeasible case reports which trips fall short and by how much.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import ChargingInputError

if TYPE_CHECKING:
    from microfleet.planning.charging_model import Layout

Chemistry = Literal["nmc", "lfp"]

# On-board AC charger efficiency (grid kW, battery/grid) of a small EV's 6.6 kW charger: lowest at low power
# (fixed electronics overhead), a flat top, a small fall at full power (I^2R). Shape after Apostolaki-
# Iosifidou, Codani & Kempton, "Measurement of power loss during electric vehicle charging and
# discharging", Energy 127 (2017) 730-742 (losses are highest at low power); values rounded, illustrative.
DEFAULT_AC_EFFICIENCY: tuple[tuple[float, float], ...] = (
    (1.4, 0.80),
    (3.3, 0.89),
    (5.0, 0.905),
    (6.6, 0.895),
)
# DC fast charging grid-to-battery efficiency, same source's order of magnitude (off-board rectifier).
DEFAULT_DC_EFFICIENCY = 0.92


@dataclass(frozen=True)
class PlugWindow:
    """A car plugged into ``charger_id`` from slot ``from_slot`` until ``until_slot`` (exclusive)."""

    charger_id: str
    from_slot: int
    until_slot: int


@dataclass(frozen=True)
class Car:
    """One car as the planner sees it (energies in kWh, powers in kW at the grid side)."""

    car_id: str
    soc_kwh: float
    capacity_kwh: float
    max_ac_kw: float
    max_dc_kw: float = 0.0
    efficiency_points: tuple[tuple[float, float], ...] = DEFAULT_AC_EFFICIENCY
    plugged_charger: str | None = None
    plugged_until_slot: int | None = None
    later_plugs: tuple[PlugWindow, ...] = ()
    chemistry: Chemistry = "nmc"
    full_charge_due: bool = False
    dc_efficiency: float = DEFAULT_DC_EFFICIENCY

    def windows(self, n_slots: int) -> tuple[PlugWindow, ...]:
        """Every plug window of the car within the horizon, the current one first."""
        now: tuple[PlugWindow, ...] = ()
        if self.plugged_charger is not None:
            until = n_slots if self.plugged_until_slot is None else self.plugged_until_slot
            now = (PlugWindow(self.plugged_charger, 0, until),)
        return now + self.later_plugs


@dataclass(frozen=True)
class Charger:
    """A charge point: its grid power limit and minimum while charging (kW), AC or DC, at a site."""

    charger_id: str
    site_id: str
    max_kw: float
    min_kw: float = 0.0
    dc: bool = False


@dataclass(frozen=True)
class Site:
    """A site (depot, street group) whose chargers share a grid connection of ``limit_kw``."""

    site_id: str
    limit_kw: float
    # The billing period's peak so far: a demand charge is on the period's maximum, so power up to it is free.
    peak_so_far_kw: float = 0.0


@dataclass(frozen=True)
class Booking:
    """A trip: the car must hold ``energy_kwh + reserve_kwh`` when slot ``start_slot`` begins."""

    booking_id: str
    car_id: str
    start_slot: int
    energy_kwh: float
    reserve_kwh: float = 0.0

    @property
    def need_kwh(self) -> float:
        """Energy the car must hold at the start."""
        return self.energy_kwh + self.reserve_kwh


@dataclass(frozen=True)
class Tariff:
    """Prices per slot: energy (per kWh, may be negative), carbon, peak demand and waste."""

    price_per_kwh: tuple[float, ...]
    currency: str = "EUR"
    carbon_g_per_kwh: tuple[float, ...] | None = None
    carbon_price_per_t: float = 0.0
    peak_charge_per_kw: float = 0.0
    # Losses cost their energy price and this on top, so that equal-cost plans prefer fewer losses.
    waste_price_per_kwh: float = 0.01


@dataclass(frozen=True)
class CareBounds:
    """Battery-care band (fractions of usable capacity)."""

    # NMC ageing grows with time at high SoC: Keil et al., "Calendar Aging of Lithium-Ion Batteries",
    # J. Electrochem. Soc. 163 (2016) A1872 (storage at high SoC ages NMC fastest); 90 % is a common cap.
    nmc_max_frac: float = 0.9
    # LFP BMSs re-calibrate SoC at full charge, so LFP makers ask for a full charge about weekly
    # (e.g. Tesla's LFP owner guidance: charge to 100 % at least once a week).
    lfp_max_frac: float = 1.0
    end_min_frac: float = 0.5


@dataclass(frozen=True)
class FleetSnapshot:
    """Everything the planner needs, at one moment."""

    start_ms: int
    n_slots: int
    cars: tuple[Car, ...]
    chargers: tuple[Charger, ...]
    sites: tuple[Site, ...]
    bookings: tuple[Booking, ...]
    tariff: Tariff
    care: CareBounds = field(default_factory=CareBounds)
    slot_s: int = 900
    utc_offset_s: int = 0  # for the explanations' clock times only


@dataclass(frozen=True)
class BookingOutcome:
    """What the plan gives one booking: energy expected at its start and any shortfall (kWh)."""

    booking_id: str
    car_id: str
    start_slot: int
    need_kwh: float
    expected_kwh: float
    shortfall_kwh: float

    @property
    def served(self) -> bool:
        """Whether the car holds the booking's need at its start (within 1 Wh)."""
        return self.shortfall_kwh <= 1e-3


@dataclass(frozen=True, eq=False)
class ChargingPlan:
    """A plan: grid kW per car per slot and what it costs, wastes and serves."""

    car_ids: tuple[str, ...]
    start_ms: int
    slot_s: int
    power_kw: NDArray[np.float64]  # (cars, slots) grid-side kW
    energy_kwh: NDArray[np.float64]  # (cars, slots + 1) expected battery energy at each slot's start
    bookings: tuple[BookingOutcome, ...]
    cost: float  # energy cost at the tariff (+ peak charge), currency of the tariff
    currency: str
    carbon_kg: float
    losses_kwh: float
    energy_kwh_total: float  # grid energy drawn
    peak_kw_by_site: Mapping[str, float]
    status: str  # "optimal", "time_limit", "fallback" or the name of the baseline
    gap: float  # relative optimality gap, 0 for an LP solved to optimality
    solve_time_s: float
    explanations: Mapping[str, str]

    @property
    def unserved(self) -> tuple[BookingOutcome, ...]:
        """Bookings whose car falls short at the start."""
        return tuple(b for b in self.bookings if not b.served)

    def car_power_kw(self, car_id: str) -> NDArray[np.float64]:
        """Grid kW of one car per slot."""
        return np.asarray(self.power_kw[self.car_ids.index(car_id)], dtype=np.float64)


def validate(snapshot: FleetSnapshot) -> None:
    """Refuse a snapshot the planner cannot plan, naming the input."""
    s = snapshot
    if s.n_slots <= 0 or s.slot_s <= 0:
        raise ChargingInputError(f"n_slots {s.n_slots} and slot_s {s.slot_s} must be positive")
    _check_tariff(s.tariff, s.n_slots)
    sites = {site.site_id: site for site in s.sites}
    if len(sites) != len(s.sites):
        raise ChargingInputError("site ids repeat")
    for site in s.sites:
        if not (math.isfinite(site.limit_kw) and site.limit_kw > 0):
            raise ChargingInputError(f"site {site.site_id!r} has limit_kw {site.limit_kw}: it must be > 0")
        if not (math.isfinite(site.peak_so_far_kw) and site.peak_so_far_kw >= 0):
            raise ChargingInputError(f"site {site.site_id!r} peak_so_far_kw must be >= 0")
    chargers = {c.charger_id: c for c in s.chargers}
    if len(chargers) != len(s.chargers):
        raise ChargingInputError("charger ids repeat")
    for c in s.chargers:
        if c.site_id not in sites:
            raise ChargingInputError(f"charger {c.charger_id!r} names an unknown site {c.site_id!r}")
        if not (math.isfinite(c.max_kw) and c.max_kw > 0):
            raise ChargingInputError(
                f"charger {c.charger_id!r} has max_kw {c.max_kw}: a charger must give > 0 kW"
            )
        if not (0 <= c.min_kw <= c.max_kw):
            raise ChargingInputError(
                f"charger {c.charger_id!r} min_kw {c.min_kw} is not within 0..{c.max_kw}"
            )
        if sites[c.site_id].limit_kw < c.min_kw:
            raise ChargingInputError(
                f"site {c.site_id!r} limit {sites[c.site_id].limit_kw} kW is below charger {c.charger_id!r}'s"
                f" minimum {c.min_kw} kW"
            )
    cars = {car.car_id: car for car in s.cars}
    if len(cars) != len(s.cars):
        raise ChargingInputError("car ids repeat")
    for car in s.cars:
        _check_car(car, chargers, s.n_slots)
    seen: set[tuple[str, int]] = set()
    windows = {car.car_id: car.windows(s.n_slots) for car in s.cars}
    for b in s.bookings:
        owner = cars.get(b.car_id)
        if owner is None:
            raise ChargingInputError(f"booking {b.booking_id!r} names an unknown car {b.car_id!r}")
        if b.start_slot < 0:
            raise ChargingInputError(
                f"booking {b.booking_id!r} starts at slot {b.start_slot}, before the snapshot:"
                " a booking in the past cannot be planned"
            )
        if not (math.isfinite(b.energy_kwh) and b.energy_kwh >= 0 and b.reserve_kwh >= 0):
            raise ChargingInputError(
                f"booking {b.booking_id!r} has energy {b.energy_kwh} kWh: it must be >= 0"
            )
        if b.need_kwh > owner.capacity_kwh + 1e-9:
            raise ChargingInputError(
                f"booking {b.booking_id!r} needs {b.need_kwh:g} kWh but car {owner.car_id!r} holds at most"
                f" {owner.capacity_kwh:g} kWh"
            )
        if (b.car_id, b.start_slot) in seen:
            raise ChargingInputError(
                f"booking {b.booking_id!r}: car {b.car_id!r} has two bookings in one slot"
            )
        seen.add((b.car_id, b.start_slot))
        if any(w.from_slot <= b.start_slot < w.until_slot for w in windows[b.car_id]):
            raise ChargingInputError(
                f"booking {b.booking_id!r} starts at slot {b.start_slot} while car {owner.car_id!r} is"
                " still plugged in: a plug window must end by the booking's start"
            )
    _check_one_car_per_charger(s)


def _check_one_car_per_charger(s: FleetSnapshot) -> None:
    windows = sorted(
        (w.charger_id, w.from_slot, w.until_slot, car.car_id)
        for car in s.cars
        for w in car.windows(s.n_slots)
    )
    for (c1, _, until1, car1), (c2, from2, _, car2) in itertools.pairwise(windows):
        if c1 == c2 and from2 < until1:
            raise ChargingInputError(
                f"cars {car1!r} and {car2!r} are plugged into charger {c1!r} at slot {from2}"
            )


def _check_tariff(tariff: Tariff, n_slots: int) -> None:
    if len(tariff.price_per_kwh) != n_slots:
        raise ChargingInputError(f"tariff has {len(tariff.price_per_kwh)} prices for {n_slots} slots")
    if not all(math.isfinite(p) for p in tariff.price_per_kwh):
        raise ChargingInputError("tariff has a price that is not a finite number")
    ci = tariff.carbon_g_per_kwh
    if ci is not None and (len(ci) != n_slots or not all(math.isfinite(x) and x >= 0 for x in ci)):
        raise ChargingInputError(f"tariff carbon intensity must be {n_slots} finite values >= 0 g/kWh")
    if tariff.peak_charge_per_kw < 0 or tariff.carbon_price_per_t < 0 or tariff.waste_price_per_kwh < 0:
        raise ChargingInputError("tariff peak charge, carbon price and waste price must be >= 0")


def _check_car(car: Car, chargers: Mapping[str, Charger], n_slots: int) -> None:
    name = f"car {car.car_id!r}"
    if not (math.isfinite(car.capacity_kwh) and car.capacity_kwh > 0):
        raise ChargingInputError(f"{name} has capacity {car.capacity_kwh} kWh: it must be > 0")
    if not (math.isfinite(car.soc_kwh) and 0 <= car.soc_kwh <= car.capacity_kwh + 1e-9):
        raise ChargingInputError(f"{name} holds {car.soc_kwh} kWh, outside 0..{car.capacity_kwh} kWh")
    if not (car.max_ac_kw > 0 and car.max_dc_kw >= 0):
        raise ChargingInputError(f"{name} max_ac_kw {car.max_ac_kw} must be > 0 (max_dc_kw >= 0)")
    pts = car.efficiency_points
    if not pts or any(not (g > 0 and 0 < eta <= 1) for g, eta in pts) or not 0 < car.dc_efficiency <= 1:
        raise ChargingInputError(f"{name} needs efficiency points (grid kW > 0, 0 < efficiency <= 1)")
    if sorted(g for g, _ in pts) != [g for g, _ in pts] or len({g for g, _ in pts}) != len(pts):
        raise ChargingInputError(f"{name} efficiency points must have increasing grid kW")
    if car.chemistry not in ("nmc", "lfp"):
        raise ChargingInputError(f"{name} chemistry {car.chemistry!r} is not 'nmc' or 'lfp'")
    last_until = 0
    for w in sorted(car.windows(n_slots), key=lambda w: w.from_slot):
        if w.charger_id not in chargers:
            raise ChargingInputError(f"{name} is plugged into an unknown charger {w.charger_id!r}")
        if not (0 <= w.from_slot <= w.until_slot):
            raise ChargingInputError(f"{name} plug window {w.from_slot}..{w.until_slot} is not a slot range")
        if w.from_slot < last_until:
            raise ChargingInputError(f"{name} has overlapping plug windows at slot {w.from_slot}")
        if chargers[w.charger_id].dc and car.max_dc_kw <= 0:
            raise ChargingInputError(f"{name} cannot take DC but is plugged into {w.charger_id!r}")
        last_until = w.until_slot


def plan(
    snapshot: FleetSnapshot,
    *,
    time_limit_s: float = 30.0,
    shortfall_penalty_per_kwh: float | None = None,
) -> ChargingPlan:
    """Plan the fleet's charging at least cost (HiGHS), every booking served where the chargers allow."""
    from microfleet.planning.charging_model import layout, solve

    validate(snapshot)
    t0 = time.perf_counter()
    lay = layout(snapshot)
    result = solve(
        snapshot, time_limit_s=time_limit_s, shortfall_penalty_per_kwh=shortfall_penalty_per_kwh, lay=lay
    )
    return evaluate(
        snapshot,
        result.power_kw,
        status=result.status,
        gap=result.gap,
        solve_time_s=time.perf_counter() - t0,
        site_binding=None,
        lay=lay,
    )


def evaluate(
    snapshot: FleetSnapshot,
    power_kw: NDArray[np.float64],
    *,
    status: str,
    gap: float,
    solve_time_s: float,
    site_binding: NDArray[np.bool_] | None = None,
    lay: Layout | None = None,
) -> ChargingPlan:
    """Score a (cars x slots) grid-kW schedule: energy, bookings, cost, carbon, losses, peaks."""
    from microfleet.planning.charging_explain import explain
    from microfleet.planning.charging_model import battery_kw, layout, site_power

    lay = layout(snapshot) if lay is None else lay
    dt_h = snapshot.slot_s / 3600.0
    power = np.clip(np.asarray(power_kw, dtype=np.float64), 0.0, None) * lay.plugged
    batt = battery_kw(lay, power)
    energy = np.empty((len(snapshot.cars), snapshot.n_slots + 1))
    energy[:, 0] = [c.soc_kwh for c in snapshot.cars]
    outcomes: list[BookingOutcome] = []
    use = lay.trip_kwh
    shortfall = np.zeros_like(use)
    by_slot = {
        (lay.car_index[b.car_id], b.start_slot): b
        for b in snapshot.bookings
        if b.start_slot < snapshot.n_slots
    }
    for t in range(snapshot.n_slots):
        energy[:, t + 1] = energy[:, t] + batt[:, t] * dt_h
        for i in np.flatnonzero(use[:, t] > 0):
            b = by_slot[(int(i), t)]
            short = max(0.0, b.need_kwh - energy[i, t])
            shortfall[i, t] = short
            # A short trip is assumed completed with the missing energy from elsewhere (a public charger).
            energy[i, t + 1] = energy[i, t] + short - b.energy_kwh + batt[i, t] * dt_h
    for b in snapshot.bookings:
        if b.start_slot >= snapshot.n_slots:
            continue
        row = lay.car_index[b.car_id]
        e = float(energy[row, b.start_slot])
        outcomes.append(
            BookingOutcome(b.booking_id, b.car_id, b.start_slot, b.need_kwh, e, max(0.0, b.need_kwh - e))
        )
    prices = np.asarray(snapshot.tariff.price_per_kwh)
    grid_kwh = power * dt_h
    site_kw = site_power(lay, power)  # (sites, slots)
    peaks = site_kw.max(axis=1) if site_kw.size else np.zeros(0)
    cost = float((grid_kwh.sum(axis=0) * prices).sum()) + snapshot.tariff.peak_charge_per_kw * float(
        peaks.sum()
    )
    ci = snapshot.tariff.carbon_g_per_kwh
    carbon_kg = float((grid_kwh.sum(axis=0) * np.asarray(ci)).sum() / 1000.0) if ci is not None else 0.0
    losses = float(grid_kwh.sum() - (batt * dt_h).sum())
    binding = site_kw >= lay.site_limit[:, None] * (1 - 1e-6) - 1e-6 if site_binding is None else site_binding
    plan_ = ChargingPlan(
        car_ids=tuple(c.car_id for c in snapshot.cars),
        start_ms=snapshot.start_ms,
        slot_s=snapshot.slot_s,
        power_kw=power,
        energy_kwh=energy,
        bookings=tuple(outcomes),
        cost=cost,
        currency=snapshot.tariff.currency,
        carbon_kg=carbon_kg,
        losses_kwh=losses,
        energy_kwh_total=float(grid_kwh.sum()),
        peak_kw_by_site={s.site_id: float(peaks[k]) for k, s in enumerate(snapshot.sites)},
        status=status,
        gap=gap,
        solve_time_s=solve_time_s,
        explanations={},
    )
    object.__setattr__(plan_, "explanations", explain(snapshot, plan_, lay, binding & (site_kw > 0)))
    return plan_


def summarise(plans: Sequence[ChargingPlan]) -> dict[str, float]:
    """Totals over plans of consecutive horizons (cost, losses, energy, peak, served share)."""
    served = sum(sum(b.served for b in p.bookings) for p in plans)
    total = sum(len(p.bookings) for p in plans)
    peaks = [max(p.peak_kw_by_site.values(), default=0.0) for p in plans]
    return {
        "cost": sum(p.cost for p in plans),
        "losses_kwh": sum(p.losses_kwh for p in plans),
        "energy_kwh": sum(p.energy_kwh_total for p in plans),
        "peak_kw": max(peaks, default=0.0),
        "served_share": served / total if total else 1.0,
    }
