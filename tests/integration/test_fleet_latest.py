"""`GET /api/v1/fleet/latest`: every visible car's latest state in one answer (a fleet map's first draw)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, build_world


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as c:
        yield c, world


def _get(c: TestClient, token: str, **params: str) -> list[dict[str, object]]:
    response = c.get("/api/v1/fleet/latest", params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: list[dict[str, object]] = response.json()
    return body


def test_a_car_that_sent_nothing_is_listed_without_a_state_and_each_car_keeps_its_own_signals(
    api: tuple[TestClient, World],
) -> None:
    c, world = api
    assert _get(c, world.tokens["root"]) == [
        {"vehicle_id": "car-a", "latest": None},
        {"vehicle_id": "car-b", "latest": None},
    ]
    sent = {"car-a": (30.25, 120.15, 61.0), "car-b": (30.26, 120.17, 42.5)}
    for car, (lat, lon, soc) in sent.items():
        record = {"vehicle_id": car, "ts_ms": NOW_MS - 60_000, "lat_deg": lat, "lon_deg": lon, "soc_pct": soc}
        device = world.tokens["device_a" if car == "car-a" else "device_b"]
        response = c.post("/api/v1/telemetry", json=[record], headers={"Authorization": f"Bearer {device}"})
        assert response.json()["results"][0]["status"] == "accepted"
    body = _get(c, world.tokens["root"], signals="soc_pct,lat_deg")
    got = {
        entry["vehicle_id"]: {k: v["value"] for k, v in entry["latest"]["signals"].items()}  # type: ignore[index]
        for entry in body
    }
    assert got == {
        "car-a": {"soc_pct": 61.0, "lat_deg": 30.25},
        "car-b": {"soc_pct": 42.5, "lat_deg": 30.26},
    }
    everything = _get(c, world.tokens["root"])
    assert {"lon_deg", "soc_pct", "lat_deg"} <= set(everything[0]["latest"]["signals"])  # type: ignore[index]


def test_an_unknown_signal_name_is_refused_with_its_name(api: tuple[TestClient, World]) -> None:
    c, world = api
    response = c.get(
        "/api/v1/fleet/latest",
        params={"signals": "lat_deg,password"},
        headers={"Authorization": f"Bearer {world.tokens['root']}"},
    )
    assert response.status_code == 422
    assert "password" in response.json()["message"]
