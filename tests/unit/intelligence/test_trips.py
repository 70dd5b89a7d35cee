"""Route learning on hand-made routines whose answers are known: a commuter, a weekend shopper."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from microfleet.domain.drives import Drive
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.intelligence.trip_forecast import TripEnergy, forecast, learn_routes
from microfleet.intelligence.trips import (
    MIN_DRIVES,
    UNKNOWN,
    FrequencyModel,
    KernelModel,
    PlaceIndex,
    Query,
    learn_places,
    predict_departure,
    ranked_places,
    transitions,
)

TZ = ZoneInfo("Europe/Amsterdam")
HOME = (52.3700, 4.9000)
WORK = (52.3400, 4.8700)  # ~4 km from home
SHOP = (52.3900, 4.9300)
GYM = (52.3550, 4.9500)
MONDAY = dt.date(2026, 3, 2)


def _drive(
    day: dt.date, hh: int, mm: int, a: tuple[float, float], b: tuple[float, float], kwh: float
) -> Drive:
    start = dt.datetime.combine(day, dt.time(hh, mm), tzinfo=TZ)
    ms = int(start.timestamp() * 1000)
    return Drive(
        vehicle_id="car-1", start_ts_ms=ms, end_ts_ms=ms + 1_200_000, end_reason="stopped",
        start_lat_deg=a[0], start_lon_deg=a[1], end_lat_deg=b[0], end_lon_deg=b[1], start_place_id=None,
        end_place_id=None, distance_odometer_km=4.0, distance_gps_km=4.0, duration_s=1200.0,
        energy_used_kwh=kwh, energy_soc_kwh=None, regen_kwh=None, efficiency_wh_per_km=kwh / 4 * 1000,
        max_speed_kmh=50.0, ascent_m=None, descent_m=None, ambient_temp_c=10.0, soc_start_pct=80.0,
        soc_end_pct=76.0, data_gap_s=0.0, record_count=1200, route=(a, b),
    )  # fmt: skip


def commuter(weeks: int = 4, monday: dt.date = MONDAY) -> list[Drive]:
    """Weekdays: home 07:40/08:10 -> work, 17:30 back; Saturdays: home 10:00 -> shop, 12:00 back."""
    out = []
    for w in range(weeks):
        for wd in range(5):
            day = monday + dt.timedelta(days=7 * w + wd)
            early = wd % 2 == 0  # leaves at 07:40 on Mon/Wed/Fri, 08:10 on Tue/Thu
            out.append(
                _drive(day, 7 if early else 8, 40 if early else 10, HOME, WORK, 0.50 if early else 0.60)
            )
            out.append(_drive(day, 17, 30, WORK, HOME, 0.55))
        sat = monday + dt.timedelta(days=7 * w + 5)
        out.append(_drive(sat, 10, 0, HOME, SHOP, 0.40))
        out.append(_drive(sat, 12, 0, SHOP, HOME, 0.40))
    return out


def _index(drives: list[Drive]) -> PlaceIndex:
    return PlaceIndex.of(learn_places(drives))


def test_a_commuter_on_monday_at_eight_goes_to_work() -> None:
    drives = commuter()
    index = _index(drives)
    history = transitions(drives, index, TZ)
    home, work, shop = (index.locate(*p) for p in (HOME, WORK, SHOP))
    assert None not in (home, work, shop) and len({home, work, shop}) == 3
    model = KernelModel().fit(history)
    monday_8 = model.predict(Query(home, 8 * 60, 0, previous=work, trips_today=0))
    assert ranked_places(monday_8, 1) == [work]
    assert monday_8[work] > 0.8
    saturday_10 = model.predict(Query(home, 10 * 60, 5, previous=work, trips_today=0))
    assert ranked_places(saturday_10, 1) == [shop]
    # the frequency baseline knows only where the car is: from home it always says work
    baseline = FrequencyModel().fit(history)
    assert ranked_places(baseline.predict(Query(home, 10 * 60, 5)), 1) == [work]


def test_departure_of_a_routine_trip_is_its_usual_time_after_arrival() -> None:
    drives = commuter()
    index = _index(drives)
    history = transitions(drives, index, TZ)
    home, work = index.locate(*HOME), index.locate(*WORK)
    assert home is not None and work is not None
    leave = predict_departure(history, work, home, weekday=1)
    assert leave is not None and abs(leave.median_min - (17 * 60 + 30)) < 1
    to_work = predict_departure(history, home, work, weekday=1)
    assert to_work is not None and 7 * 60 + 40 <= to_work.median_min <= 8 * 60 + 10
    # never seen leaving after 20:00: no routine to predict from
    assert predict_departure(history, work, home, weekday=1, after_min=20 * 60) is None


def test_a_new_place_is_unknown_not_the_nearest_known_place() -> None:
    drives = commuter()
    index = _index(drives)
    assert index.locate(*GYM) is None  # 1.5 km from anything known
    place, novelty = index.novelty(WORK[0] + 0.0002, WORK[1])  # 22 m from work: a visit of work
    assert place == index.locate(*WORK) and novelty < 0.99
    assert index.locate(WORK[0] + 0.0015, WORK[1]) is None  # 170 m away: another place
    # a first visit is learned as UNKNOWN, so the model gives new places a probability
    drives.append(_drive(MONDAY + dt.timedelta(days=40), 19, 0, HOME, GYM, 0.3))
    history = transitions(drives, _index(drives), TZ)
    assert history[-1].destination == UNKNOWN and history[-1].place is not None
    probs = KernelModel().fit(history).predict(Query(index.locate(*HOME), 19 * 60, 3))
    assert 0 < probs[UNKNOWN] < 1 and abs(sum(probs.values()) - 1) < 1e-9


def test_too_little_history_says_how_many_more_drives() -> None:
    drives = commuter()[: MIN_DRIVES - 5]
    book = learn_routes(drives, (), TZ)
    assert book.status == "needs_more_drives" and book.drives_needed == 5 and not book.trips
    fc = forecast(drives, (), TZ, drives[-1].end_ts_ms, 12.0)
    assert fc.status == "needs_more_drives" and fc.drives_needed == 5 and fc.soc_needed_pct is None


def test_routine_trips_energy_and_the_later_departure_insight() -> None:
    stored = [Place("pl-home", "Home", PlaceKind.HOME, Circle(*HOME, 100.0))]
    drives = [
        Drive(**{**_as_dict(d), "end_place_id": "pl-home" if d.end_lat_deg == HOME[0] else None})
        for d in commuter(weeks=6)
    ]
    book = learn_routes(drives, stored, TZ)
    assert book.status == "ok"
    by_pair = {(t.origin, t.destination): (t, e) for t, e in book.trips}
    work = next(p.place_id for p in book.places if p.name is None and abs(p.lat_deg - WORK[0]) < 1e-3)
    trip, energy = by_pair[("pl-home", work)]
    assert trip.count == 30 and trip.weekday_count == 30
    assert energy is not None and energy.basis == "this trip's drives"
    assert energy.p10_kwh == 0.5 and energy.p90_kwh == 0.6
    # 08:10 departures (0.60 kWh) against 07:40 (0.50 kWh): 20 % more, said in words
    said = [i for i in book.insights if i.origin == "pl-home" and i.destination == work]
    assert said and abs(said[0].extra_share - 0.2) < 1e-9
    assert "20 % more at 08:10 than at 07:40" in said[0].text and "Home" in said[0].text


def test_morning_forecast_needs_the_commutes_energy() -> None:
    drives = commuter(weeks=4)
    friday_evening = drives[-3]  # Friday 17:30 work -> home of the last week
    drives = [d for d in drives if d.start_ts_ms <= friday_evening.start_ts_ms]
    # Sunday night: the next trip is Monday's commute, then the way home
    now = int(dt.datetime.combine(MONDAY + dt.timedelta(days=27), dt.time(22), tzinfo=TZ).timestamp() * 1000)
    fc = forecast(drives, (), TZ, now, 10.0)
    assert fc.status == "ok" and len(fc.trips) >= 2
    first = fc.trips[0]
    depart = dt.datetime.fromtimestamp(first.depart_ts_ms / 1000, TZ)
    assert depart.date() == MONDAY + dt.timedelta(days=28) and 7 <= depart.hour <= 8
    assert first.destination == _index(drives).locate(*WORK) and first.probability > 0.5
    assert fc.energy_p90_kwh is not None and fc.soc_needed_pct is not None
    assert abs(fc.soc_needed_pct - (fc.energy_p90_kwh / 10.0 * 100 + fc.reserve_pct)) < 1e-9


def _as_dict(d: Drive) -> dict[str, object]:
    return {f: getattr(d, f) for f in Drive.__dataclass_fields__}


def test_a_car_without_positions_learns_no_places_and_forecasts_unknown() -> None:
    blind = [
        Drive(
            **{
                **_as_dict(d),
                "start_lat_deg": None,
                "start_lon_deg": None,
                "end_lat_deg": None,
                "end_lon_deg": None,
            }
        )
        for d in commuter()
    ]
    book = learn_routes(blind, (), TZ)
    assert book.status == "ok" and book.places == () and book.trips == ()
    fc = forecast(blind, (), TZ, blind[-1].end_ts_ms, 12.0)
    assert fc.current_place is None
    assert all(t.destination == UNKNOWN for t in fc.trips) and fc.soc_needed_pct is None


def test_a_rare_trip_takes_the_per_car_models_energy_a_frequent_one_its_own() -> None:
    asked: list[tuple[float, float, float, bool]] = []

    def model(km: float, duration_s: float, hour: float, weekend_trip: bool) -> TripEnergy:
        asked.append((km, duration_s, hour, weekend_trip))
        return TripEnergy(0.3, 0.35, 0.45, "per-car trip energy model")

    book = learn_routes(commuter(weeks=4), (), TZ, model)
    bases = {(t.weekday_count, t.weekend_count): e.basis for t, e in book.trips if e is not None}
    assert bases == {(20, 0): "this trip's drives", (0, 4): "per-car trip energy model"}
    assert sorted(asked) == [(4.0, 1200.0, 10.0, True), (4.0, 1200.0, 12.0, True)]


def test_a_stop_the_derivation_put_in_a_stored_place_is_that_place() -> None:
    stored = [Place("pl-office", "Office", PlaceKind.WORK, Circle(*WORK, 300.0))]
    far_corner = (WORK[0] + 0.0022, WORK[1])  # 245 m from the centre, inside the 300 m geofence
    drives = [
        Drive(
            **{
                **_as_dict(d),
                "end_lat_deg": far_corner[0] if i == 0 else d.end_lat_deg,
                "end_place_id": "pl-office" if d.end_lat_deg == WORK[0] else None,
            }
        )
        for i, d in enumerate(commuter())
    ]
    index = PlaceIndex.of(learn_places(drives, stored))
    assert index.locate(*far_corner) is None  # by distance alone it would be a new place
    history = transitions(drives, index, TZ)
    assert history[0].place == "pl-office" and history[0].destination == UNKNOWN  # its first visit
    assert history[2].destination == "pl-office"
