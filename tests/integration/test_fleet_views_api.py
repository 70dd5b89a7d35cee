"""The fleet page's views over HTTP on SQLite and PostgreSQL: utilisation by hour, the plan per charger,
places with the cars there now and their visits (docs/web.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.charge_points import PointStatus
from microfleet.domain.places import Circle, Place, PlaceKind
from tests.integration.conftest import NOW_MS
from tests.integration.test_history_day import DAY0_MS, HOME, body, day_records
from tests.integration.world import World, bearer, build_world

HOUR_MS = 3_600_000
MODEL = "wuling-hongguang-mini-ev-gen1-14kwh"  # a catalogue model: the planner knows its capacity


@pytest.fixture
def world(services: Services) -> World:
    built = build_world(services)
    report = services.ingest.ingest(
        body(day_records("car-a", DAY0_MS)),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=NOW_MS,
    )
    services.deriver.ingest_landed(report)
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def get(client: TestClient, token: str, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_utilisation_by_hour_follows_the_cars_derived_states(client: TestClient, world: World) -> None:
    hours = get(
        client, world.tokens["olga"], "/api/v1/fleet/utilisation", from_ms=DAY0_MS, to_ms=NOW_MS + 8 * HOUR_MS
    )
    assert len(hours) == 16  # midnight to now (16:00 UTC): the hours still to come are left out
    assert [h["start_ms"] for h in hours] == [DAY0_MS + i * HOUR_MS for i in range(16)]
    assert {h["vehicle_count"] for h in hours} == {1}  # city-share's one car; bob's car-b is not counted
    for h in hours:
        parts = h["driving"] + h["charging"] + h["parked"] + h["asleep"] + h["offline"] + h["unknown"]
        assert parts == pytest.approx(1.0, abs=1e-3)
        assert h["available"] == pytest.approx(h["parked"] + h["asleep"] + h["charging"], abs=1e-3)
        assert h["in_use"] == h["driving"]
    # the car drove twice: its drives' time is the driving time the hours hold
    drives = get(client, world.tokens["olga"], "/api/v1/vehicles/car-a/drives")
    states = get(client, world.tokens["olga"], "/api/v1/vehicles/car-a/states")
    driving_s = sum((s["end_ts_ms"] - s["start_ts_ms"]) / 1000 for s in states if s["status"] == "driving")
    assert len(drives) == 2 and driving_s > 0
    assert sum(h["driving"] * 3600 for h in hours) == pytest.approx(driving_s, abs=5)
    charging_s = sum((s["end_ts_ms"] - s["start_ts_ms"]) / 1000 for s in states if s["status"] == "charging")
    assert sum(h["charging"] * 3600 for h in hours) == pytest.approx(charging_s, abs=5)
    first_drive_hour = (drives[0]["start_ts_ms"] - DAY0_MS) // HOUR_MS
    assert hours[first_drive_hour]["in_use"] > 0
    assert hours[0]["asleep"] > 0.9 and hours[0]["in_use"] == 0  # the quiet night


def test_a_window_opening_inside_a_drive_counts_that_drive_from_the_windows_start(
    client: TestClient, world: World
) -> None:
    """The span under way when the window opens is read too, and cut at the window's start."""
    states = get(client, world.tokens["olga"], "/api/v1/vehicles/car-a/states")
    drive = next(s for s in states if s["status"] == "driving")
    from_ms = drive["start_ts_ms"] + 60_000  # a minute into the drive
    to_ms = from_ms + HOUR_MS
    (hour,) = get(
        client, world.tokens["olga"], "/api/v1/fleet/utilisation", from_ms=from_ms, to_ms=to_ms, bucket_s=3600
    )

    def inside(status: str) -> float:
        return sum(
            max(0, min(s["end_ts_ms"], to_ms) - max(s["start_ts_ms"], from_ms)) / 1000
            for s in states
            if s["status"] == status
        )

    assert inside("driving") > 0
    assert hour["driving"] * 3600 == pytest.approx(inside("driving"), abs=5)
    assert hour["unknown"] == 0.0  # the state under way at from_ms covers the window's first minutes


