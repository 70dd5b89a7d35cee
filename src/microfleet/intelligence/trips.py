"""Route learning: a car's places, its frequent trips, the next destination and when it will leave.

Everything here is a pure function of a car's derived drives (:class:`microfleet.domain.drives.Drive`,
their start and end positions and stored places) and a time zone:

* **places** are the owner's stored places a drive starts or ends in, plus the stops Microfleet finds by
  clustering the other drive ends (:func:`microfleet.domain.places.discover_places`, one visit enough);
* a drive's destination is a known place only when its end is close enough to be one of that place's own
  visits (a Rayleigh test on the place's spread); otherwise it is **unknown**, never the nearest place;
* the **next destination** is a distribution over known places and ``unknown``, from a time-aware kernel
  over past transitions (current place, time of day, weekday type, previous place, trips so far today),
  with the frequency (Markov) baseline beside it (:class:`FrequencyModel`);
* the **departure time** of a routine trip is the median of its past departures on the same kind of day,
  later than the car's arrival at the origin.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from microfleet.domain.drives import Drive
from microfleet.domain.places import EARTH_RADIUS_M, Circle, Place, discover_places, haversine_m

UNKNOWN: Final = "unknown"  # a destination that is none of the car's known places
# Route learning needs about two weeks of an ordinary owner's driving (~2 drives a day, the emobpy/MiD
# trips-per-day figures the twin uses) to have seen each weekday type more than once: Microfleet's choice.
MIN_DRIVES: Final = 20
# Stops closer than this are one place when Microfleet clusters drive ends (DBSCAN eps). A car park and the
# street in front of it; half of discover_places' 150 m default so two shops on a block stay two places.
PLACE_CLUSTER_M: Final = 75.0
# Smallest spread (Rayleigh sigma) of a place's visits: consumer GPS is good to ~5-10 m (1 sigma) and a car
# parks anywhere in a car park or along a kerb, tens of metres: Microfleet's choice.
MIN_PLACE_SIGMA_M: Final = 25.0
# A stop is a new place when fewer than 1 % of the place's own visits would land as far from its centre
# (Rayleigh survival exp(-d^2 / 2 sigma^2) < 0.01, i.e. d > 3.03 sigma): Microfleet's choice.
NOVELTY_THRESHOLD: Final = 0.99
FREQUENT_TRIP_MIN: Final = 3  # a trip made at least three times is a routine, not a coincidence
MINUTES_PER_DAY: Final = 1440.0


@dataclass(frozen=True, slots=True)
class KernelParams:
    """How much each feature counts in the kernel model.

    Weights multiply: a past transition from another place counts ``other_origin`` as much as one from
    the current place, and so on. ``bandwidth_min`` is the Gaussian time-of-day kernel's sigma. Chosen on
    the twin's development seed only (bench/route_prediction_eval.py, seed 1, 40 owners, held-out weeks):
    a wide time kernel and the trip's rank in the day beat a narrow kernel (top-1 0.709 against 0.691 for
    90 min); the previous place did not help there (1.0: not used) and is kept as a switch.
    """

    bandwidth_min: float = 240.0
    other_day_type: float = 0.1
    other_origin: float = 0.02
    other_previous: float = 1.0
    other_trip_index: float = 0.3
    prior: float = 0.05  # pseudo-count spread over known destinations by their overall frequency


@dataclass(frozen=True, slots=True)
class LearnedPlace:
    """A place of this car: a stored place it visits, or one found from its stops (``name`` None)."""

    place_id: str
    name: str | None
    lat_deg: float
    lon_deg: float
    sigma_m: float
    visits: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One drive as route learning sees it: from where to where, when, and what came before."""

    origin: str | None  # None: the drive started outside every known place
    destination: str  # a place id, or UNKNOWN for the first visit of a place
    place: str | None  # the place the drive ended in (also for a first visit); None outside all
    depart_ts_ms: int
    depart_min: float  # local minutes after midnight
    weekday: int  # 0 = Monday
    previous: str | None  # where the drive before this one started
    trips_today: int  # drives already started this local day
    arrived_ms: int | None  # when the car arrived at the origin (the previous drive's end)
    distance_km: float
    energy_kwh: float | None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Query:
    """What is known when a trip is predicted: where the car is, the time, what it did before."""

    origin: str | None
    at_min: float
    weekday: int
    previous: str | None = None
    trips_today: int = 0


class NextDestinationModel(Protocol):
    """A fitted next-destination model: a distribution over known places and ``unknown``."""

    def predict(self, q: Query) -> dict[str, float]:
        """Probabilities summing to 1 over place ids and :data:`UNKNOWN`."""
        ...


