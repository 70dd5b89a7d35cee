"""GET /api/v1/route on SQLite and PostgreSQL: both routes with their energy band, who may ask, bad input."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.services.derivation import HistoryDeriver
from microfleet.store.history import HistoryStore
from tests.integration.test_history_day import DAY0_MS, body, day_records
from tests.integration.world import World, bearer, build_world

PEOPLES_SQUARE = "31.2304,121.4737"  # on the shipped Shanghai extract
BUND = "31.2400,121.4900"  # about 2 km north-east, also on it
BEIJING = "39.9042,116.4074"  # far off the map


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
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def route(client: TestClient, token: str, query: str) -> tuple[int, dict[str, object]]:
    response = client.get(f"/api/v1/route?{query}", headers=bearer(token))
    return response.status_code, response.json()


def test_owner_gets_both_routes_with_bands_from_the_labelled_prior(client: TestClient, world: World) -> None:
    status, out = route(
        client,
        world.tokens["ann"],
        f"from={PEOPLES_SQUARE}&to={BUND}&objective=energy&vehicle_id=car-a"
        "&hour_local=8&ambient_temp_c=-10&soc_pct=80",
    )
    assert status == 200, out
    chosen, other = out["route"], out["alternative"]
    assert isinstance(chosen, dict) and isinstance(other, dict)
    assert (chosen["objective"], other["objective"]) == ("energy", "time")
    assert 1.0 < chosen["distance_km"] < 6.0
    assert chosen["energy_p10_kwh"] < chosen["energy_p50_kwh"] < chosen["energy_p90_kwh"]
    # the energy route never costs more energy than the fastest, nor is it faster
    assert chosen["energy_p50_kwh"] <= other["energy_p50_kwh"] + 1e-6
    assert chosen["duration_min"] >= other["duration_min"] - 0.05
    assert out["kwh_saved_by_energy_route"] >= 0.0
    # car-a has two drives and no catalogue model: the generic prior, saying so and what it needs
    assert "needs 8 more drives" in str(out["model_basis"])
    assert "generic catalogue prior" in str(out["model_basis"])
    trip = out["round_trip"]
    assert isinstance(trip, dict) and trip["possible"] is True


def test_time_objective_puts_the_fastest_first(client: TestClient, world: World) -> None:
    status, out = route(client, world.tokens["ann"], f"from={PEOPLES_SQUARE}&to={BUND}&objective=time")
    assert status == 200, out
    assert out["route"]["objective"] == "time"  # type: ignore[index]
    assert out["route"]["duration_min"] <= out["alternative"]["duration_min"] + 0.05  # type: ignore[index]
    assert out["round_trip"] is None


def test_off_map_is_refused_with_a_clear_422(client: TestClient, world: World) -> None:
    status, out = route(client, world.tokens["ann"], f"from={PEOPLES_SQUARE}&to={BEIJING}")
    assert status == 422
    assert out["code"] == "invalid_route"
    assert "off the map" in str(out["message"])
    status, out = route(client, world.tokens["ann"], f"from=north&to={BUND}")
    assert (status, out["code"]) == (422, "invalid_route")
    status, out = route(client, world.tokens["ann"], f"from={PEOPLES_SQUARE}&to={PEOPLES_SQUARE}")
    assert (status, out["code"]) == (422, "invalid_route")


def test_a_car_the_caller_does_not_see_is_not_found(client: TestClient, world: World) -> None:
    status, out = route(client, world.tokens["bob"], f"from={PEOPLES_SQUARE}&to={BUND}&vehicle_id=car-a")
    assert status == 404, out
    status, _ = route(client, world.tokens["bob"], f"from={PEOPLES_SQUARE}&to={BUND}&soc_pct=50")
    assert status == 422  # a round trip needs a car
