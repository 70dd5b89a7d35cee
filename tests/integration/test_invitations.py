"""Invitations: an administrator invites a person; the one-time code makes the user with their own password
and logs them in, once; a withdrawn, used, expired or made-up code is refused and counted as a failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.services.invitations import INVITATION_LIFETIME_MS
from tests.integration.conftest import FrozenClock
from tests.integration.world import World, build_world


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as c:
        yield c, world


def _invite(c: TestClient, world: World, **body: object) -> dict[str, object]:
    response = c.post(
        "/api/v1/invitations", json=body, headers={"Authorization": f"Bearer {world.tokens['root']}"}
    )
    assert response.status_code == 201, response.text
    made: dict[str, object] = response.json()
    return made


def test_an_invited_operator_chooses_a_password_and_sees_her_fleet(api: tuple[TestClient, World]) -> None:
    c, world = api
    made = _invite(c, world, user_name="nina", role="operator", fleet_id="city-share")
    assert made["link"] == f"/#/invite?code={made['code']}"
    body = {"code": made["code"], "password": "nina's password"}
    accepted = c.post("/api/v1/session/invitation", json=body)
    assert accepted.status_code == 200
    assert (accepted.json()["user_name"], accepted.json()["fleet_id"]) == ("nina", "city-share")
    assert [v["vehicle_id"] for v in c.get("/api/v1/vehicles").json()] == ["car-a"]  # by her session cookie
    c.cookies.clear()
    login = c.post("/api/v1/session", json={"user_name": "nina", "password": "nina's password"})
    assert login.status_code == 200  # the password she chose is hers
    c.cookies.clear()
    again = c.post("/api/v1/session/invitation", json={"code": made["code"], "password": "another one"})
    assert again.status_code == 401


def test_a_withdrawn_or_expired_code_is_refused(
    api: tuple[TestClient, World], services: Services, clock: FrozenClock
) -> None:
    c, world = api
    root = {"Authorization": f"Bearer {world.tokens['root']}"}
    withdrawn = _invite(c, world, user_name="omar", role="owner")
    assert c.delete(f"/api/v1/invitations/{withdrawn['invitation_id']}", headers=root).status_code == 204
    body = {"code": withdrawn["code"], "password": "omar's password"}
    assert c.post("/api/v1/session/invitation", json=body).status_code == 401
    late = _invite(c, world, user_name="pia", role="owner")
    clock.now_ms += INVITATION_LIFETIME_MS + 1
    body = {"code": late["code"], "password": "pia's password"}
    assert c.post("/api/v1/session/invitation", json=body).status_code == 401
    assert c.get("/api/v1/invitations", headers=root).json() == []


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"user_name": "quinn", "role": "operator"}, 422, "fleet"),
        ({"user_name": "quinn", "role": "owner", "fleet_id": "no-such-fleet"}, 422, "no fleet"),
        ({"user_name": "ann", "role": "owner"}, 409, "already"),
        ({"user_name": "bad\tname", "role": "owner"}, 422, "printable"),
    ],
)
def test_an_invitation_that_cannot_work_is_refused_with_its_reason(
    api: tuple[TestClient, World], body: dict[str, object], status: int, says: str
) -> None:
    c, world = api
    response = c.post(
        "/api/v1/invitations", json=body, headers={"Authorization": f"Bearer {world.tokens['root']}"}
    )
    assert response.status_code == status and says in response.json()["message"]


def test_a_short_password_is_refused_before_the_code_is_spent(api: tuple[TestClient, World]) -> None:
    c, world = api
    made = _invite(c, world, user_name="rosa", role="owner")
    short = c.post("/api/v1/session/invitation", json={"code": made["code"], "password": "short"})
    assert short.status_code == 422
    ok = c.post("/api/v1/session/invitation", json={"code": made["code"], "password": "long enough now"})
    assert ok.status_code == 200


def test_made_up_codes_are_throttled_like_wrong_passwords(api: tuple[TestClient, World]) -> None:
    c, _ = api
    guesses = [{"code": f"mfi_guess{i}", "password": "a guess 12345"} for i in range(40)]
    statuses = [c.post("/api/v1/session/invitation", json=g).status_code for g in guesses]
    assert statuses[0] == 401 and statuses[-1] == 429
