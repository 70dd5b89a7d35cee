"""What route learning tells an owner: routine trips with their energy, insights, and the next trips.

Built on :mod:`microfleet.intelligence.trips`. Energy per trip is the P10/P50/P90 of that trip's own
drives where it has at least three with a measured energy; otherwise the car's median kWh/km over its
drives times the trip's usual distance (``energy_basis`` says which). A car with fewer than
:data:`~microfleet.intelligence.trips.MIN_DRIVES` drives gets ``needs_more_drives`` and how many.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

import numpy as np

from microfleet.domain.drives import Drive
from microfleet.domain.places import Place
from microfleet.intelligence.trips import (
    MIN_DRIVES,
    UNKNOWN,
    FrequentTrip,
    KernelModel,
    LearnedPlace,
    PlaceIndex,
    Query,
    Transition,
    frequent_trips,
    learn_places,
    local_time,
    minute_of_day,
    predict_departure,
    transitions,
    weekend,
)

# Energy kept in hand on arrival of the last predicted trip: Microfleet's choice, about the 10 % at which
# small city EVs such as the Wuling Mini EV warn of low charge (owner's manual, low-SoC warning).
RESERVE_PCT: Final = 10.0
# An insight is worth telling when the two halves of a trip's departures differ by at least this much in
# median energy, each half with at least INSIGHT_MIN_DRIVES drives: Microfleet's choice (a 5 % difference
# is ~0.05 kWh on a 1 kWh commute, above the counters' 0.01 kWh resolution).
INSIGHT_MIN_SHARE: Final = 0.05
INSIGHT_MIN_DRIVES: Final = 3
FORECAST_TRIPS: Final = 4  # the next trips chained from where the car is, at most
# A trip's own drives give its energy band once there are this many (P10/P90 of fewer is mostly noise: with
# 8 samples the empirical P10 is the first order statistic); before that the per-car model's, if given.
OWN_ENERGY_MIN: Final = 8
WEEKDAY_NAMES: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
Status = Literal["ok", "needs_more_drives"]


@dataclass(frozen=True, slots=True)
class TripEnergy:
    """A trip's energy P10/P50/P90 in kWh and what it was estimated from."""

    p10_kwh: float
    p50_kwh: float
    p90_kwh: float
    basis: str  # "this trip's drives" or "per-car kWh/km median x usual distance"


@dataclass(frozen=True, slots=True)
class Insight:
    """A plain-words finding from the car's own drives, with the figures it rests on."""

    origin: str
    destination: str
    text: str
    day: str  # a weekday name, "weekdays" or "weekends"
    early_departure_min: float
    late_departure_min: float
    extra_share: float  # the later departures' median energy over the earlier ones', minus 1
    early_drives: int
    late_drives: int


@dataclass(frozen=True, slots=True)
class RouteBook:
    """What a car's drives teach: its places, routine trips, their energy, and insights."""

    status: Status
    drives: int
    drives_needed: int
    newest_drive_ts_ms: int | None  # the start of the newest drive learned from
    places: tuple[LearnedPlace, ...]
    trips: tuple[tuple[FrequentTrip, TripEnergy | None], ...]
    insights: tuple[Insight, ...]
    kwh_per_km: tuple[float, float, float] | None  # P10, P50, P90 over drives of 1 km or more


def _per_km(drives: Sequence[Drive]) -> tuple[float, float, float] | None:
    vals = []
    for d in drives:
        km = d.distance_odometer_km if d.distance_odometer_km is not None else d.distance_gps_km
        if d.energy_used_kwh is not None and km >= 1.0:
            vals.append(d.energy_used_kwh / km)
    if len(vals) < 3:
        return None
    p10, p50, p90 = np.percentile(vals, [10, 50, 90])
    return float(p10), float(p50), float(p90)


# A per-car trip energy model as route learning uses it: (km, duration s, local departure hour, weekend)
# -> P10/P50/P90 kWh, or None where it cannot say (services/routes.py builds it from trip_energy).
TripEnergyFn = Callable[[float, float, float, bool], TripEnergy | None]


