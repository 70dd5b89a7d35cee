"""Each vehicle's day as segments (drive, park, charge), with its true state of charge and charging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np

from microfleet.sim.city import Places, RoadNetwork
from microfleet.sim.fleet import TwinVehicle
from microfleet.sim.people import MIN_DWELL_S, Leg

DRIVE: Final = 0
PARK: Final = 1
CHARGE: Final = 2
CHARGER_EFFICIENCY: Final = 0.90  # wall to battery, on-board AC charger of a small EV (assumed)
PUBLIC_AC_KW: Final = 7.0  # public AC post (GB/T 20234.2 single-phase 32 A ≈ 7 kW)
NO_HOME_CHARGER_PLUG_PCT: Final = 35.0  # owners without a home charger seek a public one below this (assumed)
DC_RESCUE_PCT: Final = 12.0  # below this, owners of DC-capable cars go to a fast charger (assumed, rare)
DC_CHARGE_TO_PCT: Final = 80.0
LOW_SOC_PCT: Final = 20.0  # below this an owner charges wherever the car is (assumed range-anxiety level)
LOW_RANGE_KWH: Final = 3.0  # ... or below about 25 km of city driving left, whichever is higher (assumed)
MIN_SOC_PCT: Final = 1.0  # the BMS cuts propulsion near empty; the twin's cars never go below this


@dataclass(frozen=True, slots=True)
class LegDrive:
    """A routed, simulated leg: its trace id, duration, distance and battery energy."""

    leg: Leg
    trace: int
    duration_s: float
    distance_km: float
    energy_kwh: float


@dataclass
class Stop:
    """Where a vehicle waits, since when, and whether (and how) it charges there."""

    start_s: float
    node: int
    charge_kw: float = 0.0  # battery-side charging power; 0 = not charging
    limit_pct: float = 100.0
    plugged: bool = False
    dc: bool = False


@dataclass
class Segments:
    """Column lists of segments (one row per drive, park or charge period)."""

    vehicle: list[int] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    start_s: list[float] = field(default_factory=list)
    end_s: list[float] = field(default_factory=list)
    soc0_pct: list[float] = field(default_factory=list)
    soc1_pct: list[float] = field(default_factory=list)
    node: list[int] = field(default_factory=list)
    trace: list[int] = field(default_factory=list)
    power_kw: list[float] = field(default_factory=list)
    plugged: list[bool] = field(default_factory=list)
    dc: list[bool] = field(default_factory=list)
    odo0_km: list[float] = field(default_factory=list)
    capacity_kwh: list[float] = field(default_factory=list)
    leg: list[Leg | None] = field(default_factory=list)

    def add(self, v: TwinVehicle, kind: int, start: float, end: float, soc1: float, node: int = -1,
            trace: int = -1, power: float = 0.0, plugged: bool = False, dc: bool = False,
            leg: Leg | None = None) -> None:  # fmt: skip
        """Append one segment of vehicle ``v`` starting at its current state of charge and odometer."""
        self.vehicle.append(v.index)
        self.kind.append(kind)
        self.start_s.append(start)
        self.end_s.append(end)
        self.soc0_pct.append(v.soc_pct)
        self.soc1_pct.append(soc1)
        self.node.append(node)
        self.trace.append(trace)
        self.power_kw.append(power)
        self.plugged.append(plugged)
        self.dc.append(dc)
        self.odo0_km.append(v.odometer_km)
        self.capacity_kwh.append(v.capacity_kwh)
        self.leg.append(leg)


DriveFn = Callable[[TwinVehicle, int, int, float], LegDrive]


def close_stop(v: TwinVehicle, stop: Stop, end_s: float, segs: Segments) -> Stop:
    """Emit the stop up to ``end_s`` (charging first, then plugged or parked); return what remains of it."""
    if end_s <= stop.start_s:
        return stop
    t = stop.start_s
    if stop.charge_kw > 0 and v.soc_pct < stop.limit_pct:
        need_s = (stop.limit_pct - v.soc_pct) / 100.0 * v.capacity_kwh / stop.charge_kw * 3600.0
        until = min(end_s, t + need_s)
        soc1 = v.soc_pct + (until - t) / 3600.0 * stop.charge_kw / v.capacity_kwh * 100.0
        segs.add(v, CHARGE, t, until, min(soc1, stop.limit_pct), stop.node, power=stop.charge_kw, dc=stop.dc)
        v.soc_pct = min(soc1, stop.limit_pct)
        t = until
    if end_s > t:
        plugged = stop.plugged or stop.charge_kw > 0
        segs.add(v, PARK, t, end_s, v.soc_pct, stop.node, plugged=plugged)
    return Stop(end_s, stop.node, stop.charge_kw, stop.limit_pct, stop.plugged or stop.charge_kw > 0, stop.dc)


def _drive(v: TwinVehicle, d: LegDrive, depart_s: float, segs: Segments) -> float:
    soc1 = max(MIN_SOC_PCT, v.soc_pct - d.energy_kwh / v.capacity_kwh * 100.0)
    segs.add(
        v,
        DRIVE,
        depart_s,
        depart_s + d.duration_s,
        soc1,
        trace=d.trace,
        leg=replace(d.leg, depart_s=depart_s),
    )
    v.soc_pct = soc1
    v.odometer_km += d.distance_km
    return depart_s + d.duration_s


def arrive(
    v: TwinVehicle,
    leg: Leg,
    arrival_s: float,
    net: RoadNetwork,
    places: Places,
    drive: DriveFn,
    segs: Segments,
) -> Stop:
    """Decide what the car does on arrival: park, plug in at home, seek a public or fast charger, or depot."""
    node = leg.destination
    model, person = v.model, v.person
    if leg.purpose == "relocate_charge":
        dc = model.dc_charge_kw > 0
        kw = model.dc_charge_kw if dc else min(model.ac_charge_kw, PUBLIC_AC_KW)
        return Stop(arrival_s, node, kw * CHARGER_EFFICIENCY, 90.0, dc=dc)
    if person is None:
        return Stop(arrival_s, node)
    if v.soc_pct < DC_RESCUE_PCT and model.dc_charge_kw > 0:
        target = int(places.charger_dc[int(np.argmin(net.distance_m(node, places.charger_dc)))])
        if target != node:
            d = drive(v, node, target, arrival_s + 60.0)
            arrival_s = _drive(v, d, arrival_s + 60.0, segs)
        return Stop(arrival_s, target, model.dc_charge_kw * CHARGER_EFFICIENCY, DC_CHARGE_TO_PCT, dc=True)
    at_home = node == person.home
    low_pct = max(LOW_SOC_PCT, LOW_RANGE_KWH / v.capacity_kwh * 100.0)
    if not at_home and v.soc_pct < low_pct:  # range anxiety: the nearest public AC post, now
        target = int(places.charger_ac[int(np.argmin(net.distance_m(node, places.charger_ac)))])
        if target != node:
            d = drive(v, node, target, arrival_s + 60.0)
            arrival_s = _drive(v, d, arrival_s + 60.0, segs)
        kw = min(model.ac_charge_kw, PUBLIC_AC_KW) * CHARGER_EFFICIENCY
        return Stop(arrival_s, target, kw, person.charge_limit_pct)
    if at_home and person.home_charger and v.soc_pct < max(person.plug_threshold_pct, low_pct):
        return Stop(arrival_s, node, model.ac_charge_kw * CHARGER_EFFICIENCY, person.charge_limit_pct)
    if at_home and not person.home_charger and v.soc_pct < max(NO_HOME_CHARGER_PLUG_PCT, low_pct):
        target = person.public_charger
        if target != node:
            segs.add(v, PARK, arrival_s, arrival_s + 300.0, v.soc_pct, node)
            d = drive(v, node, target, arrival_s + 300.0)
            arrival_s = _drive(v, d, arrival_s + 300.0, segs)
        kw = min(model.ac_charge_kw, PUBLIC_AC_KW) * CHARGER_EFFICIENCY
        return Stop(arrival_s, target, kw, person.charge_limit_pct)
    return Stop(arrival_s, node)


def run_vehicle(
    v: TwinVehicle,
    stop: Stop,
    drives: list[LegDrive],
    end_s: float,
    net: RoadNetwork,
    places: Places,
    drive: DriveFn,
    segs: Segments,
) -> Stop:
    """Play one vehicle's planned legs in order up to ``end_s``; return the stop it is in at the end."""
    for d in drives:
        depart = max(d.leg.depart_s, stop.start_s + MIN_DWELL_S)
        if depart >= end_s:
            break
        if d.leg.destination == stop.node:  # the car was moved to where this leg goes: nothing to drive
            continue
        if d.leg.origin != stop.node:  # the car was moved (to a charger): drive from where it really is
            new = drive(v, stop.node, d.leg.destination, depart)
            d = LegDrive(
                replace(d.leg, origin=stop.node), new.trace, new.duration_s, new.distance_km, new.energy_kwh
            )
        if depart + d.duration_s >= end_s:
            break
        close_stop(v, stop, depart, segs)
        arrival = _drive(v, d, depart, segs)
        stop = arrive(v, d.leg, arrival, net, places, drive, segs)
    return close_stop(v, stop, end_s, segs)
