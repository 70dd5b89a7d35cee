"""A phone running OsmAnd or Traccar Client reports a car's position to ``/osmand`` with the car's tracker
key, on SQLite and PostgreSQL: each report is stored once as the key's car's record (GET query, POST query,
form body and JSON), a bad value is quarantined with source ``osmand`` and a reason, and a key that is
missing, unknown, rotated or revoked is refused alike (401, then 429 past the failure burst). The key is
issued, shown masked, rotated and revoked by the car's owner, its fleet's operator or an admin."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world

KEY_PATH = "/api/v1/vehicles/{}/tracker-key"
TS_S = NOW_MS // 1000 - 60
BURST = 20  # the default MICROFLEET_AUTH_FAILURE_BURST


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services), client=("198.51.100.9", 40000)) as c:
        yield c, world


def _issue(c: TestClient, world: World, vehicle_id: str, caller: str = "root") -> str:
    response = c.post(KEY_PATH.format(vehicle_id), headers=bearer(world.tokens[caller]))
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    key = response.json()["tracker_key"]
    assert key.startswith("mft_") and len(key) >= 4 + 27  # 160 random bits, URL-safe base64
    return str(key)


def _report(key: str, ts_s: int = TS_S, **values: object) -> str:
    return urlencode({"id": key, "timestamp": ts_s, "lat": 31.2304, "lon": 121.4737, **values})


def _positions(c: TestClient, world: World, vehicle_id: str) -> list[dict[str, object]]:
    response = c.get(
        f"/api/v1/vehicles/{vehicle_id}/positions",
        params={"from_ms": 0, "to_ms": NOW_MS + 600_000},
        headers=bearer(world.tokens["root"]),
    )
    assert response.status_code == 200
    return list(response.json()["positions"])


def test_each_request_form_is_stored_once_as_the_keys_car(api: tuple[TestClient, World]) -> None:
    c, world = api
    key = _issue(c, world, "car-a", caller="ann")  # the car's owner
    got = c.get(f"/osmand?{_report(key, speed=10, bearing=90, altitude=4, hdop=0.9, batt=80)}")
    assert got.status_code == 200 and got.json()["accepted"] == 1
    posted = c.post(f"/osmand?{_report(key, TS_S + 1)}")  # Traccar Client: POST, the query in the URL
    form = c.post(
        "/osmand",
        content=_report(key, TS_S + 2),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    as_json = c.post(
        "/osmand",
        json={
            "device_id": key,
            "location": {
                "timestamp": "2025-11-24T15:59:03.500Z",  # NOW_MS - 56.5 s
                "coords": {
                    "latitude": 31.24,
                    "longitude": 121.48,
                    "speed": 5.0,
                    "heading": -1,
                    "accuracy": 4,
                },
                "battery": {"level": 0.5, "is_charging": True},
            },
        },
    )
    for response in (posted, form, as_json):
        assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    positions = _positions(c, world, "car-a")
    assert [p["ts_ms"] for p in positions] == [
        TS_S * 1000,
        TS_S * 1000 + 1000,
        TS_S * 1000 + 2000,
        NOW_MS - 56_500,
    ]
    assert positions[0]["speed_kmh"] == pytest.approx(18.52)  # 10 kn
    assert positions[0]["heading_deg"] == 90 and positions[0]["altitude_m"] == 4
    assert positions[0]["gps_hdop"] == 0.9
    assert positions[3]["speed_kmh"] == pytest.approx(18.0) and positions[3]["heading_deg"] is None  # 5 m/s
    latest = c.get("/api/v1/vehicles/car-a", headers=bearer(world.tokens["ann"])).json()["latest"]
    assert "soc_pct" not in latest["signals"]  # the phone's 80 % is not the car's battery
    assert _positions(c, world, "car-b") == []

    again = c.get(f"/osmand?{_report(key, speed=10, bearing=90, altitude=4, hdop=0.9, batt=80)}")
    assert again.status_code == 200 and again.json()["duplicate"] == 1  # a phone's retry: stored once
    assert len(_positions(c, world, "car-a")) == 4


def test_a_key_moves_only_its_own_car(api: tuple[TestClient, World]) -> None:
    c, world = api
    key_a = _issue(c, world, "car-a")
    _issue(c, world, "car-b")
    # Naming car B in the report changes nothing: the key decides the car, not anything the phone says.
    response = c.get(f"/osmand?{_report(key_a, vehicle_id='car-b', deviceid=key_a)}")
    assert response.status_code == 200 and response.json()["results"][0]["vehicle_id"] == "car-a"
    assert _positions(c, world, "car-b") == []
    # Car B's public id, or its device credential, is no tracker key.
    for not_a_key in ("car-b", world.tokens["device_b"]):
        assert c.get(f"/osmand?{_report(not_a_key)}").status_code == 401
    assert _positions(c, world, "car-b") == []


def test_rotation_and_revocation_stop_the_old_key_at_once(
    api: tuple[TestClient, World], services: Services
) -> None:
    c, world = api
    old = _issue(c, world, "car-a", caller="olga")  # the operator of car-a's fleet
    assert c.get(f"/osmand?{_report(old)}").status_code == 200
    rotated = c.post(KEY_PATH.format("car-a"), headers=bearer(world.tokens["ann"])).json()
    new = rotated["tracker_key"]
    assert rotated["replaced"] is True and new != old
    refused = c.get(f"/osmand?{_report(old, TS_S + 1)}")
    assert refused.status_code == 401
    assert c.get(f"/osmand?{_report(new, TS_S + 1)}").json()["accepted"] == 1

    shown = c.get(KEY_PATH.format("car-a"), headers=bearer(world.tokens["ann"])).json()
    assert shown["key_hint"] == new[:8] + "…" and new not in str(shown)
    assert c.delete(KEY_PATH.format("car-a"), headers=bearer(world.tokens["ann"])).status_code == 204
    revoked = c.get(f"/osmand?{_report(new, TS_S + 2)}")
    missing = c.get(f"/osmand?{urlencode({'lat': 1, 'lon': 2})}")
    # Revoked, rotated, unknown or missing: one answer, nothing about which keys or cars exist.
    assert revoked.status_code == missing.status_code == 401
    assert revoked.json() == refused.json() == missing.json()
    assert c.get(KEY_PATH.format("car-a"), headers=bearer(world.tokens["ann"])).json()["key_hint"] is None
    assert [p["ts_ms"] for p in _positions(c, world, "car-a")] == [TS_S * 1000, TS_S * 1000 + 1000]
    counts = services.osmand_ingest.counts
    assert counts["accepted"] == 2 and counts["refused unknown key"] == 2 and counts["refused no key"] == 1


def test_who_manages_a_key(api: tuple[TestClient, World]) -> None:
    c, world = api
    path = KEY_PATH.format("car-a")
    assert c.post(path, headers=bearer(world.tokens["dan"])).status_code == 403  # a driver of car-a
    assert c.post(path, headers=bearer(world.tokens["bob"])).status_code == 404  # an owner of another car
    assert c.post(path, headers=bearer(world.tokens["device_a"])).status_code == 403  # the car's unit
    assert c.get(path, headers=bearer(world.tokens["dan"])).status_code == 403
    assert c.delete(path, headers=bearer(world.tokens["root"])).status_code == 404  # it has no key yet
    assert c.post(path).status_code == 401


def test_unknown_keys_are_throttled_like_bad_tokens(api: tuple[TestClient, World]) -> None:
    c, world = api
    key = _issue(c, world, "car-a")
    statuses = [c.get(f"/osmand?{_report(f'mft_guess{i}')}").status_code for i in range(BURST + 5)]
    assert statuses[:BURST] == [401] * BURST and statuses[-1] == 429
    assert c.get(f"/osmand?{_report(key)}").status_code == 200  # the real key is never throttled
    # One bucket for every credential: the guesses above also throttle bearer tokens from this address.
    assert c.get("/api/v1/vehicles", headers=bearer("mfu_guess")).status_code == 429


def test_a_bad_value_is_quarantined_with_its_reason_and_nothing_valid_is_lost(
    api: tuple[TestClient, World],
) -> None:
    c, world = api
    key = _issue(c, world, "car-a")
    bad = c.get(f"/osmand?{_report(key, lat='north')}")
    far = c.get(f"/osmand?{_report(key, TS_S + 1, lat=91)}")
    good = c.get(f"/osmand?{_report(key, TS_S + 2)}")
    assert [r.json()["rejected"] for r in (bad, far)] == [1, 1] and good.json()["accepted"] == 1
    assert bad.json()["results"][0]["reason"] == "wrong_type"
    assert far.json()["results"][0]["reason"] == "out_of_range"
    items = c.get("/api/v1/quarantine", headers=bearer(world.tokens["ann"])).json()["items"]
    assert [i["reason"] for i in items] == ["wrong_type", "out_of_range"]
    assert all(i["source"].startswith("osmand ") and i["credential_vehicle_id"] == "car-a" for i in items)
    assert "lat 'north' is not a decimal number" in items[0]["detail"]
    assert key not in items[0]["raw_text"] and "id=<redacted>" in items[0]["raw_text"]
    assert len(_positions(c, world, "car-a")) == 1

    unreadable = c.post("/osmand", content=b"{not json", headers={"Content-Type": "application/json"})
    assert unreadable.status_code == 422 and unreadable.json()["code"] == "invalid_input"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_real_servers_access_log_never_shows_a_key(services: Services) -> None:
    world = build_world(services)
    key = services.tracker_keys.issue("car-a", replace=False).key
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(services.settings, services), host="127.0.0.1", port=port, log_level="info")
    )
    lines = _Lines()
    access = logging.getLogger("uvicorn.access")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            thread.join(0.05)
        access.addHandler(lines)  # after uvicorn configured its loggers
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get(f"/osmand?{_report(key)}").status_code == 200
            assert (
                http.post(f"/osmand?{_report(key, TS_S + 1).replace('id=', 'deviceid=')}").status_code == 200
            )
            assert http.get("/api/v1/vehicles", headers=bearer(world.tokens["ann"])).status_code == 200
    finally:
        access.removeHandler(lines)
        server.should_exit = True
        thread.join(timeout=10)
    osmand = [line for line in lines.lines if "/osmand?" in line]
    assert len(osmand) == 2 and all(key not in line for line in osmand), lines.lines
    assert "id=<redacted>&timestamp=" in osmand[0] and "deviceid=<redacted>&timestamp=" in osmand[1]
    assert any("/api/v1/vehicles" in line for line in lines.lines)  # other lines pass untouched