def trip_energy(
    trip: FrequentTrip, per_km: tuple[float, float, float] | None, model: TripEnergyFn | None = None
) -> TripEnergy | None:
    """The trip's energy band: its own drives' (8+), the per-car model's, its own (3+), else kWh/km x km."""
    if trip.energy_kwh is not None and trip.energy_samples >= OWN_ENERGY_MIN:
        return TripEnergy(*trip.energy_kwh, basis="this trip's drives")
    if model is not None:
        weekend_trip = trip.weekend_count > trip.weekday_count
        modelled = model(
            trip.distance_km_median, trip.duration_s_median, trip.departure_median_min / 60, weekend_trip
        )
        if modelled is not None:
            return modelled
    if trip.energy_kwh is not None:
        return TripEnergy(*trip.energy_kwh, basis="this trip's drives")
    if per_km is None:
        return None
    km = trip.distance_km_median
    return TripEnergy(
        per_km[0] * km, per_km[1] * km, per_km[2] * km, "per-car kWh/km median x usual distance"
    )


def _clock(minutes: float) -> str:
    m = round(minutes) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def insights(trip: FrequentTrip, names: dict[str, str]) -> list[Insight]:
    """Does leaving later cost more? The trip's drives split at the median departure, per day.

    Compared per weekday where a weekday has enough drives on both sides, else per day type.
    """
    out = []
    groups: list[tuple[str, list[int]]] = []
    for wd in range(7):
        groups.append((WEEKDAY_NAMES[wd], [i for i, w in enumerate(trip.weekdays) if w == wd]))
    groups.append(("weekdays", [i for i, w in enumerate(trip.weekdays) if not weekend(w)]))
    groups.append(("weekends", [i for i, w in enumerate(trip.weekdays) if weekend(w)]))
    told_weekday = False
    for day, idx in groups:
        if day == "weekdays" and told_weekday:
            continue
        pairs = [
            (trip.departures_min[i], trip.energies_kwh[i]) for i in idx if trip.energies_kwh[i] is not None
        ]
        if len(pairs) < 2 * INSIGHT_MIN_DRIVES:
            continue
        pairs.sort()
        half = len(pairs) // 2
        early, late = pairs[:half], pairs[half:]
        e_early = float(np.median([e for _, e in early if e is not None]))
        e_late = float(np.median([e for _, e in late if e is not None]))
        if e_early <= 0:
            continue
        extra = e_late / e_early - 1
        if abs(extra) < INSIGHT_MIN_SHARE:
            continue
        t_early = float(np.median([m for m, _ in early]))
        t_late = float(np.median([m for m, _ in late]))
        o, d = names.get(trip.origin, trip.origin), names.get(trip.destination, trip.destination)
        more = "more" if extra > 0 else "less"
        when = {"weekdays": "weekday", "weekends": "weekend"}.get(day, day) + " trip"
        text = (
            f"your {when} {o} → {d} uses {abs(extra) * 100:.0f} % {more} at {_clock(t_late)} than at "
            f"{_clock(t_early)} ({len(late)} and {len(early)} drives)"
        )
        out.append(
            Insight(trip.origin, trip.destination, text, day, t_early, t_late, extra, len(early), len(late))
        )
        told_weekday = told_weekday or day in WEEKDAY_NAMES[:5]
    return out


def learn_routes(
    drives: Sequence[Drive], stored: Sequence[Place], tz: ZoneInfo, energy_model: TripEnergyFn | None = None
) -> RouteBook:
    """A car's places, routine trips with their energy, and insights (needs :data:`MIN_DRIVES` drives)."""
    if len(drives) < MIN_DRIVES:
        return RouteBook(
            "needs_more_drives", len(drives), MIN_DRIVES - len(drives), _newest(drives), (), (), (), None
        )
    places = learn_places(drives, stored)
    index = PlaceIndex.of(places)
    history = transitions(drives, index, tz)
    per_km = _per_km(drives)
    trips = frequent_trips(history, drives)
    names = {p.place_id: p.name or p.place_id for p in places}
    found = [i for t in trips for i in insights(t, names)]
    return RouteBook(
        "ok",
        len(drives),
        0,
        _newest(drives),
        tuple(places),
        tuple((t, trip_energy(t, per_km, energy_model)) for t in trips),
        tuple(found),
        per_km,
    )


