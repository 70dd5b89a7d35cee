"""The quarantine keeps a refused record once, like telemetry: the same bytes from the same credential for
the same reason are one row, however often and however concurrently they are sent (issue 10, item 2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings
from tests.integration.conftest import NOW_MS, FrozenClock
from tests.integration.world import World, bearer, build_world


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as client:
        yield client, world


def _post(client: TestClient, token: str, body: bytes) -> dict[str, Any]:
    response = client.post(
        "/api/v1/telemetry", content=body, headers={**bearer(token), "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_refused_record_sent_twice_is_one_row_and_rejected_both_times(
    api: tuple[TestClient, World], services: Services
) -> None:
    client, world = api
    body = json.dumps([{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000, "soc_pct": 400}]).encode()
    answers = [_post(client, world.tokens["device_a"], body) for _ in range(2)]
    for answer in answers:
        [result] = answer["results"]
        assert (result["status"], result["reason"]) == ("rejected", "out_of_range")
        assert result["detail"]
    assert len(services.quarantine.list(vehicle_ids=None)) == 1


def test_what_makes_the_same_refused_record(api: tuple[TestClient, World], services: Services) -> None:
    """Same bytes, credential and reason: one row; change any of them and it is another record."""
    client, world = api
    record = {"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000, "soc_pct": 400}
    _post(client, world.tokens["device_a"], json.dumps([record]).encode())
    # the same record inside another batch, at another index: the same refused bytes
    _post(
        client,
        world.tokens["device_a"],
        json.dumps([{"vehicle_id": "car-a", "ts_ms": NOW_MS - 5000}, record]).encode(),
    )
    _post(client, world.tokens["device_a"], json.dumps([dict(record, soc_pct=401)]).encode())  # other bytes
    _post(client, world.tokens["device_b"], json.dumps([record]).encode())  # another credential
    rows = services.quarantine.list(vehicle_ids=None)
    assert sorted((r.credential_vehicle_id, r.reason) for r in rows) == [
        ("car-a", "out_of_range"),
        ("car-a", "out_of_range"),
        ("car-b", "out_of_range"),
    ]
    # a malformed body sent twice: one row
    for _ in range(2):
        _post(client, world.tokens["device_a"], b'[{"vehicle_id": "car-a", "ts_ms": 17')
    assert len(services.quarantine.list(vehicle_ids=None, reason="malformed_json")) == 1


def test_a_batch_raced_to_two_servers_on_one_store_quarantines_each_record_once(settings: Settings) -> None:
    first = build_services(settings, clock=FrozenClock(NOW_MS))
    token = first.admin.add_vehicle("car-a")
    first.close()
    batch = json.dumps(
        [{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000 * i, "soc_pct": 400 + i} for i in range(100)]
    ).encode()
    servers = [build_services(settings, migrate=False, clock=FrozenClock(NOW_MS)) for _ in range(2)]
    start = threading.Barrier(2)
    answers: list[int] = []
    errors: list[BaseException] = []

    def send(server: Services) -> None:
        try:
            start.wait()
            with TestClient(create_app(server.settings, server)) as client:
                answers.append(_post(client, token, batch)["rejected"])
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(server,)) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors, errors
        assert answers == [100, 100]
        rows = servers[0].quarantine.list(vehicle_ids=None, limit=1000)
        assert len(rows) == 100
        assert len({r.ts_ms for r in rows}) == 100
    finally:
        for server in servers:
            server.close()


def test_replay_still_works_and_never_adds_a_row(api: tuple[TestClient, World], services: Services) -> None:
    client, world = api
    future = json.dumps([{"vehicle_id": "car-a", "ts_ms": NOW_MS + 3_600_000, "soc_pct": 50}]).encode()
    bad = json.dumps([{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000, "soc_pct": 400}]).encode()
    _post(client, world.tokens["device_a"], future)
    _post(client, world.tokens["device_a"], bad)
    early, still_bad = services.quarantine.list(vehicle_ids=None)
    replay = f"/api/v1/quarantine/{still_bad.quarantine_id}/replay"
    assert client.post(replay, headers=bearer(world.tokens["root"])).json()["status"] == "rejected"
    _post(client, world.tokens["device_a"], bad)  # re-sent after its replay: still the one row
    assert len(services.quarantine.list(vehicle_ids=None)) == 2
    services.clock.now_ms = NOW_MS + 3_600_000  # type: ignore[attr-defined]  # the server clock is fixed
    replay = f"/api/v1/quarantine/{early.quarantine_id}/replay"
    assert client.post(replay, headers=bearer(world.tokens["root"])).json()["status"] == "accepted"
    assert services.telemetry.count("car-a") == 1
    again = _post(client, world.tokens["device_a"], future)
    assert again["duplicate"] == 1  # now stored, so a re-send is a duplicate, not a refusal
    assert len(services.quarantine.list(vehicle_ids=None)) == 2
    assert services.quarantine.get(early.quarantine_id).replay_status == "accepted"
