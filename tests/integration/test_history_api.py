"""History API on SQLite and PostgreSQL: drives, charges, states, summaries, exports, access rules."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from microfleet.api import create_app
from microfleet.api.routes import history
from microfleet.bootstrap import Services
from microfleet.cli.tables import charges_table, drives_table
from microfleet.domain.summaries import GRID_G_PER_KWH, PETROL_CITY_CAR_G_PER_KM
from microfleet.services.derivation import HistoryDeriver
from microfleet.store.history import HistoryStore
from tests.integration.test_history_day import DAY0_MS, body, day_records
from tests.integration.world import World, bearer, build_world


@pytest.fixture
def world(services: Services) -> World:
    built = build_world(services)
    report = services.ingest.ingest(
        body(day_records("car-a")),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=DAY0_MS + 86_400_000,
    )
    HistoryDeriver(HistoryStore(services.engine)).ingest_landed(report)
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    app = create_app(services.settings, services)
    if not any(getattr(r, "path", "") == "/api/v1/vehicles/{vehicle_id}/drives" for r in app.routes):
        app.include_router(history.router)  # until create_app registers it
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient, token: str, path: str) -> object:
    response = client.get(path, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_owner_reads_drives_charges_and_states(client: TestClient, world: World) -> None:
    h = 3_600_000
    out_ms, charge_ms, unplug_ms, home_ms = (DAY0_MS + 8 * h + s * 1000 for s in (0, 1800, 6600, 8460))
    drives = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/drives")
    assert isinstance(drives, list)
    # the fixture's two drives: 20 min at 36 km/h and 15 kW, out at 08:00 UTC and home at 10:21
    assert [(d["start_ts_ms"], d["end_ts_ms"]) for d in drives] == [
        (out_ms, out_ms + 1_200_000),
        (home_ms, home_ms + 1_200_000),
    ]
    assert [d["distance_odometer_km"] for d in drives] == pytest.approx([11.95, 11.95], abs=0.02)
    assert [d["energy_used_kwh"] for d in drives] == pytest.approx([15 * 1200 / 3600] * 2, abs=0.02)
    assert [d["regen_kwh"] for d in drives] == [0.0, 0.0]
    assert [d["end_reason"] for d in drives] == ["stopped", "stopped"]
    assert drives[0]["route"][0] == pytest.approx([31.2304 + 50 / 111_195, 121.4737])
    charges = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/charges")
    assert isinstance(charges, list)
    (charge,) = charges  # 3.3 kW AC for an hour at the far end, 90 % of it into the pack, then unplugged
    assert charge["current_kind"] == "AC"
    assert (charge["start_ts_ms"], charge["end_ts_ms"]) == (charge_ms, unplug_ms)
    assert charge["end_reason"] == "unplugged"
    assert charge["energy_grid_kwh"] == pytest.approx(3.3, rel=0.01)
    assert charge["energy_added_kwh"] == pytest.approx(0.9 * 3.3, rel=0.01)
    assert charge["soc_to_pct"] == pytest.approx(90.4, abs=0.05)
    states = get(client, world.tokens["ann"], f"/api/v1/vehicles/car-a/states?from_ms={out_ms}")
    assert isinstance(states, list)
    assert [s["status"] for s in states] == [
        "driving",
        "parked",
        "charging",
        "asleep",
        "parked",
        "asleep",
        "driving",
        "asleep",
    ]
    assert [s["start_ts_ms"] for s in states if s["status"] == "driving"] == [out_ms, home_ms]
    assert [s["start_ts_ms"] for s in states if s["status"] == "charging"] == [charge_ms]


def test_summary_per_day_and_for_the_fleet(client: TestClient, world: World) -> None:
    (day,) = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/summary?period=day&tz=Asia/Shanghai")  # type: ignore[misc]
    assert day["drive_count"] == 2
    assert day["charge_count"] == 1
    assert day["distance_km"] == pytest.approx(23.9, abs=0.1)
    # the fixture's car uses 417 Wh/km: on Shanghai's grid it emits more than a petrol Aygo X would
    expected = (
        day["distance_km"] * PETROL_CITY_CAR_G_PER_KM - day["drive_energy_kwh"] * GRID_G_PER_KWH
    ) / 1000
    assert day["co2_avoided_kg"] == pytest.approx(expected, abs=0.005)  # reported to 10 g
    assert day["co2_avoided_kg"] < 0
    (fleet_week,) = get(client, world.tokens["olga"], "/api/v1/fleet/summary?period=week")  # type: ignore[misc]
    assert fleet_week["vehicle_count"] == 1  # the operator sees car-a, their fleet's car
    assert fleet_week["distance_km"] == pytest.approx(day["distance_km"])
    bob = get(client, world.tokens["bob"], "/api/v1/fleet/summary?period=month")
    assert bob == []  # bob's car has no history


def test_csv_and_geojson_exports(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/vehicles/car-a/drives.csv", headers=bearer(world.tokens["ann"]))
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2
    assert [float(r["energy_used_kwh"]) for r in rows] == pytest.approx([15 * 1200 / 3600] * 2, abs=0.02)
    geo = client.get("/api/v1/vehicles/car-a/drives.geojson", headers=bearer(world.tokens["ann"])).json()
    assert geo["type"] == "FeatureCollection"
    line = geo["features"][0]["geometry"]
    assert line["type"] == "LineString"
    assert line["coordinates"][0] == pytest.approx([121.4737, 31.2304 + 50 / 111_195])  # [lon, lat]


@pytest.mark.parametrize("path", ["drives", "charges", "states", "summary", "drives.csv"])
def test_someone_elses_car_is_not_found(client: TestClient, world: World, path: str) -> None:
    response = client.get(f"/api/v1/vehicles/car-a/{path}", headers=bearer(world.tokens["bob"]))
    assert response.status_code == 404


def test_no_token_is_refused(client: TestClient) -> None:
    assert client.get("/api/v1/vehicles/car-a/drives").status_code == 401


def test_bad_window_and_zone_are_422(client: TestClient, world: World) -> None:
    token = bearer(world.tokens["ann"])
    assert client.get("/api/v1/vehicles/car-a/drives?from_ms=10&to_ms=5", headers=token).status_code == 422
    assert client.get("/api/v1/vehicles/car-a/summary?tz=Mars/Olympus", headers=token).status_code == 422
    for zone in ("x" * 5000, "Europe/" + "y" * 300, "../../etc/passwd"):  # too long for a file name; a path
        response = client.get("/api/v1/fleet/summary", params={"tz": zone}, headers=token)
        assert response.status_code == 422 and "time zone" in response.json()["message"]


def test_cli_tables_render(services: Services, world: World) -> None:
    console = Console(record=True, width=200)
    console.print(drives_table("car-a", services.history.last_drives("car-a", 20), tz_name="Asia/Shanghai"))
    console.print(charges_table("car-a", services.history.last_charges("car-a", 20)))
    text = console.export_text()
    assert "Drives of car-a" in text
    assert "12.0" in text
    assert "AC" in text