@dataclass(frozen=True, slots=True)
class PredictedTrip:
    """One predicted next trip: where to, how likely, when it leaves, what it will use."""

    origin: str | None
    destination: str  # a place id, or "unknown"
    probability: float
    alternatives: tuple[tuple[str, float], ...]  # the next most likely destinations (and "unknown")
    depart_ts_ms: int
    depart_p10_ts_ms: int
    depart_p90_ts_ms: int
    energy: TripEnergy | None


@dataclass(frozen=True, slots=True)
class Forecast:
    """The car's next trips from now, and the state of charge they need by the first departure."""

    status: Status
    drives: int
    drives_needed: int
    newest_drive_ts_ms: int | None  # the start of the newest drive learned from
    at_ts_ms: int
    current_place: str | None
    trips: tuple[PredictedTrip, ...]
    energy_p50_kwh: float | None
    energy_p90_kwh: float | None
    usable_kwh: float | None
    soc_needed_pct: float | None  # P90 energy of the chain plus the reserve, as % of usable capacity
    reserve_pct: float


def _next_departure(
    history: Sequence[Transition], origin: str | None, after: dt.datetime, tz: ZoneInfo
) -> tuple[dt.datetime, float, float] | None:
    """The likely next departure from ``origin`` after ``after``: today or one of the next 7 days."""
    for offset in range(8):
        day = (after + dt.timedelta(days=offset)).date()
        wd = day.weekday()
        times = [t.depart_min for t in history if t.origin == origin and weekend(t.weekday) == weekend(wd)]
        if offset == 0:
            times = [m for m in times if m >= minute_of_day(after)]
        # departures are per day: one past day gives at most a few; a routine needs a repeat
        if len(times) >= 2:
            p10, med, p90 = np.percentile(times, [10, 50, 90])
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
            return midnight + dt.timedelta(minutes=float(med)), float(p10), float(p90)
    return None