def weekend(weekday: int) -> bool:
    """Saturday or Sunday."""
    return weekday >= 5


def local_time(ts_ms: int, tz: ZoneInfo) -> dt.datetime:
    """A UTC epoch instant as local wall-clock time."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz)


def minute_of_day(t: dt.datetime) -> float:
    """Minutes after local midnight."""
    return t.hour * 60 + t.minute + t.second / 60


def _drive_end(d: Drive) -> tuple[float, float] | None:
    if d.end_lat_deg is None or d.end_lon_deg is None:
        return None
    return d.end_lat_deg, d.end_lon_deg


def learn_places(drives: Sequence[Drive], stored: Sequence[Place] = ()) -> list[LearnedPlace]:
    """The car's places: stored places its drives end in, and clusters of its other drive ends."""
    by_stored: dict[str, list[tuple[float, float]]] = {}
    loose: list[tuple[float, float]] = []
    names = {p.place_id: p for p in stored}
    for d in drives:
        end = _drive_end(d)
        if end is None:
            continue
        if d.end_place_id in names:
            by_stored.setdefault(d.end_place_id, []).append(end)
        else:
            loose.append(end)
    out = []
    for pid, ends in by_stored.items():
        p = names[pid]
        g = p.geometry
        if isinstance(g, Circle):
            lat, lon = g.lat_deg, g.lon_deg
        else:
            lat = float(np.mean([v[0] for v in g.vertices]))
            lon = float(np.mean([v[1] for v in g.vertices]))
        out.append(LearnedPlace(pid, p.name, lat, lon, _sigma(lat, lon, ends), len(ends)))
    for c in discover_places(loose, radius_m=PLACE_CLUSTER_M, min_visits=1):
        members = [e for e in loose if haversine_m(c.lat_deg, c.lon_deg, *e) <= c.radius_m]
        pid = f"learned:{c.lat_deg:.5f},{c.lon_deg:.5f}"
        out.append(
            LearnedPlace(pid, None, c.lat_deg, c.lon_deg, _sigma(c.lat_deg, c.lon_deg, members), c.visits)
        )
    return out


def _sigma(lat: float, lon: float, points: Sequence[tuple[float, float]]) -> float:
    """Rayleigh sigma of the points around a centre (ML estimate sqrt(mean d^2 / 2)), at least the floor."""
    if not points:
        return MIN_PLACE_SIGMA_M
    d2 = [haversine_m(lat, lon, a, b) ** 2 for a, b in points]
    return max(math.sqrt(sum(d2) / (2 * len(d2))), MIN_PLACE_SIGMA_M)


@dataclass(frozen=True, slots=True)
class PlaceIndex:
    """Known places with a novelty test: which place a position is a visit of, if any."""

    places: tuple[LearnedPlace, ...]
    _lat: np.ndarray = field(repr=False)
    _lon: np.ndarray = field(repr=False)
    _sigma: np.ndarray = field(repr=False)

    @classmethod
    def of(cls, places: Sequence[LearnedPlace]) -> PlaceIndex:
        """Index a list of places."""
        return cls(
            tuple(places),
            np.array([p.lat_deg for p in places]),
            np.array([p.lon_deg for p in places]),
            np.array([p.sigma_m for p in places]),
        )

    def novelty(self, lat_deg: float, lon_deg: float) -> tuple[str | None, float]:
        """The most likely place of a stop and the probability that it is none of them (a new place).

        Each place's visits spread as a Rayleigh distribution of distance; the stop's novelty is one
        minus the largest share of a place's own visits that lie at least this far out.
        """
        if not self.places or math.isnan(lat_deg) or math.isnan(lon_deg):
            return None, 1.0
        p1, p2 = np.radians(lat_deg), np.radians(self._lat)
        dp, dl = p2 - p1, np.radians(self._lon - lon_deg)
        a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
        d = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        survival = np.exp(-(d**2) / (2 * self._sigma**2))
        best = int(np.argmax(survival))
        return self.places[best].place_id, float(1.0 - survival[best])

    def locate(self, lat_deg: float | None, lon_deg: float | None) -> str | None:
        """The place a position is a visit of, or None when it is new (novelty above the threshold)."""
        if lat_deg is None or lon_deg is None:
            return None
        pid, novel = self.novelty(lat_deg, lon_deg)
        return pid if novel <= NOVELTY_THRESHOLD else None

    def nearest_within(self, lat_deg: float | None, lon_deg: float | None, radius_m: float) -> str | None:
        """The nearest place's id if its centre is within ``radius_m`` (the baseline's snapping rule)."""
        if lat_deg is None or lon_deg is None or not self.places:
            return None
        d = [haversine_m(p.lat_deg, p.lon_deg, lat_deg, lon_deg) for p in self.places]
        i = int(np.argmin(d))
        return self.places[i].place_id if d[i] <= radius_m else None


