"""The authorization matrix: every endpoint × every kind of caller gets the right answer, on both stores."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.places import Circle, Place, PlaceKind
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world

CALLERS = ["nobody", "bob", "dan", "olga", "root", "device_b", "ann", "device_a"]
RECORD = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 60_000, "soc_pct": 55.0, "lat_deg": 31.2, "lon_deg": 121.4}
CIRCLE = {"type": "circle", "lat_deg": 31.2, "lon_deg": 121.4, "radius_m": 100}
# One place of each scope: car-a is in fleet city-share, car-b in none.
PLACES = {
    "everywhere": (None, None),
    "depot": (None, "city-share"),
    "home-a": ("car-a", None),
    "home-b": ("car-b", None),
}

# caller → (status, what the body shows: the reason or status, the vehicle ids, or how many items).
EXPECTED: dict[str, dict[str, tuple[int, object]]] = {
    "post telemetry": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (403, None),
        "device_b": (200, "vehicle_mismatch"),
        "ann": (403, None),
        "device_a": (200, "accepted"),
    },
    "list vehicles": {
        "nobody": (401, None),
        "bob": (200, ["car-b"]),
        "dan": (200, ["car-a"]),
        "olga": (200, ["car-a"]),
        "root": (200, ["car-a", "car-b"]),
        "device_b": (403, None),
        "ann": (200, ["car-a"]),
        "device_a": (403, None),
    },
    "vehicle detail": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, "car-a"),
        "olga": (200, "car-a"),
        "root": (200, "car-a"),
        "device_b": (403, None),
        "ann": (200, "car-a"),
        "device_a": (403, None),
    },
    "positions": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, 1),
        "olga": (200, 1),
        "root": (200, 1),
        "device_b": (403, None),
        "ann": (200, 1),
        "device_a": (403, None),
    },
    "excluded records": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, 0),
        "olga": (200, 0),
        "root": (200, 0),
        "device_b": (403, None),
        "ann": (200, 0),
        "device_a": (403, None),
    },
    "quarantine": {
        "nobody": (401, None),
        "bob": (200, 0),
        "dan": (403, None),
        "olga": (200, 1),
        "root": (200, 1),
        "device_b": (403, None),
        "ann": (200, 1),
        "device_a": (403, None),
    },
    "create place": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (201, "car-a"),
        "root": (201, "car-a"),
        "device_b": (403, None),
        "ann": (201, "car-a"),
        "device_a": (403, None),
    },
    "create fleet place": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (201, "city-share"),
        "root": (201, "city-share"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "create global place": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (201, "global"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "list places": {
        "nobody": (401, None),
        "bob": (200, ["everywhere", "home-b"]),
        "dan": (200, ["depot", "everywhere", "home-a"]),
        "olga": (200, ["depot", "everywhere", "home-a"]),
        "root": (200, ["depot", "everywhere", "home-a", "home-b"]),
        "device_b": (403, None),
        "ann": (200, ["depot", "everywhere", "home-a"]),
        "device_a": (403, None),
    },
    "delete vehicle place": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (204, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (204, None),
        "device_a": (403, None),
    },
    "delete fleet place": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (204, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "delete global place": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "suggested places": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, 0),
        "olga": (200, 0),
        "root": (200, 0),
        "device_b": (403, None),
        "ann": (200, 0),
        "device_a": (403, None),
    },
    "place events": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, ["depot", "everywhere", "home-a"]),
        "olga": (200, ["depot", "everywhere", "home-a"]),
        "root": (200, ["depot", "everywhere", "home-a"]),
        "device_b": (403, None),
        "ann": (200, ["depot", "everywhere", "home-a"]),
        "device_a": (403, None),
    },
    "zone summary": {
        "nobody": (401, None),
        "bob": (200, 0),
        "dan": (200, 0),
        "olga": (200, 0),
        "root": (200, 0),
        "device_b": (403, None),
        "ann": (200, 0),
        "device_a": (403, None),
    },
    # car-a is in olga's fleet: its operator and admins rotate its credential; a grant is not enough.
    "rotate device credential": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (200, "car-a"),
        "root": (200, "car-a"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "replay": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (200, "rejected"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: list": {
        "nobody": (401, None),
        "bob": (200, ["t-everywhere", "t-home-b"]),
        "dan": (200, ["t-depot", "t-everywhere", "t-home-a"]),
        "olga": (200, ["t-depot", "t-everywhere", "t-home-a"]),
        "root": (200, ["t-depot", "t-everywhere", "t-home-a", "t-home-b"]),
        "device_b": (403, None),
        "ann": (200, ["t-depot", "t-everywhere", "t-home-a"]),
        "device_a": (403, None),
    },
    "tariff: detail": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (200, "t-home-a"),
        "olga": (200, "t-home-a"),
        "root": (200, "t-home-a"),
        "device_b": (403, None),
        "ann": (200, "t-home-a"),
        "device_a": (403, None),
    },
    "tariff: create for a vehicle": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (201, "car-a"),
        "root": (201, "car-a"),
        "device_b": (403, None),
        "ann": (201, "car-a"),
        "device_a": (403, None),
    },
    "tariff: create for a fleet": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (201, "city-share"),
        "root": (201, "city-share"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: create global": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (201, "global"),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: replace a vehicle's": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (200, "t-home-a"),
        "root": (200, "t-home-a"),
        "device_b": (403, None),
        "ann": (200, "t-home-a"),
        "device_a": (403, None),
    },
    "tariff: replace a built-in": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (403, None),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: delete a vehicle's": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (204, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (204, None),
        "device_a": (403, None),
    },
    "tariff: delete a fleet's": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (204, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: delete a global one": {
        "nobody": (401, None),
        "bob": (403, None),
        "dan": (403, None),
        "olga": (403, None),
        "root": (204, None),
        "device_b": (403, None),
        "ann": (403, None),
        "device_a": (403, None),
    },
    "tariff: upload day-ahead prices": {
        "nobody": (401, None),
        "bob": (404, None),
        "dan": (403, None),
        "olga": (200, 1),
        "root": (200, 1),
        "device_b": (403, None),
        "ann": (200, 1),
        "device_a": (403, None),
    },
}


@pytest.fixture
def world_client(services: Services) -> Iterator[tuple[World, TestClient, int]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as client:
        ok = client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(world.tokens["device_a"]))
        assert ok.json()["accepted"] == 1
        refused = client.post(
            "/api/v1/telemetry",
            json=[{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1, "soc_pct": 400}],
            headers=bearer(world.tokens["device_a"]),
        )
        assert refused.json()["rejected"] == 1
        quarantine_id = services.quarantine.list(vehicle_ids=None)[0].quarantine_id
        for name, (vehicle_id, fleet_id) in PLACES.items():
            place = Place(name, name, PlaceKind.OTHER, Circle(31.2, 121.4, 100))
            services.places.put(place, vehicle_id=vehicle_id, fleet_id=fleet_id)
        yield world, client, quarantine_id


def _call(
    client: TestClient,
    endpoint: str,
    headers: dict[str, str],
    quarantine_id: int,
    admin: dict[str, str],
    world: World,
) -> tuple[int, object]:
    if endpoint == "post telemetry":
        record = dict(RECORD, ts_ms=NOW_MS - 30_000)
        response = client.post("/api/v1/telemetry", json=[record], headers=headers)
        shown = lambda b: b["results"][0]["reason"] or b["results"][0]["status"]  # noqa: E731
    elif endpoint == "list vehicles":
        response = client.get("/api/v1/vehicles", headers=headers)
        shown = lambda b: [v["vehicle_id"] for v in b]  # noqa: E731
    elif endpoint == "vehicle detail":
        response = client.get("/api/v1/vehicles/car-a", headers=headers)
        shown = lambda b: b["vehicle_id"]  # noqa: E731
    elif endpoint == "positions":
        response = client.get(
            "/api/v1/vehicles/car-a/positions", params={"from_ms": 0, "to_ms": NOW_MS}, headers=headers
        )
        shown = lambda b: len(b["positions"])  # noqa: E731
    elif endpoint == "excluded records":
        response = client.get("/api/v1/vehicles/car-a/excluded-records", headers=headers)
        shown = len
    elif endpoint == "quarantine":
        response = client.get("/api/v1/quarantine", headers=headers)
        shown = lambda b: len(b["items"])  # noqa: E731
    elif endpoint.startswith("create"):
        scope = {"create place": {"vehicle_id": "car-a"}, "create fleet place": {"fleet_id": "city-share"}}
        place = {"name": "Gate", "geometry": CIRCLE, **scope.get(endpoint, {"is_global": True})}
        response = client.post("/api/v1/places", json=place, headers=headers)
        shown = lambda b: b["vehicle_id"] or b["fleet_id"] or b["scope"]  # noqa: E731
    elif endpoint == "list places":
        response = client.get("/api/v1/places", headers=headers)
        shown = lambda b: sorted(p["place_id"] for p in b)  # noqa: E731
    elif endpoint.startswith("delete"):
        scope = {
            "delete vehicle place": {"vehicle_id": "car-a"},
            "delete fleet place": {"fleet_id": "city-share"},
        }
        place = {"name": "Gate", "geometry": CIRCLE, **scope.get(endpoint, {"is_global": True})}
        place_id = client.post("/api/v1/places", json=place, headers=admin).json()["place_id"]
        response = client.delete(f"/api/v1/places/{place_id}", headers=headers)
        if response.status_code == 204:
            return 204, None
    elif endpoint == "suggested places":
        response = client.get("/api/v1/vehicles/car-a/places/suggested", headers=headers)
        shown = len
    elif endpoint == "place events":
        window = {"from_ms": 0, "to_ms": NOW_MS}
        response = client.get("/api/v1/vehicles/car-a/place-events", params=window, headers=headers)
        shown = lambda b: b["inside_at_start"]  # noqa: E731
    elif endpoint == "zone summary":
        response = client.get("/api/v1/fleet/summary/zones", headers=headers)
        shown = len
    elif endpoint == "rotate device credential":
        response = client.post("/api/v1/vehicles/car-a/device-credential", headers=headers)
        if response.status_code == 200:
            # The car takes its new credential, as a car must before the overlap ends: two rotations end
            # the first credential, and device_a is still to call.
            world.tokens["device_a"] = response.json()["device_credential"]
        shown = lambda b: b["vehicle_id"]  # noqa: E731
    elif endpoint.startswith("tariff: "):
        response, shown = _call_tariffs(client, endpoint, headers, admin)
        if response.status_code == 204:
            return 204, None
    else:
        response = client.post(f"/api/v1/quarantine/{quarantine_id}/replay", headers=headers)
        shown = lambda b: b["status"]  # noqa: E731
    body = response.json()
    if response.status_code not in (200, 201):
        assert set(body) == {"code", "message"} and body["message"], body
        return response.status_code, None
    return response.status_code, shown(body)


# One user tariff of each scope, created by the admin on first use (car-a is in city-share, car-b in none).
TARIFFS = {"t-everywhere": {"is_global": True}, "t-depot": {"fleet_id": "city-share"},
           "t-home-a": {"vehicle_id": "car-a"}, "t-home-b": {"vehicle_id": "car-b"}}  # fmt: skip
TARIFF = {"kind": "per_kwh", "currency": "EUR", "price_per_kwh": 0.3}
DAY_AHEAD = {"kind": "day_ahead", "currency": "EUR", "timezone": "Europe/Paris"}


def _call_tariffs(
    client: TestClient, endpoint: str, headers: dict[str, str], admin: dict[str, str]
) -> tuple[Any, Callable[[Any], object]]:
    for tariff_id, scope in TARIFFS.items():
        client.post("/api/v1/tariffs", json={"tariff_id": tariff_id, **TARIFF, **scope}, headers=admin)
    scopes = {
        "vehicle": {"vehicle_id": "car-a"},
        "fleet": {"fleet_id": "city-share"},
        "global": {"is_global": True},
    }
    fresh = f"t-{secrets.token_hex(6)}"
    if endpoint == "tariff: list":
        response = client.get("/api/v1/tariffs", headers=headers)
        return response, lambda b: sorted(t["tariff_id"] for t in b if t["scope"] != "builtin")
    if endpoint == "tariff: detail":
        return client.get("/api/v1/tariffs/t-home-a", headers=headers), lambda b: b["tariff_id"]
    if endpoint.startswith("tariff: create"):
        scope = scopes["vehicle" if "vehicle" in endpoint else "fleet" if "fleet" in endpoint else "global"]
        response = client.post(
            "/api/v1/tariffs", json={"tariff_id": fresh, **TARIFF, **scope}, headers=headers
        )
        return response, lambda b: b["vehicle_id"] or b["fleet_id"] or b["scope"]
    if endpoint == "tariff: replace a vehicle's":
        return client.put("/api/v1/tariffs/t-home-a", json=TARIFF, headers=headers), lambda b: b["tariff_id"]
    if endpoint == "tariff: replace a built-in":
        return client.put("/api/v1/tariffs/cn_sh_residential_tou", json=TARIFF, headers=headers), len
    if endpoint.startswith("tariff: delete"):
        scope = scopes["vehicle" if "vehicle" in endpoint else "fleet" if "fleet" in endpoint else "global"]
        client.post("/api/v1/tariffs", json={"tariff_id": fresh, **TARIFF, **scope}, headers=admin)
        return client.delete(f"/api/v1/tariffs/{fresh}", headers=headers), len
    client.post("/api/v1/tariffs", json={"tariff_id": fresh, **DAY_AHEAD, **scopes["vehicle"]}, headers=admin)
    csv_text = "start,price_per_kwh\n2025-11-24T00:00Z,0.1\n"
    response = client.post(
        f"/api/v1/tariffs/{fresh}/day-ahead",
        content=csv_text,
        headers={**headers, "Content-Type": "text/csv"},
    )
    return response, lambda b: b["read"]


@pytest.mark.parametrize("endpoint", list(EXPECTED))
def test_authorization_matrix(endpoint: str, world_client: tuple[World, TestClient, int]) -> None:
    world, client, quarantine_id = world_client
    got = {}
    for caller in CALLERS:
        headers = {} if caller == "nobody" else bearer(world.tokens[caller])
        got[caller] = _call(client, endpoint, headers, quarantine_id, bearer(world.tokens["root"]), world)
    assert got == EXPECTED[endpoint]


def test_a_wrong_or_revoked_token_is_refused(
    world_client: tuple[World, TestClient, int], services: Services
) -> None:
    world, client, _ = world_client
    assert client.get("/api/v1/vehicles", headers=bearer("mfu_not-a-token")).status_code == 401
    assert client.get("/api/v1/vehicles", headers={"Authorization": "Basic abc"}).status_code == 401
    services.admin.revoke_tokens("ann")
    response = client.get("/api/v1/vehicles", headers=bearer(world.tokens["ann"]))
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    new_device = services.accounts.rotate_device_credential("car-a", end_previous_now=True).token
    old = client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(world.tokens["device_a"]))
    assert old.status_code == 401
    fresh = client.post("/api/v1/telemetry", json=[RECORD], headers=bearer(new_device))
    assert fresh.json()["duplicate"] == 1


def test_tokens_are_stored_only_hashed(
    world_client: tuple[World, TestClient, int], services: Services
) -> None:
    world, _, _ = world_client
    from sqlalchemy import text

    with services.engine.connect() as conn:
        stored = " ".join(
            str(row) for t in ("api_tokens", "vehicles") for row in conn.execute(text(f"SELECT * FROM {t}"))
        )
    for token in world.tokens.values():
        assert token not in stored
