"""Route learning over the API on SQLite and PostgreSQL: a commuter's routine trips, insight and forecast."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.derivation import DerivedHistory
from microfleet.intelligence.trip_forecast import RESERVE_PCT
from microfleet.store.history import HistoryStore
from tests.integration.world import World, bearer, build_world
from tests.unit.intelligence.test_trips import TZ, WORK, commuter

CAR = "car-r"
MODEL = "wuling-hongguang-mini-ev-gen1-14kwh"
# four weeks of commuting that end the Sunday before the tests' frozen clock (Monday 2025-11-24 16:00 UTC)
FIRST_MONDAY = dt.date(2025, 10, 27)


@pytest.fixture
def world(services: Services) -> World:
    built = build_world(services)
    built.tokens["device_r"] = services.admin.add_vehicle(CAR, name="Commuter's Mini EV", model_id=MODEL)
    services.admin.grant(CAR, user_name="ann")
    drives = [dataclasses.replace(d, vehicle_id=CAR) for d in commuter(4, FIRST_MONDAY)]
    store = HistoryStore(services.engine)
    store.replace_history(CAR, drives[0].start_ts_ms, DerivedHistory([], drives, [], [], [], []))
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def get(client: TestClient, token: str, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, headers=bearer(token), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _work(places: list[dict[str, Any]]) -> str:
    (work,) = [p["place_id"] for p in places if abs(p["lat_deg"] - WORK[0]) < 1e-4]
    return work


def test_routes_of_a_commuter(client: TestClient, world: World) -> None:
    body = get(client, world.tokens["ann"], f"/api/v1/vehicles/{CAR}/routes", tz="Europe/Amsterdam")
    assert (body["status"], body["drives"], body["drives_needed"]) == ("ok", 48, 0)
    work = _work(body["places"])
    to_work = [t for t in body["trips"] if t["destination_place_id"] == work]
    (trip,) = to_work
    assert (trip["count"], trip["weekday_count"], trip["weekend_count"]) == (20, 20, 0)
    # 12 departures at 07:40 and 8 at 08:10: the median is 07:40 (CET, after the clocks went back)
    assert trip["usual_departure_local"] == "07:40"
    assert trip["energy"] == {"p10_kwh": 0.5, "p50_kwh": 0.5, "p90_kwh": 0.6, "basis": "this trip's drives"}
    said = [i for i in body["insights"] if i["destination_place_id"] == work]
    assert said and said[0]["extra_energy_share"] == 0.2
    assert "20 % more at 08:10 than at 07:40" in said[0]["text"]


def test_forecast_for_monday_morning_and_the_soc_it_needs(client: TestClient, world: World) -> None:
    token = world.tokens["ann"]
    sunday_22 = dt.datetime(2025, 11, 23, 22, 0, tzinfo=TZ)
    at_ms = int(sunday_22.timestamp() * 1000)
    places = get(client, token, f"/api/v1/vehicles/{CAR}/routes", tz="Europe/Amsterdam")["places"]
    body = get(client, token, f"/api/v1/vehicles/{CAR}/forecast", tz="Europe/Amsterdam", at_ms=at_ms)
    assert body["status"] == "ok" and body["at_ts_ms"] == at_ms
    first = body["trips"][0]
    assert first["destination_place_id"] == _work(places) and first["probability_share"] > 0.5
    depart = dt.datetime.fromtimestamp(first["depart_ts_ms"] / 1000, TZ)
    assert depart.date() == dt.date(2025, 11, 24) and dt.time(7, 30) <= depart.time() <= dt.time(8, 15)
    assert 10 < body["usable_kwh"] < 14  # the catalogue's 13.8 kWh Mini EV, usable share of it
    need = body["energy_p90_kwh"] / body["usable_kwh"] * 100 + RESERVE_PCT
    assert body["soc_needed_pct"] == pytest.approx(need, abs=0.01)
    assert body["reserve_pct"] == RESERVE_PCT


def test_too_few_drives_and_bad_input(client: TestClient, world: World) -> None:
    token = world.tokens["ann"]
    early = int(dt.datetime(2025, 10, 29, 12, 0, tzinfo=TZ).timestamp() * 1000)  # after 5 drives
    body = get(client, token, f"/api/v1/vehicles/{CAR}/forecast", at_ms=early)
    assert (body["status"], body["drives"], body["drives_needed"], body["trips"]) == (
        "needs_more_drives",
        5,
        15,
        [],
    )
    for params in ({"tz": "Mars/Olympus"}, {"tz": "a" * 5000}, {"at_ms": -1}, {"at_ms": 2**62}):
        response = client.get(f"/api/v1/vehicles/{CAR}/forecast", headers=bearer(token), params=params)
        assert response.status_code == 422, response.text
    response = client.get(f"/api/v1/vehicles/{CAR}/routes", headers=bearer(world.tokens["bob"]))
    assert response.status_code == 404