def transitions(drives: Sequence[Drive], index: PlaceIndex, tz: ZoneInfo) -> list[Transition]:
    """Each drive (oldest first) as a transition between places; a place's first visit is UNKNOWN."""
    out: list[Transition] = []
    ids = {p.place_id for p in index.places}
    seen: set[str] = set()
    prev_origin: str | None = None
    prev_end_ms: int | None = None
    day: dt.date | None = None
    today = 0
    for d in sorted(drives, key=lambda x: x.start_ts_ms):
        t = local_time(d.start_ts_ms, tz)
        if t.date() != day:
            day, today = t.date(), 0
        # a stored place the derivation put the drive in holds it, wherever in its geofence it stopped
        origin = (
            d.start_place_id if d.start_place_id in ids else index.locate(d.start_lat_deg, d.start_lon_deg)
        )
        place = d.end_place_id if d.end_place_id in ids else index.locate(d.end_lat_deg, d.end_lon_deg)
        if origin is not None:
            seen.add(origin)
        dest = place if place is not None and place in seen else UNKNOWN
        if place is not None:
            seen.add(place)
        km = d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km
        out.append(
            Transition(
                origin,
                dest,
                place,
                d.start_ts_ms,
                minute_of_day(t),
                t.weekday(),
                prev_origin,
                today,
                prev_end_ms,
                float(km),
                d.energy_used_kwh,
                d.duration_s,
            )
        )
        prev_origin, prev_end_ms = origin, d.end_ts_ms
        today += 1
    return out


def _circular_gap_min(a: np.ndarray, b: float) -> np.ndarray:
    g = np.abs(a - b) % MINUTES_PER_DAY
    out: np.ndarray = np.minimum(g, MINUTES_PER_DAY - g)
    return out


class KernelModel:
    """Next destination from past transitions weighted by how alike their situation is to now."""

    def __init__(self, params: KernelParams | None = None) -> None:
        self.params = params or KernelParams()
        self._dest: list[str] = []

    def fit(self, history: Sequence[Transition]) -> KernelModel:
        """Remember the transitions as arrays; returns self."""
        self._dest = [t.destination for t in history]
        self._origin = [t.origin for t in history]
        self._prev = [t.previous for t in history]
        self._min = np.array([t.depart_min for t in history])
        self._weekend = np.array([weekend(t.weekday) for t in history], dtype=bool)
        self._index = np.array([min(t.trips_today, 3) for t in history])
        self._overall = Counter(d for d in self._dest if d != UNKNOWN)
        return self

    def predict(self, q: Query) -> dict[str, float]:
        """Probabilities over known places and :data:`UNKNOWN`."""
        p = self.params
        if not self._dest:
            return {UNKNOWN: 1.0}
        w = np.exp(-0.5 * (_circular_gap_min(self._min, q.at_min) / p.bandwidth_min) ** 2)
        w = w * np.where(self._weekend == weekend(q.weekday), 1.0, p.other_day_type)
        w = w * np.array([1.0 if o == q.origin else p.other_origin for o in self._origin])
        w = w * np.array([1.0 if v == q.previous else p.other_previous for v in self._prev])
        w = w * np.where(self._index == min(q.trips_today, 3), 1.0, p.other_trip_index)
        scores: dict[str, float] = {}
        for dest, weight in zip(self._dest, w.tolist(), strict=True):
            scores[dest] = scores.get(dest, 0.0) + weight
        total_known = sum(self._overall.values())
        if total_known:
            mass = p.prior * max(sum(scores.values()), 1e-9)
            for place, n in self._overall.items():
                scores[place] = scores.get(place, 0.0) + mass * n / total_known
        return _normalised(scores)


class FrequencyModel:
    """The baseline: how often each destination followed the current place (Markov order 1)."""

    def fit(self, history: Sequence[Transition]) -> FrequencyModel:
        """Count destinations per origin; returns self."""
        self._by_origin: dict[str | None, Counter[str]] = {}
        for t in history:
            self._by_origin.setdefault(t.origin, Counter())[t.destination] += 1
        self._overall = Counter(t.destination for t in history)
        return self

    def predict(self, q: Query) -> dict[str, float]:
        """Destination shares after the current place; overall shares for a place never left before."""
        counts = self._by_origin.get(q.origin) or self._overall
        if not counts:
            return {UNKNOWN: 1.0}
        return _normalised({k: float(v) for k, v in counts.items()})


