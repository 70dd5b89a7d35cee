"""Failed authentications are throttled per client address (429 with Retry-After past a burst); a valid
credential is never throttled, not even from an address that is. On both stores, and through a real
uvicorn server, where the address counted is the one left after the trusted-proxy rule."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.cli.demo import _start_server
from microfleet.services.throttle import FailureLimits, FailureThrottle, client_key
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world

BURST = 20  # the default MICROFLEET_AUTH_FAILURE_BURST
RECORD = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 60_000, "soc_pct": 55.0}


def _bad(i: int) -> dict[str, str]:
    return bearer(f"mfd_not-a-credential-{i}")


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services), client=("198.51.100.7", 40000)) as c:
        yield c, world


def test_bad_tokens_past_the_burst_get_429_and_valid_ones_still_pass(api: tuple[TestClient, World]) -> None:
    c, world = api
    statuses = [c.get("/api/v1/vehicles", headers=_bad(i)).status_code for i in range(200)]
    # The burst, and at most one more earned back while the loop ran (10 a minute).
    assert statuses[:BURST] == [401] * BURST
    assert statuses.count(401) <= BURST + 1 and statuses.count(429) >= 200 - BURST - 1
    refused = c.post("/api/v1/telemetry", json=[RECORD], headers=_bad(999))
    assert refused.status_code == 429
    assert refused.json() == {"code": "too_many_requests", "message": refused.json()["message"]}
    assert refused.json()["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 6  # one failure is earned back every 6 s
    assert "WWW-Authenticate" not in refused.headers

    # The same address, valid credentials: a car and a user are served as ever.
    car = c.post("/api/v1/telemetry", json=[RECORD], headers=bearer(world.tokens["device_a"]))
    assert car.status_code == 200 and car.json()["accepted"] == 1
    assert c.get("/api/v1/vehicles", headers=bearer(world.tokens["ann"])).status_code == 200
    # ... and a valid one does not lift the block for the bad ones.
    assert c.get("/api/v1/vehicles", headers=_bad(1000)).status_code == 429


def test_another_address_has_its_own_count(api: tuple[TestClient, World], services: Services) -> None:
    c, _world = api
    for i in range(BURST + 1):
        c.get("/api/v1/vehicles", headers=_bad(i))
    assert c.get("/api/v1/vehicles", headers=_bad(0)).status_code == 429
    app = create_app(services.settings, services)
    with TestClient(app, client=("198.51.100.8", 40000)) as other:
        response = other.get("/api/v1/vehicles", headers=_bad(0))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_missing_or_misspelled_header_is_not_counted(api: tuple[TestClient, World]) -> None:
    c, _world = api
    for _ in range(3 * BURST):
        assert c.get("/api/v1/vehicles").status_code == 401
        assert c.get("/api/v1/vehicles", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get("/api/v1/vehicles", headers=_bad(0)).status_code == 401


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("trusted", "separate"), [([], False), (["127.0.0.1"], True)])
def test_the_counted_address_is_the_one_left_by_the_trusted_proxy_rule(
    services: Services, trusted: list[str], separate: bool
) -> None:
    """A client cannot escape its count by forging X-Forwarded-For; behind a trusted proxy, each client
    it forwards for has its own."""
    build_world(services)
    settings = services.settings.model_copy(update={"trusted_proxies": trusted})
    port = _free_port()
    server, thread = _start_server(settings, services, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for i in range(BURST):
                forged = {**_bad(i), "X-Forwarded-For": f"203.0.113.{i + 1}"}
                assert http.get("/api/v1/vehicles", headers=forged).status_code == 401
            fresh = {**_bad(0), "X-Forwarded-For": "203.0.113.200"}
            assert http.get("/api/v1/vehicles", headers=fresh).status_code == (401 if separate else 429)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_failures_are_earned_back_at_the_configured_rate() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(FailureLimits(burst=3, per_minute=6), clock_s=clock)  # one back every 10 s
    assert [throttle.failed("192.0.2.1") for _ in range(3)] == [None, None, None]
    assert throttle.failed("192.0.2.1") == 10
    clock.now_s += 4
    assert throttle.failed("192.0.2.1") == 6  # refusals draw nothing: the wait only shrinks
    clock.now_s += 6
    assert throttle.failed("192.0.2.1") is None
    assert throttle.failed("192.0.2.1") == 10
    clock.now_s += 30  # the whole burst back
    assert [throttle.failed("192.0.2.1") for _ in range(4)] == [None, None, None, 10]


def test_ipv6_clients_are_counted_per_64_and_memory_is_bounded() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("testclient") == "testclient"

    clock = FakeClock()
    throttle = FailureThrottle(FailureLimits(burst=1, per_minute=60), clock_s=clock, max_clients=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100  # the oldest forgotten beyond the cap
    clock.now_s += 2  # every bucket refilled: a client with nothing left to earn back is forgotten
    throttle.failed("192.0.2.9")
    assert len(throttle) == 1