def test_a_car_with_no_history_is_unknown_and_owners_see_only_theirs(
    client: TestClient, world: World
) -> None:
    hours = get(client, world.tokens["bob"], "/api/v1/fleet/utilisation", from_ms=DAY0_MS, to_ms=NOW_MS)
    assert {h["vehicle_count"] for h in hours} == {1}  # bob's car-b, which never sent anything
    assert {h["unknown"] for h in hours} == {1.0}
    ann = get(client, world.tokens["ann"], "/api/v1/fleet/utilisation", from_ms=DAY0_MS, to_ms=NOW_MS)
    olga = get(client, world.tokens["olga"], "/api/v1/fleet/utilisation", from_ms=DAY0_MS, to_ms=NOW_MS)
    assert ann == olga  # ann's one car is city-share's one car
    other = get(
        client,
        world.tokens["olga"],
        "/api/v1/fleet/utilisation",
        from_ms=DAY0_MS,
        to_ms=NOW_MS,
        fleet_id="bus-co",
    )
    assert {h["vehicle_count"] for h in other} == {0}  # asking for another fleet by name gives none of it


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"from_ms": DAY0_MS, "to_ms": DAY0_MS}, "must be after"),
        ({"from_ms": 0, "to_ms": NOW_MS, "bucket_s": 300}, "at most 2000 buckets"),
        ({"from_ms": DAY0_MS, "to_ms": NOW_MS, "bucket_s": 10}, "bucket_s"),
    ],
)
def test_utilisation_refuses_a_window_it_cannot_chart(
    client: TestClient, world: World, params: dict[str, int], says: str
) -> None:
    response = client.get("/api/v1/fleet/utilisation", params=params, headers=bearer(world.tokens["olga"]))
    assert response.status_code == 422 and says in response.text


def _depot_with_a_car_plugged_in(client: TestClient, services: Services, world: World) -> None:
    """city-share gets car-m (a catalogue model at 20 %, booked in 3 h) plugged into cp-1 connector 1."""
    services.admin.add_vehicle("car-m", name="Plugged Mini", model_id=MODEL, fleet_id="city-share")
    record = json.dumps([{"vehicle_id": "car-m", "ts_ms": NOW_MS - 60_000, "soc_pct": 20.0}]).encode()
    services.ingest.ingest(
        record, "application/json", credential_vehicle_id="car-m", source="t", now_ms=NOW_MS
    )
    services.bookings.create("car-m", "dan", NOW_MS + 3 * HOUR_MS, NOW_MS + 5 * HOUR_MS)
    olga = {"Authorization": f"Bearer {world.tokens['olga']}"}
    site = {"site_id": "depot-1", "name": "North depot", "power_limit_kw": 22.0}
    assert client.post("/api/v1/fleets/city-share/charging-sites", json=site, headers=olga).status_code == 201
    point = {"charge_point_id": "cp-1", "max_kw": 11.0, "connectors": 2}
    response = client.post("/api/v1/charging-sites/depot-1/charge-points", json=point, headers=olga)
    assert response.status_code == 201
    services.charge_points.status("cp-1", PointStatus.CHARGING)
    services.charge_points.started("cp-1", 1, "car-m", 0)