def _normalised(scores: dict[str, float]) -> dict[str, float]:
    total = sum(scores.values())
    if total <= 0:
        return {UNKNOWN: 1.0}
    return dict(sorted(((k, v / total) for k, v in scores.items()), key=lambda kv: -kv[1]))


def ranked_places(probabilities: dict[str, float], k: int) -> list[str]:
    """The ``k`` most likely known places (``unknown`` is reported beside them, not ranked)."""
    return [p for p, _ in sorted(probabilities.items(), key=lambda kv: -kv[1]) if p != UNKNOWN][:k]


@dataclass(frozen=True, slots=True)
class DeparturePrediction:
    """When a routine trip will likely leave: median and P10-P90 in local minutes, from ``samples`` trips."""

    median_min: float
    p10_min: float
    p90_min: float
    samples: int


def predict_departure(
    history: Sequence[Transition],
    origin: str,
    destination: str,
    weekday: int,
    after_min: float | None = None,
) -> DeparturePrediction | None:
    """Departure of ``origin -> destination`` on a day like ``weekday``, later than ``after_min`` if given.

    Uses past departures of the trip on the same day type (all days when too few); None when the trip
    has fewer than :data:`FREQUENT_TRIP_MIN` past departures (after ``after_min``).
    """
    same = [t for t in history if t.origin == origin and t.destination == destination]
    like = [t.depart_min for t in same if weekend(t.weekday) == weekend(weekday)]
    times = like if len(like) >= FREQUENT_TRIP_MIN else [t.depart_min for t in same]
    if after_min is not None:
        later = [m for m in times if m >= after_min]
        times = later if len(later) >= FREQUENT_TRIP_MIN else []
    if len(times) < FREQUENT_TRIP_MIN:
        return None
    a = np.array(times)
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    return DeparturePrediction(float(med), float(p10), float(p90), int(a.size))


@dataclass(frozen=True, slots=True)
class FrequentTrip:
    """A routine trip: from where to where, how often, when it usually leaves, what it usually uses."""

    origin: str
    destination: str
    count: int
    weekday_count: int
    weekend_count: int
    departure_median_min: float
    departure_p10_min: float
    departure_p90_min: float
    distance_km_median: float
    duration_s_median: float
    energy_kwh: tuple[float, float, float] | None  # P10, P50, P90 of this trip's own drives
    energy_samples: int
    route: tuple[tuple[float, float], ...]  # the route of the drive most like the trip's median
    departures_min: tuple[float, ...]
    energies_kwh: tuple[float | None, ...]
    weekdays: tuple[int, ...]


def frequent_trips(
    history: Sequence[Transition], drives: Sequence[Drive], min_count: int = FREQUENT_TRIP_MIN
) -> list[FrequentTrip]:
    """Trips between two known places made at least ``min_count`` times, most frequent first.

    ``drives`` are the drives ``history`` was built from, in the same (time) order.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for i, t in enumerate(history):
        if t.origin is not None and t.place is not None and t.origin != t.place:
            groups.setdefault((t.origin, t.place), []).append(i)
    ordered = sorted(drives, key=lambda x: x.start_ts_ms)
    out = []
    for (o, d), idx in groups.items():
        if len(idx) < min_count:
            continue
        ts = [history[i] for i in idx]
        deps = np.array([t.depart_min for t in ts])
        km = np.array([t.distance_km for t in ts])
        energies = [t.energy_kwh for t in ts]
        e = np.array([x for x in energies if x is not None])
        q = tuple(float(v) for v in np.percentile(e, [10, 50, 90])) if e.size >= min_count else None
        typical = idx[int(np.argmin(np.abs(km - np.median(km))))]
        p10, med, p90 = np.percentile(deps, [10, 50, 90])
        out.append(
            FrequentTrip(
                o,
                d,
                len(idx),
                sum(not weekend(t.weekday) for t in ts),
                sum(weekend(t.weekday) for t in ts),
                float(med),
                float(p10),
                float(p90),
                float(np.median(km)),
                float(np.median([t.duration_s for t in ts])),
                (q[0], q[1], q[2]) if q else None,
                int(e.size),
                ordered[typical].route,
                tuple(float(x) for x in deps),
                tuple(energies),
                tuple(t.weekday for t in ts),
            )
        )
    return sorted(out, key=lambda f: (-f.count, f.origin, f.destination))


def kwh_per_km_median(drives: Sequence[Drive]) -> float | None:
    """The car's median energy per km over drives of at least 1 km with a measured energy."""
    per_km = []
    for d in drives:
        km = d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km
        if d.energy_used_kwh is not None and km >= 1.0:
            per_km.append(d.energy_used_kwh / km)
    return float(np.median(per_km)) if per_km else None
