"""The quarantine is bounded (issue 10, item 3): raw text per row is capped, each vehicle keeps at most its
quota of rows, and a page of ``GET /api/v1/quarantine`` is bounded in bytes as well as rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings
from tests.integration.conftest import NOW_MS, FrozenClock
from tests.integration.world import World, bearer, build_world

RECORD_BYTES = 1024
QUOTA = 5
PAGE_BYTES = 4096


@pytest.fixture
def bounded(settings: Settings) -> Iterator[tuple[TestClient, World, Services]]:
    small = settings.model_copy(
        update={
            "ingest_max_record_bytes": RECORD_BYTES,
            "quarantine_max_rows_per_vehicle": QUOTA,
            "quarantine_page_max_bytes": PAGE_BYTES,
        }
    )
    services = build_services(small, clock=FrozenClock(NOW_MS))
    world = build_world(services)
    try:
        with TestClient(create_app(small, services)) as client:
            yield client, world, services
    finally:
        services.close()


def _post(client: TestClient, token: str, body: bytes) -> dict[str, Any]:
    response = client.post(
        "/api/v1/telemetry", content=body, headers={**bearer(token), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_raw_text_is_capped_and_the_detail_says_how_long_it_was(
    bounded: tuple[TestClient, World, Services],
) -> None:
    client, world, services = bounded
    body = b'{"vehicle_id": "car-a", "ts_ms": 17' + b"9" * 100_000  # not JSON: refused whole
    for _ in range(2):
        answer = _post(client, world.tokens["device_a"], body)
        [result] = answer["results"]
        assert (result["status"], result["reason"]) == ("rejected", "malformed_json")
    [row] = services.quarantine.list(vehicle_ids=None)  # capped, and still once
    assert len(row.raw_text.encode()) <= RECORD_BYTES
    assert body.decode().startswith(row.raw_text)
    assert str(len(body)) in row.detail
    assert hashlib.blake2b(body, digest_size=16).hexdigest() in row.detail
    # the same first kilobyte with another tail is another record: the key covers the whole text
    _post(client, world.tokens["device_a"], body + b"0")
    assert len(services.quarantine.list(vehicle_ids=None)) == 2
    # an oversize record in a batch is capped the same way
    big = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 1, "dtc_codes": ["P0A80"] * 2000}
    answer = _post(client, world.tokens["device_a"], json.dumps([big]).encode())
    assert answer["results"][0]["reason"] == "oversize_payload"
    rows = services.quarantine.list(vehicle_ids=None, reason="oversize_payload")
    assert len(rows) == 1 and len(rows[0].raw_text.encode()) <= RECORD_BYTES


def test_each_vehicle_keeps_its_newest_rows_up_to_its_quota(
    bounded: tuple[TestClient, World, Services],
) -> None:
    client, world, services = bounded
    for i in range(QUOTA + 3):
        record = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000 * (i + 1), "soc_pct": 400}
        answer = _post(client, world.tokens["device_a"], json.dumps([record]).encode())
        [result] = answer["results"]
        assert (result["status"], result["reason"]) == ("rejected", "out_of_range")  # dropped or not
    b_records = [{"vehicle_id": "car-b", "ts_ms": NOW_MS - 1000 * (i + 1), "soc_pct": 400} for i in range(2)]
    assert _post(client, world.tokens["device_b"], json.dumps(b_records).encode())["rejected"] == 2
    kept_a = services.quarantine.list(vehicle_ids=["car-a"], limit=100)
    assert [r.ts_ms for r in kept_a] == [NOW_MS - 1000 * (i + 1) for i in range(3, QUOTA + 3)]  # the newest
    assert len(services.quarantine.list(vehicle_ids=["car-b"], limit=100)) == 2  # another vehicle unaffected
    # one batch far over the quota still leaves the quota
    many = [{"vehicle_id": "car-a", "ts_ms": NOW_MS - 100_000 - i, "speed_kmh": 999} for i in range(40)]
    assert _post(client, world.tokens["device_a"], json.dumps(many).encode())["rejected"] == 40
    assert len(services.quarantine.list(vehicle_ids=["car-a"], limit=100)) == QUOTA
    assert len(services.quarantine.list(vehicle_ids=["car-b"], limit=100)) == 2


def test_replayed_rows_are_dropped_before_those_not_replayed(
    bounded: tuple[TestClient, World, Services],
) -> None:
    client, world, services = bounded
    records = [
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000 * (i + 1), "soc_pct": 400} for i in range(QUOTA)
    ]
    _post(client, world.tokens["device_a"], json.dumps(records).encode())
    rows = services.quarantine.list(vehicle_ids=None)
    newest = rows[-1]
    client.post(f"/api/v1/quarantine/{newest.quarantine_id}/replay", headers=bearer(world.tokens["root"]))
    _post(client, world.tokens["device_a"], json.dumps([dict(records[0], soc_pct=401)]).encode())
    kept = {r.quarantine_id for r in services.quarantine.list(vehicle_ids=None)}
    assert len(kept) == QUOTA and newest.quarantine_id not in kept and rows[0].quarantine_id in kept


def test_a_page_of_the_quarantine_api_stays_under_its_byte_bound(
    bounded: tuple[TestClient, World, Services],
) -> None:
    client, world, _ = bounded
    records = [
        {"vehicle_id": "car-b", "ts_ms": NOW_MS - 1000 * (i + 1), "soc_pct": 50, "note": "x" * 800}
        for i in range(QUOTA)
    ]
    answer = _post(client, world.tokens["device_b"], json.dumps(records).encode())
    assert answer["rejected"] == QUOTA  # unknown_field, about 900 bytes of text each
    seen: list[int] = []
    after_id = 0
    pages = 0
    while True:
        response = client.get(
            "/api/v1/quarantine",
            params={"after_id": after_id, "limit": 1000},
            headers=bearer(world.tokens["bob"]),
        )
        assert response.status_code == 200
        page = response.json()
        texts = sum(len(i["raw_text"].encode()) + len(i["detail"].encode()) for i in page["items"])
        assert page["items"] and texts <= PAGE_BYTES
        seen.extend(i["quarantine_id"] for i in page["items"])
        pages += 1
        if page["next_after_id"] is None:
            break
        after_id = page["next_after_id"]
    assert pages > 1
    assert sorted(seen) == seen and len(set(seen)) == QUOTA
