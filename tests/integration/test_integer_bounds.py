"""Every integer the API accepts fits the column it reaches: a larger one is a 422 with the JSON error
body on both stores, never a 500 from the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.world import World, bearer, build_world

TOO_BIG_FOR_BIGINT = 2**63
TOO_BIG_FOR_INTEGER = 2**31


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services), raise_server_exceptions=False) as c:
        yield c, world


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/vehicles/car-a/drives",
        "/api/v1/vehicles/car-a/drives.csv",
        "/api/v1/vehicles/car-a/drives.geojson",
        "/api/v1/vehicles/car-a/charges",
        "/api/v1/vehicles/car-a/states",
        "/api/v1/vehicles/car-a/summary",
        "/api/v1/fleet/summary",
        "/api/v1/fleet/summary/zones",
    ],
)
@pytest.mark.parametrize("param", ["from_ms", "to_ms"])
def test_a_time_beyond_bigint_is_refused(api: tuple[TestClient, World], path: str, param: str) -> None:
    c, world = api
    response = c.get(path, params={param: TOO_BIG_FOR_BIGINT}, headers=bearer(world.tokens["ann"]))
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert param in response.json()["message"]


def test_a_quarantine_id_beyond_integer_is_refused(api: tuple[TestClient, World]) -> None:
    c, world = api
    root = bearer(world.tokens["root"])
    replay = c.post(f"/api/v1/quarantine/{TOO_BIG_FOR_INTEGER}/replay", headers=root)
    assert replay.status_code == 422
    listed = c.get("/api/v1/quarantine", params={"after_id": TOO_BIG_FOR_INTEGER}, headers=root)
    assert listed.status_code == 422
    # the largest id the column holds is a plain "not found"
    assert c.post(f"/api/v1/quarantine/{TOO_BIG_FOR_INTEGER - 1}/replay", headers=root).status_code == 404
