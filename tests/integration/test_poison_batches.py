"""One bad record never costs its neighbours: poison items among valid ones, on both stores (issue 10).

Each poison item (deep nesting, a lone surrogate escape, invalid UTF-8 inside a string) is quarantined
with its own reason, and the 100 valid records around it are stored, through the real API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world

START_MS = NOW_MS - 3_600_000


@pytest.fixture
def world(services: Services) -> World:
    return build_world(services)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def valid(n: int) -> list[bytes]:
    return [
        json.dumps({"vehicle_id": "car-a", "ts_ms": START_MS + i * 1000, "soc_pct": 50.0}).encode()
        for i in range(n)
    ]


POISON = {
    "deep_array": (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    "deep_inside_a_record": (
        b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, "a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "too_deep",
    ),
    "lone_surrogate": (b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, "gear": "\\udc00"}', "invalid_utf8"),
    "lone_surrogate_id": (b'{"vehicle_id": "\\udc00", "ts_ms": 1763990000000}', "invalid_utf8"),
    "lone_surrogate_key": (b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, "\\udc00": 1}', "invalid_utf8"),
    "invalid_utf8": (b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, "gear": "\xff\xfeD"}', "invalid_utf8"),
    "nul_in_a_key": (b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, "\\u0000": 1}', "unknown_field"),
}


def post(client: TestClient, token: str, body: bytes, content_type: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/telemetry", content=body, headers={**bearer(token), "content-type": content_type}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


@pytest.mark.parametrize("framing", ["array", "ndjson"])
@pytest.mark.parametrize("case", sorted(POISON))
def test_one_poison_record_among_100_costs_only_itself(
    client: TestClient, world: World, services: Services, case: str, framing: str
) -> None:
    poison, reason = POISON[case]
    items = valid(100)
    items.insert(37, poison)
    if framing == "array":
        body, content_type = b"[" + b",".join(items) + b"]", "application/json"
    else:
        body, content_type = b"\n".join(items), "application/x-ndjson"
    answer = post(client, world.tokens["device_a"], body, content_type)
    assert (answer["accepted"], answer["rejected"]) == (100, 1)
    results = answer["results"]
    assert isinstance(results, list) and len(results) == 101
    assert results[37]["status"] == "rejected" and results[37]["reason"] == reason, results[37]
    assert services.telemetry.count("car-a") == 100
    [kept] = services.quarantine.list(vehicle_ids=None)
    assert kept.reason == reason
    assert "\x00" not in kept.raw_text + kept.detail
    kept.raw_text.encode("utf-8")  # storable text: no lone surrogate
    kept.detail.encode("utf-8")
    # A device that retries the same body is no longer stuck: its records are duplicates now.
    again = post(client, world.tokens["device_a"], body, content_type)
    assert (again["duplicate"], again["rejected"]) == (100, 1)


def test_invalid_utf8_is_kept_with_backslash_escapes(
    client: TestClient, world: World, services: Services
) -> None:
    body = b'[{"vehicle_id": "car-a", "ts_ms": 1763990000000, "gear": "\xff"}]'
    post(client, world.tokens["device_a"], body, "application/json")
    [kept] = services.quarantine.list(vehicle_ids=None)
    assert kept.reason == "invalid_utf8"
    assert kept.raw_text == '{"vehicle_id": "car-a", "ts_ms": 1763990000000, "gear": "\\xff"}'
    assert "\\xNN" in kept.detail


def test_a_truncated_array_keeps_its_complete_records(
    client: TestClient, world: World, services: Services
) -> None:
    body = b"[" + b",".join(valid(10)) + b', {"vehicle_id": "car-a", "ts_'
    answer = post(client, world.tokens["device_a"], body, "application/json")
    assert (answer["accepted"], answer["rejected"]) == (10, 1)
    assert services.telemetry.count("car-a") == 10
    [kept] = services.quarantine.list(vehicle_ids=None)
    assert (kept.reason, kept.raw_text) == ("malformed_json", '{"vehicle_id": "car-a", "ts_')


def test_a_million_element_array_is_refused_by_count(client: TestClient, world: World) -> None:
    body = b"[" + b",".join([b"1"] * 1_000_000) + b"]"
    response = client.post(
        "/api/v1/telemetry",
        content=body,
        headers={**bearer(world.tokens["device_a"]), "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
