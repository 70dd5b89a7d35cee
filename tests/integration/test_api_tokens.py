"""A user's own API tokens over the API: made with a label and shown once, listed without their text,
revoked at once, bounded in number; a label that is blank or holds control characters is refused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.services.api_tokens import MAX_LIVE_TOKENS
from tests.integration.world import World, build_world


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as c:
        yield c, world


def test_a_token_is_shown_once_works_and_stops_working_when_revoked(api: tuple[TestClient, World]) -> None:
    c, world = api
    ann = {"Authorization": f"Bearer {world.tokens['ann']}"}
    made = c.post("/api/v1/tokens", json={"label": "home assistant"}, headers=ann)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    token = made.json()["token"]
    listed = c.get("/api/v1/tokens", headers=ann).json()
    assert "home assistant" in [t["label"] for t in listed]
    assert token not in str(listed)  # only its label and age are ever shown again
    mine = {"Authorization": f"Bearer {token}"}
    assert [v["vehicle_id"] for v in c.get("/api/v1/vehicles", headers=mine).json()] == ["car-a"]
    assert c.delete(f"/api/v1/tokens/{made.json()['token_id']}", headers=ann).status_code == 204
    assert c.get("/api/v1/vehicles", headers=mine).status_code == 401
    again = c.delete(f"/api/v1/tokens/{made.json()['token_id']}", headers=ann)
    assert again.status_code == 404


@pytest.mark.parametrize("label", ["", "   ", "tab\there", "x" * 201])
def test_a_bad_label_is_refused_with_a_sentence(api: tuple[TestClient, World], label: str) -> None:
    c, world = api
    response = c.post(
        "/api/v1/tokens", json={"label": label}, headers={"Authorization": f"Bearer {world.tokens['bob']}"}
    )
    assert response.status_code == 422 and response.json()["message"]


def test_a_user_holds_at_most_twenty_live_tokens(api: tuple[TestClient, World]) -> None:
    c, world = api
    bob = {"Authorization": f"Bearer {world.tokens['bob']}"}
    held = len(c.get("/api/v1/tokens", headers=bob).json())  # the world's own token for bob
    for i in range(MAX_LIVE_TOKENS - held):
        assert c.post("/api/v1/tokens", json={"label": f"t{i}"}, headers=bob).status_code == 201
    refused = c.post("/api/v1/tokens", json={"label": "one too many"}, headers=bob)
    assert refused.status_code == 409 and "revoke" in refused.json()["message"]
