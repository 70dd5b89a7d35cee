"""A vehicle's device credential rotates without cutting the car off: the new one is shown once, the one it
replaced keeps working for the configured overlap and then stops, and a rotation during the overlap ends
the credential before it. Through the API (admins, and the operator of the car's fleet) on both stores,
and through ``microfleet admin rotate-device``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.domain.access import DevicePrincipal, Role
from microfleet.errors import AuthenticationError
from microfleet.settings import Settings
from tests.e2e.command import microfleet
from tests.integration.conftest import NOW_MS, FrozenClock
from tests.integration.world import World, bearer, build_world

DAY_MS = 86_400_000  # the default MICROFLEET_DEVICE_CREDENTIAL_OVERLAP_S, 24 h
RECORD = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 60_000, "soc_pct": 55.0}
ROTATE = "/api/v1/vehicles/car-a/device-credential"


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as c:
        yield c, world


def _works(c: TestClient, token: str) -> bool:
    status = c.post("/api/v1/telemetry", json=[RECORD], headers=bearer(token)).status_code
    assert status in (200, 401)
    return status == 200


def test_the_replaced_credential_works_for_the_overlap_then_stops(
    api: tuple[TestClient, World], clock: FrozenClock
) -> None:
    c, world = api
    old = world.tokens["device_a"]
    response = c.post(ROTATE, headers=bearer(world.tokens["olga"]))  # the operator of car-a's fleet
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["vehicle_id"] == "car-a" and body["previous_valid_until_ms"] == NOW_MS + DAY_MS
    new = body["device_credential"]
    assert new.startswith("mfd_") and new != old
    assert _works(c, new) and _works(c, old)
    clock.now_ms = NOW_MS + DAY_MS - 1
    assert _works(c, old)
    clock.now_ms = NOW_MS + DAY_MS
    assert not _works(c, old)
    assert _works(c, new)


def test_rotating_during_the_overlap_ends_the_older_credential(
    api: tuple[TestClient, World], clock: FrozenClock
) -> None:
    c, world = api
    first = world.tokens["device_a"]
    second = c.post(ROTATE, headers=bearer(world.tokens["root"])).json()["device_credential"]
    clock.now_ms += 60_000
    answer = c.post(ROTATE, headers=bearer(world.tokens["root"])).json()
    third = answer["device_credential"]
    assert answer["previous_valid_until_ms"] == clock.now_ms + DAY_MS  # the second's overlap starts anew
    assert not _works(c, first)
    assert _works(c, second) and _works(c, third)
    assert _works(c, world.tokens["device_b"])  # another car's credential is untouched


def test_a_leaked_credential_can_be_ended_at_once(api: tuple[TestClient, World]) -> None:
    c, world = api
    old = world.tokens["device_a"]
    response = c.post(ROTATE, params={"end_previous_now": True}, headers=bearer(world.tokens["root"]))
    assert response.status_code == 200 and response.json()["previous_valid_until_ms"] is None
    assert not _works(c, old)
    assert _works(c, response.json()["device_credential"])


def test_who_may_rotate(api: tuple[TestClient, World], services: Services) -> None:
    c, world = api
    # An operator of another fleet that was granted car-a sees it, but does not look after its unit.
    services.admin.add_fleet("other-share", "Another operator")
    services.admin.add_user("oscar", Role.OPERATOR, "other-share")
    services.admin.grant("car-a", fleet_id="other-share")
    oscar = bearer(services.admin.issue_token("oscar"))
    assert c.get("/api/v1/vehicles/car-a", headers=oscar).status_code == 200
    refused = c.post(ROTATE, headers=oscar)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    # car-b is in no fleet: only an admin rotates it, not even olga (who does not see it) or bob (who does).
    assert (
        c.post("/api/v1/vehicles/car-b/device-credential", headers=bearer(world.tokens["olga"])).status_code
        == 404
    )
    assert (
        c.post("/api/v1/vehicles/car-b/device-credential", headers=bearer(world.tokens["bob"])).status_code
        == 403
    )
    root = bearer(world.tokens["root"])
    assert c.post("/api/v1/vehicles/car-b/device-credential", headers=root).status_code == 200
    assert c.post("/api/v1/vehicles/no-such-car/device-credential", headers=root).status_code == 404
    assert c.post("/api/v1/vehicles/bad%20id/device-credential", headers=root).status_code == 422
    assert _works(c, world.tokens["device_a"])  # refusals changed nothing


def test_the_overlap_is_a_setting(services: Services, clock: FrozenClock) -> None:
    build_world(services)
    short = services.settings.model_copy(update={"device_credential_overlap_s": 90.0})
    other = build_services(short, migrate=False, clock=clock)
    try:
        rotated = other.accounts.rotate_device_credential("car-a")
        assert rotated.previous_valid_until_ms == NOW_MS + 90_000
        none = services.settings.model_copy(update={"device_credential_overlap_s": 0.0})
        at_once = build_services(none, migrate=False, clock=clock)
        try:
            again = at_once.accounts.rotate_device_credential("car-a")
        finally:
            at_once.close()
        assert again.previous_valid_until_ms is None
        with pytest.raises(AuthenticationError):  # 0 s: the replaced credential stopped at once
            other.accounts.authenticate(rotated.token, "192.0.2.1")
        assert other.accounts.authenticate(again.token, "192.0.2.1") == DevicePrincipal("car-a")
    finally:
        other.close()


def test_the_cli_rotates_with_the_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "store.db"
    added = microfleet("admin", "add-vehicle", "mini-1", db=db)
    assert added.returncode == 0
    old = added.stdout.split()[-1]
    rotated = microfleet("admin", "rotate-device", "mini-1", db=db)
    assert rotated.returncode == 0, rotated
    assert "new device credential (shown once)" in rotated.stdout
    assert "the previous credential works until" in rotated.stdout
    new = next(word for word in rotated.stdout.split() if word.startswith("mfd_"))
    services = build_services(Settings(database_url=f"sqlite:///{db}"))
    try:
        assert services.accounts.authenticate(old, "cli") == DevicePrincipal("mini-1")
        assert services.accounts.authenticate(new, "cli") == DevicePrincipal("mini-1")
    finally:
        services.close()

    monkeypatch.setenv("MICROFLEET_DEVICE_CREDENTIAL_OVERLAP_S", "0")
    ended = microfleet("admin", "rotate-device", "mini-1", db=db)
    assert ended.returncode == 0 and "the previous credential has stopped working" in ended.stdout
    missing = microfleet("admin", "rotate-device", "no-such-car", db=db)
    assert missing.returncode == 2 and "not_found" in missing.stdout