def test_the_plan_per_charger_puts_each_cars_kw_on_its_connector(
    client: TestClient, world: World, services: Services
) -> None:
    _depot_with_a_car_plugged_in(client, services, world)
    # the server's charging worker re-plans on the arrival too: read the plan and its view of one round
    deadline = time.monotonic() + 30
    while True:
        plan = get(client, world.tokens["olga"], "/api/v1/fleets/city-share/charging-plan")
        view = get(client, world.tokens["olga"], "/api/v1/fleets/city-share/charging-plan/chargers")
        if view["plan_id"] == plan["plan_id"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (view["plan_id"], view["start_ms"], view["slot_s"]) == (plan["plan_id"], plan["start_ms"], 900)
    (site,) = view["sites"]
    assert (site["site_id"], site["name"], site["power_limit_kw"]) == ("depot-1", "North depot", 22.0)
    assert site["planned_peak_kw"] == plan["peak_kw_by_site"]["depot-1"]
    one, two = site["connectors"]
    assert (one["charge_point_id"], one["connector_id"], one["vehicle_id"]) == ("cp-1", 1, "car-m")
    assert (two["connector_id"], two["vehicle_id"]) == (2, None) and not any(two["power_kw"])
    planned = next(c["power_kw"] for c in plan["cars"] if c["vehicle_id"] == "car-m")
    assert one["power_kw"] == planned and sum(planned) > 0  # booked in 3 h at 20 %: it charges
    assert site["total_kw"] == pytest.approx(planned)
    assert max(site["total_kw"]) <= site["power_limit_kw"] + 1e-6
    assert view["unplaced"] == {}


def test_the_plan_per_charger_is_the_fleet_operators(client: TestClient, world: World) -> None:
    path = "/api/v1/fleets/city-share/charging-plan/chargers"
    for caller in ("ann", "bob", "dan"):
        assert client.get(path, headers=bearer(world.tokens[caller])).status_code == 403
    # a fleet without a site has no plan: 404 with the sentence the page shows
    response = client.get(path, headers=bearer(world.tokens["olga"]))
    assert response.status_code == 404 and "no charging site" in response.json()["message"]


def test_places_list_the_cars_there_now_and_their_visits(
    client: TestClient, world: World, services: Services
) -> None:
    home = Place("pl-home", "Home street", PlaceKind.HOME, Circle(HOME[0], HOME[1], 200))
    for vehicle_id in services.places.add(home, fleet_id="city-share"):
        services.deriver.rederive(vehicle_id)  # its drives and charges now name the place
    rows = get(
        client,
        world.tokens["olga"],
        "/api/v1/fleet/places",
        from_ms=DAY0_MS,
        to_ms=NOW_MS,
        fleet_id="city-share",
    )
    assert [r["name"] for r in rows] == ["Home street", "outside every place"]
    place, outside = rows
    assert (place["place_id"], place["kind"], place["scope"]) == ("pl-home", "home", "fleet")
    assert (place["lat_deg"], place["lon_deg"]) == HOME
    drives = get(client, world.tokens["olga"], "/api/v1/vehicles/car-a/drives")
    charges = get(client, world.tokens["olga"], "/api/v1/vehicles/car-a/charges")
    # every drive arrives and leaves somewhere, every charge happens somewhere: the rows add up
    assert sum(r["arrivals"] for r in rows) == len(drives) == sum(r["departures"] for r in rows)
    assert sum(r["charges"] for r in rows) == len(charges)
    at_home = [d for d in drives if d["end_place_id"] == "pl-home"]
    assert place["arrivals"] == len(at_home)
    last = get(client, world.tokens["olga"], "/api/v1/fleet/latest", signals="lat_deg,lon_deg")
    (car,) = last
    where = (car["latest"]["signals"]["lat_deg"]["value"], car["latest"]["signals"]["lon_deg"]["value"])
    inside = Circle(HOME[0], HOME[1], 200).contains(*where)
    assert (place["cars_now"], outside["cars_now"]) == ((["car-a"], []) if inside else ([], ["car-a"]))
    # bob sees neither city-share's place nor its car
    bobs = get(client, world.tokens["bob"], "/api/v1/fleet/places", from_ms=DAY0_MS, to_ms=NOW_MS)
    assert [r["name"] for r in bobs] == ["outside every place"]
    assert bobs[0]["cars_now"] == [] and bobs[0]["arrivals"] == 0
