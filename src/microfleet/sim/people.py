"""The people: car owners with routines and the places they know, and the legs they plan each day."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.city import Places, RoadNetwork
from microfleet.sim.reference import CITED_CAR_COMMUTE_KM, EPR_GAMMA, EPR_RHO, MobilityFigures

# Share of car owners who commute by car on weekdays: Shanghai 2014 survey, commute trips 1.04 of 2.16
# trips per person-day (≈ 48%); rounded to 0.5 (mobility/README §1).
COMMUTER_SHARE: Final = 0.5
# Places a person already knows besides home and work when the simulation starts (assumed): the EPR model
# (Song et al. 2010) needs S ≥ 1; with S = 5, P(new) = 0.6 × 5^-0.21 ≈ 0.43 for a non-home, non-work trip.
KNOWN_PLACES_AT_START: Final = 3
CITY_MAX_TRIP_KM: Final = 12.0  # trips longer than the 10 × 13 km extract are redrawn (extract limit)
MIN_DWELL_S: Final = 600.0  # a stop lasts at least 10 minutes (assumed)
# Home charging: about 70% of Chinese mini-EV owners charge at home from a wall socket or wallbox (assumed;
# SGMW markets the Mini EV for 220 V household outlets, catalogue row "Gen 1").
HOME_CHARGER_SHARE: Final = 0.7


@dataclass
class Person:
    """One owner: where they live and work, the places they know, how they drive and charge."""

    home: int
    work: int
    commuter: bool
    known: list[int]
    visits: list[int]
    aggressiveness: float  # 0 = gentle, 1 = aggressive (acceleration, speeding)
    hvac_setpoint_c: float
    hvac_tolerance_k: float  # HVAC runs when ambient is further than this from the setpoint
    home_charger: bool
    plug_threshold_pct: float
    charge_limit_pct: float
    public_charger: int
    location: int = field(init=False)

    def __post_init__(self) -> None:
        """Everyone starts the simulation at home."""
        self.location = self.home


@dataclass(frozen=True, slots=True)
class Leg:
    """One planned drive of one vehicle: when it leaves (s since start), from where, to where, and why."""

    vehicle: int
    depart_s: float
    origin: int
    destination: int
    purpose: str
    novel: bool
    booking: int = -1


def make_person(net: RoadNetwork, places: Places, rng: np.random.Generator) -> Person:
    """Draw one owner's home, work, known places, driving style and charging habits."""
    home = int(rng.choice(places.home))
    # Commute length: lognormal around the cited 8.11 km car commute (spread assumed), within the city.
    commute_km = min(float(rng.lognormal(np.log(CITED_CAR_COMMUTE_KM), 0.4)), CITY_MAX_TRIP_KM)
    work = place_at_distance(net, places.work, home, commute_km, rng)
    known = [int(x) for x in rng.choice(places.other, KNOWN_PLACES_AT_START)]
    dist = net.distance_m(home, places.charger_ac)
    aggr = float(rng.beta(2.0, 3.0))
    return Person(
        home=home,
        work=work,
        commuter=bool(rng.random() < COMMUTER_SHARE),
        known=known,
        visits=[1] * len(known),
        aggressiveness=aggr,
        hvac_setpoint_c=float(rng.uniform(19.0, 24.0)),
        hvac_tolerance_k=float(rng.uniform(3.0, 10.0)),
        home_charger=bool(rng.random() < HOME_CHARGER_SHARE),
        plug_threshold_pct=float(rng.choice([100.0, 60.0, 40.0, 30.0], p=[0.3, 0.3, 0.25, 0.15])),
        charge_limit_pct=float(rng.choice([100.0, 90.0, 80.0], p=[0.6, 0.3, 0.1])),
        public_charger=int(places.charger_ac[int(np.argmin(dist))]),
    )


def draw_trip_km(mobility: MobilityFigures, rng: np.random.Generator) -> float:
    """A trip length drawn from the emobpy/MiD distance bins (uniform within a bin), within the city."""
    edges = np.concatenate([[0.3], mobility.trip_distance_km])
    while True:
        b = int(rng.choice(mobility.trip_distance_p.size, p=mobility.trip_distance_p))
        km = float(rng.uniform(edges[b], edges[b + 1]))
        if km <= CITY_MAX_TRIP_KM:
            return km


def place_at_distance(
    net: RoadNetwork, candidates: npt.NDArray[np.int64], origin: int, km: float, rng: np.random.Generator
) -> int:
    """A candidate node whose road distance from ``origin`` is likely close to ``km``."""
    sample = rng.choice(candidates, 512)
    err = np.abs(net.distance_m(origin, sample) / 1000.0 - km / 1.3)  # 1.3: road over straight-line distance
    return int(sample[int(np.argmin(err))])


def _other_place(
    person: Person,
    net: RoadNetwork,
    places: Places,
    mob: MobilityFigures,
    origin: int,
    rng: np.random.Generator,
) -> tuple[int, bool]:
    """Exploration or preferential return (Song et al. 2010): a new place with P = rho × S^-gamma."""
    distinct = len(person.known) + 2
    if rng.random() < EPR_RHO * distinct ** (-EPR_GAMMA):
        node = place_at_distance(net, places.other, origin, draw_trip_km(mob, rng), rng)
        person.known.append(node)
        person.visits.append(1)
        return node, True
    weights = np.asarray(person.visits, dtype=np.float64)
    i = int(rng.choice(len(person.known), p=weights / weights.sum()))
    person.visits[i] += 1
    return person.known[i], False


def _halfhour_time(p: np.ndarray, rng: np.random.Generator) -> float:
    return float((rng.choice(p.size, p=p) + rng.random()) * 1800.0)


def plan_owner_day(
    vehicle: int,
    person: Person,
    day: int,
    weekend: bool,
    net: RoadNetwork,
    places: Places,
    mob: MobilityFigures,
    rng: np.random.Generator,
) -> list[Leg]:
    """One owner's legs for one day: a tour from home, commute first on weekdays for commuters."""
    n = int(rng.choice(6, p=mob.trips_per_day[1 if weekend else 0]))
    if n == 0:
        return []
    commute = person.commuter and not weekend
    first = "work" if commute else "other"
    shapes = {
        2: [first, "home"],
        3: [first, "other", "home"],
        4: [first, "home", "other", "home"],
        5: [first, "other", "home", "other", "home"],
    }
    purposes = shapes[n]
    hours = np.sort(rng.choice(24, size=n, p=mob.departure_hour_share[1 if weekend else 0]) + rng.random(n))
    times = hours * 3600.0
    if commute:
        times[0] = _halfhour_time(mob.work_departure_halfhour, rng)
        times[1] = max(times[0] + 3 * 3600.0, _halfhour_time(mob.home_departure_halfhour, rng))
        times = np.maximum.accumulate(times)
    legs: list[Leg] = []
    origin = person.location
    for t, purpose in zip(times, purposes, strict=True):
        if purpose == "home":
            dest, novel = person.home, False
        elif purpose == "work":
            dest, novel = person.work, False
        else:
            dest, novel = _other_place(person, net, places, mob, origin, rng)
        if dest == origin:
            continue
        legs.append(Leg(vehicle, day * 86400.0 + float(t), origin, dest, purpose, novel))
        origin = dest
    person.location = origin
    return legs
