"""Places API on SQLite and PostgreSQL: tariffs re-cost charges, suggestions, enter/exit events, zones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.derivation import CONTEXT_CHANGED_MS
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.telemetry import TelemetryRecord
from tests.integration.test_history_day import DAY0_MS, HOME, body, day_records
from tests.integration.world import World, bearer, build_world

WORK = (HOME[0] + 240 * 50 / 111_195, HOME[1])  # where the day's outbound drive ends and the car charges
DAYS = 3


def days_of(vehicle_id: str, n: int) -> list[TelemetryRecord]:
    """``n`` copies of the test day, one a day, the odometer carried on."""
    out = []
    for k in range(n):
        for r in day_records(vehicle_id, DAY0_MS + k * 86_400_000):
            odo = r.odometer_km + 24.0 * k if r.odometer_km is not None else None
            out.append(msgspec.structs.replace(r, odometer_km=odo))
    return out


@pytest.fixture
def world(services: Services) -> World:
    built = build_world(services)
    report = services.ingest.ingest(
        body(days_of("car-a", DAYS)),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=DAY0_MS + DAYS * 86_400_000,
    )
    services.deriver.ingest_landed(report)
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def circle(lat_lon: tuple[float, float], radius_m: float = 150) -> dict[str, Any]:
    return {"type": "circle", "lat_deg": lat_lon[0], "lon_deg": lat_lon[1], "radius_m": radius_m}


def create(client: TestClient, token: str, **place: Any) -> str:
    response = client.post("/api/v1/places", json={"name": "A place", **place}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["place_id"])


def charges(client: TestClient, token: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/vehicles/car-a/charges", headers=bearer(token))
    assert response.status_code == 200
    return list(response.json())


def test_a_place_with_a_tariff_costs_the_charges_there(
    client: TestClient, world: World, services: Services
) -> None:
    ann = world.tokens["ann"]
    assert [c["cost"] for c in charges(client, ann)] == [None] * DAYS
    place_id = create(
        client,
        ann,
        geometry=circle(WORK),
        kind="charger",
        tariff_id="cn_sh_residential_tou",
        vehicle_id="car-a",
    )
    assert services.derivations.pending() == 1  # car-a only: car-b has no telemetry to re-derive
    services.derivations.run_pending()
    costed = charges(client, ann)
    assert {c["place_id"] for c in costed} == {place_id}
    assert all(c["cost"] > 0 and c["currency"] == "CNY" for c in costed)
    assert all(c["tariff_id"] == "cn_sh_residential_tou" for c in costed)
    drives = client.get("/api/v1/vehicles/car-a/drives", headers=bearer(ann)).json()
    assert [d["end_place_id"] for d in drives] == [place_id, None] * DAYS

    assert client.delete(f"/api/v1/places/{place_id}", headers=bearer(ann)).status_code == 204
    services.derivations.run_pending()
    assert [(c["place_id"], c["cost"]) for c in charges(client, ann)] == [(None, None)] * DAYS


def test_suggested_places_come_from_stops_and_can_be_created_as_they_are(
    client: TestClient, world: World
) -> None:
    ann = bearer(world.tokens["ann"])
    suggested = client.get("/api/v1/vehicles/car-a/places/suggested", headers=ann).json()
    assert [s["visits"] for s in suggested] == [DAYS, DAYS]
    work = min(suggested, key=lambda s: abs(s["lat_deg"] - WORK[0]))
    assert work["lat_deg"] == pytest.approx(WORK[0], abs=1e-4)
    geometry = {"type": "circle", **{k: work[k] for k in ("lat_deg", "lon_deg", "radius_m")}}
    create(client, world.tokens["ann"], name="Work", kind="work", geometry=geometry, vehicle_id="car-a")
    (left,) = client.get("/api/v1/vehicles/car-a/places/suggested", headers=ann).json()
    assert left["lat_deg"] == pytest.approx(HOME[0], abs=1e-4)
    fewer = client.get("/api/v1/vehicles/car-a/places/suggested?min_visits=4", headers=ann).json()
    assert fewer == []


def test_enter_and_exit_events_of_a_day_and_their_pages(client: TestClient, world: World) -> None:
    home = create(client, world.tokens["ann"], name="Home", geometry=circle(HOME, 100), vehicle_id="car-a")
    depot = create(
        client, world.tokens["olga"], name="Depot", geometry=circle(WORK, 100), fleet_id="city-share"
    )
    window = {"from_ms": DAY0_MS, "to_ms": DAY0_MS + 86_400_000}
    ann = bearer(world.tokens["ann"])
    whole = client.get("/api/v1/vehicles/car-a/place-events", params=window, headers=ann).json()
    assert whole["inside_at_start"] == [home]
    assert [(e["event"], e["place_name"]) for e in whole["events"]] == [
        ("exited", "Home"), ("entered", "Depot"), ("exited", "Depot"), ("entered", "Home")
    ]  # fmt: skip
    assert [e["place_id"] for e in whole["events"]] == [home, depot, depot, home]
    assert whole["next_from_ms"] is None
    assert DAY0_MS + 8 * 3_600_000 <= whole["events"][0]["ts_ms"] <= DAY0_MS + 8 * 3_600_000 + 30_000

    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {**window, "limit": 50}
    for _ in range(100):
        page = client.get("/api/v1/vehicles/car-a/place-events", params=params, headers=ann).json()
        paged += page["events"]
        if page["next_from_ms"] is None:
            break
        params["from_ms"] = page["next_from_ms"]
    assert paged == whole["events"]


def test_fleet_summary_per_zone(client: TestClient, world: World, services: Services) -> None:
    olga = bearer(world.tokens["olga"])
    unzoned = client.get("/api/v1/fleet/summary/zones?tz=Asia/Shanghai", headers=olga).json()
    assert [(z["zone_place_id"], z["zone_name"], z["drive_count"]) for z in unzoned] == [
        (None, "unzoned", 2)
    ] * DAYS

    home = create(client, world.tokens["ann"], name="Home", geometry=circle(HOME), vehicle_id="car-a")
    depot = create(
        client,
        world.tokens["olga"],
        name="Depot",
        kind="depot",
        geometry=circle(WORK),
        fleet_id="city-share",
        tariff_id="cn_bj_public_ev_charging_2016",
    )
    services.derivations.run_pending()
    zones = client.get("/api/v1/fleet/summary/zones?tz=Asia/Shanghai", headers=olga).json()
    assert [(z["zone_name"], z["drive_count"], z["charge_count"]) for z in zones] == [
        ("Depot", 1, 1), ("Home", 1, 0)
    ] * DAYS  # fmt: skip
    assert {z["zone_place_id"] for z in zones} == {home, depot}
    whole = client.get("/api/v1/fleet/summary?tz=Asia/Shanghai", headers=olga).json()
    for day in whole:
        parts = [z for z in zones if z["period_start"] == day["period_start"]]
        assert sum(z["distance_km"] for z in parts) == pytest.approx(day["distance_km"])
        assert sum(z["cost"] for z in parts) == pytest.approx(day["cost"]) and day["cost"] > 0
    assert client.get("/api/v1/fleet/summary/zones", headers=bearer(world.tokens["bob"])).json() == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"geometry": circle(HOME, 5)}, "radius_m"),
        ({"geometry": {"type": "circle", "lat_deg": 91, "lon_deg": 0, "radius_m": 100}}, "lat_deg"),
        ({"geometry": {"type": "polygon", "vertices_lat_lon_deg": [[0, 0], [0, 1]]}}, "at least 3"),
        ({"geometry": {"type": "polygon", "vertices_lat_lon_deg": [[0, 0], [0, 1], [0, 2]]}}, "no area"),
        ({"geometry": {"type": "square"}}, "geometry"),
        ({"tariff_id": "free-power"}, "cn_sh_residential_tou"),
        ({"fleet_id": "city-share"}, "exactly one"),
        ({"vehicle_id": None}, "exactly one"),
        ({"name": "   "}, "blank"),
        ({"name": "Ho\x00me"}, "printable"),  # PostgreSQL text holds no NUL: refused before the store
        ({"vehicle_id": None, "fleet_id": "city\x00share"}, "printable"),
        ({"kind": "discovered"}, "kind"),
    ],
)
def test_a_bad_place_is_refused_with_its_reason(
    client: TestClient, world: World, change: dict[str, Any], complaint: str
) -> None:
    place = {"name": "Home", "geometry": circle(HOME), "vehicle_id": "car-a", **change}
    response = client.post("/api/v1/places", json=place, headers=bearer(world.tokens["root"]))
    assert response.status_code == 422
    assert complaint in response.json()["message"]


def test_polygons_scopes_and_listing(client: TestClient, world: World, services: Services) -> None:
    square = [[31.0, 121.0], [31.0, 121.1], [31.1, 121.1], [31.1, 121.0]]
    ann = world.tokens["ann"]
    created = client.post(
        "/api/v1/places",
        json={
            "name": "District",
            "geometry": {"type": "polygon", "vertices_lat_lon_deg": square},
            "vehicle_id": "car-a",
        },
        headers=bearer(ann),
    ).json()
    assert created["geometry"]["vertices_lat_lon_deg"] == square
    assert created["scope"] == "vehicle"
    other_fleet = {"name": "X", "geometry": circle(HOME), "fleet_id": "other-fleet"}
    olga, root = bearer(world.tokens["olga"]), bearer(world.tokens["root"])
    assert client.post("/api/v1/places", json=other_fleet, headers=olga).status_code == 403
    assert client.post("/api/v1/places", json=other_fleet, headers=root).status_code == 404
    listed = client.get("/api/v1/places?vehicle_id=car-a", headers=bearer(ann)).json()
    assert [p["place_id"] for p in listed] == [created["place_id"]]
    assert client.get("/api/v1/places?vehicle_id=car-b", headers=bearer(ann)).status_code == 404
    assert client.delete("/api/v1/places/pl-unknown", headers=root).status_code == 404
    assert client.delete("/api/v1/places/pl%00x", headers=root).status_code == 422
    for path in ("", "/drives", "/places/suggested", "/place-events?from_ms=0&to_ms=1"):
        assert client.get(f"/api/v1/vehicles/car%00a{path}", headers=root).status_code == 422, path


def test_a_place_marks_only_the_cars_it_applies_to_stale(services: Services, world: World) -> None:
    services.telemetry.claim_stale(1000)
    services.admin.add_vehicle("car-c", fleet_id="city-share")
    services.ingest.ingest(
        body(day_records("car-c")[:5]),
        "application/json",
        credential_vehicle_id="car-c",
        source="t",
        now_ms=DAY0_MS,
    )
    services.telemetry.claim_stale(1000)
    fence = Circle(*HOME, 100)
    assert services.places.put(Place("p1", "Home", PlaceKind.HOME, fence), vehicle_id="car-a") == ["car-a"]
    assert services.places.put(Place("p2", "Depot", PlaceKind.DEPOT, fence), fleet_id="city-share") == [
        "car-a",
        "car-c",
    ]
    assert services.places.put(Place("p3", "City", PlaceKind.OTHER, fence)) == ["car-a", "car-c"]
    # a whole re-derivation: the places changed, not the records
    assert services.telemetry.claim_stale(1000) == {"car-a": CONTEXT_CHANGED_MS, "car-c": CONTEXT_CHANGED_MS}
    # Moving a place from one car to the fleet re-derives both scopes' cars.
    assert services.places.put(Place("p1", "Home", PlaceKind.HOME, fence), fleet_id="city-share") == [
        "car-a",
        "car-c",
    ]
    assert services.places.delete("p2") == ["car-a", "car-c"]
    assert [p.place_id for p in services.places.applying_to("car-c")] == ["p1", "p3"]