def forecast(
    drives: Sequence[Drive],
    stored: Sequence[Place],
    tz: ZoneInfo,
    now_ms: int,
    usable_kwh: float | None,
    energy_model: TripEnergyFn | None = None,
) -> Forecast:
    """The next trips chained from where the car is now, with energy and the SoC needed by departure."""
    if len(drives) < MIN_DRIVES:
        return _empty_forecast(drives, now_ms, usable_kwh)
    book = learn_routes(drives, stored, tz, energy_model)
    index = PlaceIndex.of(book.places)
    history = transitions(drives, index, tz)
    model = KernelModel().fit(history)
    energy: dict[tuple[str | None, str], TripEnergy | None] = {
        (t.origin, t.destination): e for t, e in book.trips
    }
    durations: dict[tuple[str | None, str], float] = {
        (t.origin, t.destination): t.duration_s_median for t, _ in book.trips
    }
    last = max(drives, key=lambda d: d.start_ts_ms)
    here = here_now = index.locate(last.end_lat_deg, last.end_lon_deg)
    previous = history[-1].origin if history else None
    at = max(local_time(now_ms, tz), local_time(last.end_ts_ms, tz))
    today = sum(local_time(d.start_ts_ms, tz).date() == at.date() for d in drives)
    out: list[PredictedTrip] = []
    while len(out) < FORECAST_TRIPS:
        nxt = _next_departure(history, here, at, tz)
        if nxt is None:
            break
        depart, p10, p90 = nxt
        if out and depart - local_time(out[0].depart_ts_ms, tz) > dt.timedelta(hours=24):
            break
        probs = model.predict(Query(here, minute_of_day(depart), depart.weekday(), previous, today))
        dest, p = max(probs.items(), key=lambda kv: kv[1])
        known = [(k, v) for k, v in probs.items() if k != dest][:3]
        when = predict_departure(history, here, dest, depart.weekday()) if here and dest != UNKNOWN else None
        if when is not None and (depart.date() != at.date() or when.median_min >= minute_of_day(at)):
            midnight = dt.datetime.combine(depart.date(), dt.time(0), tzinfo=tz)
            depart = midnight + dt.timedelta(minutes=when.median_min)
            p10, p90 = when.p10_min, when.p90_min
        midnight_ms = int(dt.datetime.combine(depart.date(), dt.time(0), tzinfo=tz).timestamp() * 1000)
        out.append(
            PredictedTrip(
                here, dest, p, tuple(known), int(depart.timestamp() * 1000),
                midnight_ms + round(min(p10, minute_of_day(depart)) * 60_000),
                midnight_ms + round(max(p90, minute_of_day(depart)) * 60_000),
                energy.get((here, dest)) or _by_distance(history, here, dest, book.kwh_per_km, energy_model),
            )
        )  # fmt: skip
        if dest == UNKNOWN:
            break
        arrive = depart + dt.timedelta(seconds=durations.get((here, dest)) or 1800.0)
        previous, here, at = here, dest, arrive
        today = today + 1 if arrive.date() == depart.date() else 0
    e50 = [t.energy.p50_kwh for t in out if t.energy is not None]
    e90 = [t.energy.p90_kwh for t in out if t.energy is not None]
    sum50 = float(sum(e50)) if out and len(e50) == len(out) else None
    sum90 = float(sum(e90)) if out and len(e90) == len(out) else None
    soc = None
    if sum90 is not None and usable_kwh:
        soc = min(100.0, sum90 / usable_kwh * 100 + RESERVE_PCT)
    return Forecast(
        status="ok",
        drives=len(drives),
        drives_needed=0,
        newest_drive_ts_ms=_newest(drives),
        at_ts_ms=now_ms,
        current_place=here_now,
        trips=tuple(out),
        energy_p50_kwh=sum50,
        energy_p90_kwh=sum90,
        usable_kwh=usable_kwh,
        soc_needed_pct=soc,
        reserve_pct=RESERVE_PCT,
    )


def _empty_forecast(drives: Sequence[Drive], now_ms: int, usable_kwh: float | None) -> Forecast:
    """Too few drives to learn from: no trips, and how many more drives are needed."""
    return Forecast(
        status="needs_more_drives",
        drives=len(drives),
        drives_needed=MIN_DRIVES - len(drives),
        newest_drive_ts_ms=_newest(drives),
        at_ts_ms=now_ms,
        current_place=None,
        trips=(),
        energy_p50_kwh=None,
        energy_p90_kwh=None,
        usable_kwh=usable_kwh,
        soc_needed_pct=None,
        reserve_pct=RESERVE_PCT,
    )


def _newest(drives: Sequence[Drive]) -> int | None:
    return max((d.start_ts_ms for d in drives), default=None)


def _by_distance(
    history: Sequence[Transition],
    origin: str | None,
    destination: str,
    per_km: tuple[float, float, float] | None,
    model: TripEnergyFn | None = None,
) -> TripEnergy | None:
    """A trip made too rarely for its own band: the per-car model's, else the kWh/km band x its distance."""
    same = [t for t in history if t.origin == origin and t.place == destination]
    if not same or destination == UNKNOWN:
        return None
    d = float(np.median([t.distance_km for t in same]))
    if model is not None:
        duration = float(np.median([t.duration_s for t in same]))
        hour = float(np.median([t.depart_min for t in same])) / 60
        modelled = model(d, duration, hour, weekend(same[-1].weekday))
        if modelled is not None:
            return modelled
    if per_km is None:
        return None
    return TripEnergy(per_km[0] * d, per_km[1] * d, per_km[2] * d, "per-car kWh/km median x usual distance")
