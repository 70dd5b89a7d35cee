"""Browser logins over the real API on both stores: the cookie, CSRF, expiry, throttling, password changes.

A session cookie must give its user exactly what their API token gives (the matrix checks tokens; here
the same user by cookie sees the same cars and is refused the same way), and an unsafe request made with
the cookie alone - what another site can make a browser send - must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.services.web_sessions import SESSION_PREFIX
from tests.integration.conftest import FrozenClock
from tests.integration.world import World, bearer, build_world

PASSWORD = "correct horse battery"


@pytest.fixture
def world(services: Services) -> World:
    world = build_world(services)
    for user in services.admin.list_users():
        services.web_sessions.set_password(user, f"{PASSWORD} {user.name}")
    return world


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as client:
        yield client


def log_in(client: TestClient, name: str, password: str | None = None) -> str:
    """Log in; returns the CSRF token (the client keeps the cookie)."""
    response = client.post(
        "/api/v1/session", json={"user_name": name, "password": password or f"{PASSWORD} {name}"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def test_login_sets_a_protected_cookie_and_says_who(client: TestClient) -> None:
    response = client.post("/api/v1/session", json={"user_name": "ann", "password": f"{PASSWORD} ann"})
    assert response.status_code == 200
    body = response.json()
    assert (body["user_name"], body["role"], body["csrf_header"]) == ("ann", "owner", "X-CSRF-Token")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"microfleet_session={SESSION_PREFIX}")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
    assert response.headers["cache-control"] == "no-store"
    me = client.get("/api/v1/session").json()
    assert (me["user_name"], me["csrf_token"]) == ("ann", body["csrf_token"])


def test_the_cookie_is_secure_over_tls(services: Services, world: World) -> None:
    with TestClient(create_app(services.settings, services), base_url="https://testserver") as client:
        response = client.post("/api/v1/session", json={"user_name": "ann", "password": f"{PASSWORD} ann"})
    assert "Secure" in response.headers["set-cookie"]


def test_a_cookie_sees_what_the_users_token_sees(client: TestClient, world: World) -> None:
    for name, cars in [
        ("ann", ["car-a"]),
        ("bob", ["car-b"]),
        ("olga", ["car-a"]),
        ("root", ["car-a", "car-b"]),
    ]:
        client.cookies.clear()
        log_in(client, name)
        by_cookie = client.get("/api/v1/vehicles")
        client.cookies.clear()
        by_token = client.get("/api/v1/vehicles", headers=bearer(world.tokens[name]))
        assert by_cookie.json() == by_token.json()
        assert [v["vehicle_id"] for v in by_cookie.json()] == cars
    client.cookies.clear()
    log_in(client, "ann")
    assert client.get("/api/v1/vehicles/car-b").status_code == 404  # not ann's: as with her token
    assert client.get("/api/v1/vehicles/car-a").status_code == 200


def test_an_unsafe_request_with_the_cookie_needs_the_csrf_token(client: TestClient) -> None:
    csrf = log_in(client, "ann")
    circle = {"type": "circle", "lat_deg": 31.23, "lon_deg": 121.47, "radius_m": 100}
    place = {"name": "Home", "kind": "home", "vehicle_id": "car-a", "geometry": circle}
    refused = client.post("/api/v1/places", json=place)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    wrong = client.post("/api/v1/places", json=place, headers={"X-CSRF-Token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    assert [p["name"] for p in client.get("/api/v1/places").json()] == []  # nothing was written
    created = client.post("/api/v1/places", json=place, headers={"X-CSRF-Token": csrf})
    assert created.status_code in (200, 201), created.text


def test_a_bearer_token_needs_no_csrf_token_and_wins_over_a_cookie(client: TestClient, world: World) -> None:
    log_in(client, "ann")
    me = client.get("/api/v1/session", headers=bearer(world.tokens["bob"])).json()
    assert (me["user_name"], me["csrf_token"]) == ("bob", None)


def test_a_wrong_password_or_user_is_refused_alike(client: TestClient) -> None:
    for name, password in [("ann", "not her password"), ("nobody", "whatever it is")]:
        response = client.post("/api/v1/session", json={"user_name": name, "password": password})
        assert (response.status_code, response.json()["message"]) == (401, "wrong user name or password")
        assert "set-cookie" not in response.headers
    assert client.get("/api/v1/session").status_code == 401


def test_guessing_is_throttled_without_locking_the_user_out(services: Services, client: TestClient) -> None:
    guess = {"user_name": "ann", "password": "guess guess"}
    answers = [
        client.post("/api/v1/session", json=guess).status_code
        for _ in range(services.settings.auth_failure_burst + 5)
    ]
    assert answers[0] == 401 and answers[-1] == 429, answers
    throttled = client.post("/api/v1/session", json={"user_name": "ann", "password": f"{PASSWORD} ann"})
    assert throttled.status_code == 429  # over the limit even the right password is not checked
    # ...and not for long: one failure is earned back every 60 / per_minute seconds
    assert 1 <= int(throttled.headers["retry-after"]) <= 60 / services.settings.auth_failure_per_minute


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = log_in(client, "ann")
    cookie = client.cookies.get("microfleet_session")
    assert client.delete("/api/v1/session").status_code == 403  # without its CSRF token: refused
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("microfleet_session", str(cookie))  # the old cookie, replayed
    response = client.get("/api/v1/vehicles")
    assert response.status_code == 401 and "log in again" in response.json()["message"]


def test_a_session_expires(services: Services, client: TestClient, clock: FrozenClock) -> None:
    log_in(client, "ann")
    clock.now_ms += round(services.settings.web_session_lifetime_s * 1000) - 1
    assert client.get("/api/v1/vehicles").status_code == 200
    clock.now_ms += 1
    assert client.get("/api/v1/vehicles").status_code == 401


def test_changing_the_password_ends_other_sessions(services: Services, world: World) -> None:
    app = create_app(services.settings, services)
    with TestClient(app) as phone, TestClient(app) as laptop:
        log_in(phone, "ann")
        csrf = log_in(laptop, "ann")
        new = {"current_password": "wrong one", "new_password": "a new password"}
        wrong = laptop.post("/api/v1/session/password", json=new, headers={"X-CSRF-Token": csrf})
        assert wrong.status_code == 403
        short = {"current_password": f"{PASSWORD} ann", "new_password": "short"}
        assert (
            laptop.post("/api/v1/session/password", json=short, headers={"X-CSRF-Token": csrf}).status_code
            == 422
        )
        good = {"current_password": f"{PASSWORD} ann", "new_password": "a new password"}
        changed = laptop.post("/api/v1/session/password", json=good, headers={"X-CSRF-Token": csrf})
        assert changed.status_code == 200, changed.text
        assert laptop.get("/api/v1/vehicles").status_code == 200  # the browser that changed it stays in
        assert phone.get("/api/v1/vehicles").status_code == 401  # the other session has ended
        phone.cookies.clear()
        assert log_in(phone, "ann", "a new password")


def test_passwords_and_sessions_are_stored_only_hashed(services: Services, client: TestClient) -> None:
    log_in(client, "ann")
    cookie = str(client.cookies.get("microfleet_session"))
    with services.engine.connect() as conn:
        stored = " ".join(
            str(row)
            for table in ("user_passwords", "web_sessions")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )
    assert "$argon2id$" in stored
    assert PASSWORD not in stored and cookie not in stored


def test_another_site_cannot_log_a_browser_in(client: TestClient) -> None:
    """A cross-site form can post text/plain but not JSON: the login refuses it (no login CSRF)."""
    body = '{"user_name": "ann", "password": "correct horse battery ann"}'
    response = client.post("/api/v1/session", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 422
    assert "set-cookie" not in response.headers
