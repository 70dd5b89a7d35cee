"""Ingest → store → API on SQLite and PostgreSQL: exactly-once storage, quarantine, reads."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world


@pytest.fixture
def world(services: Services) -> World:
    return build_world(services)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def trip(vehicle_id: str, n: int, start_ms: int = NOW_MS - 3_600_000) -> list[dict[str, object]]:
    return [
        {
            "vehicle_id": vehicle_id,
            "ts_ms": start_ms + i * 5000,
            "lat_deg": 31.23 + i * 1e-4,
            "lon_deg": 121.47 + i * 1e-4,
            "speed_kmh": 20.0 + i % 7,
            "soc_pct": 80.0 - i * 0.01,
            "gear": "D",
            "tyre_pressure_kpa": [230.0, 231.0, 229.5, 230.0],
            "dtc_codes": ["P0A80"] if i == 3 else [],
        }
        for i in range(n)
    ]


def post(client: TestClient, token: str, records: object) -> dict[str, object]:
    response = client.post("/api/v1/telemetry", json=records, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_batch_is_stored_once_and_a_resend_is_counted_as_duplicates(
    client: TestClient, world: World, services: Services
) -> None:
    records = trip("car-a", 50)
    first = post(client, world.tokens["device_a"], records)
    assert (first["accepted"], first["duplicate"], first["rejected"]) == (50, 0, 0)
    again = post(client, world.tokens["device_a"], records)
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 50, 0)
    assert services.telemetry.count("car-a") == 50
    stored = list(services.telemetry.records("car-a", 0, 2**62))
    assert [r.ts_ms for r in stored] == [r["ts_ms"] for r in records]
    assert stored[3].dtc_codes == ["P0A80"] and stored[0].tyre_pressure_kpa == [230.0, 231.0, 229.5, 230.0]


def test_a_conflicting_resend_is_quarantined_and_the_stored_record_kept(
    client: TestClient, world: World, services: Services
) -> None:
    records = trip("car-a", 3)
    post(client, world.tokens["device_a"], records)
    changed = dict(records[1], soc_pct=12.0)
    body = post(client, world.tokens["device_a"], [changed])
    result = body["results"][0]  # type: ignore[index]
    assert result["status"] == "rejected" and result["reason"] == "conflicting_duplicate"
    assert [
        r.soc_pct for r in services.telemetry.records("car-a", records[1]["ts_ms"], records[1]["ts_ms"] + 1)
    ] == [79.99]
    quarantined = services.quarantine.list(vehicle_ids=None)
    assert [q.reason for q in quarantined] == ["conflicting_duplicate"]
    assert json.loads(quarantined[0].raw_text)["soc_pct"] == 12.0


def test_out_of_order_records_are_accepted_and_read_back_in_time_order(
    client: TestClient, world: World, services: Services
) -> None:
    records = trip("car-a", 40)
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    body = post(client, world.tokens["device_a"], shuffled)
    assert body["accepted"] == 40
    page = client.get(
        "/api/v1/vehicles/car-a/positions",
        params={"from_ms": 0, "to_ms": NOW_MS, "limit": 15},
        headers=bearer(world.tokens["ann"]),
    ).json()
    assert [p["ts_ms"] for p in page["positions"]] == [r["ts_ms"] for r in records[:15]]
    assert page["next_from_ms"] == records[15]["ts_ms"]
    rest = client.get(
        "/api/v1/vehicles/car-a/positions",
        params={"from_ms": page["next_from_ms"], "to_ms": NOW_MS, "limit": 100},
        headers=bearer(world.tokens["ann"]),
    ).json()
    assert len(rest["positions"]) == 25 and rest["next_from_ms"] is None


def test_every_bad_record_gets_its_reason_and_its_neighbours_are_kept(
    client: TestClient, world: World, services: Services
) -> None:
    good = trip("car-a", 2)
    bad = [
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000, "soc_pct": 101},
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 2000, "speed_kmh": 251},
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 3000, "lat_deg": -90.5},
        {"vehicle_id": "car-a", "ts_ms": NOW_MS + 301_000},
        {"vehicle_id": "car-a", "ts_ms": 1_200_000_000_000},
        {"vehicle_id": "car-a"},
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 4000, "gear": "X"},
        {"vehicle_id": "car-b", "ts_ms": NOW_MS - 5000},
        {"vehicle_id": "car-zz", "ts_ms": NOW_MS - 6000},
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 7000, "wheels": 4},
        "not a record",
    ]
    body = post(client, world.tokens["device_a"], [good[0], *bad, good[1]])
    reasons = [r["reason"] for r in body["results"]]  # type: ignore[union-attr]
    assert reasons == [
        None,
        "out_of_range",
        "out_of_range",
        "out_of_range",
        "timestamp_in_future",
        "timestamp_too_old",
        "missing_field",
        "wrong_type",
        "vehicle_mismatch",
        "vehicle_mismatch",  # an unknown id answers as a foreign one: a credential cannot probe ids
        "unknown_field",
        "not_an_object",
        None,
    ]
    assert services.telemetry.count("car-a") == 2 and services.telemetry.count("car-b") == 0
    assert len(services.quarantine.list(vehicle_ids=None, limit=100)) == len(bad)


def test_nan_and_malformed_bodies_are_quarantined_verbatim(
    client: TestClient, world: World, services: Services
) -> None:
    nan_body = b'[{"vehicle_id": "car-a", "ts_ms": 1763996400000, "soc_pct": NaN}]'
    response = client.post(
        "/api/v1/telemetry",
        content=nan_body,
        headers={**bearer(world.tokens["device_a"]), "content-type": "application/json"},
    )
    assert response.json()["results"][0]["reason"] == "not_finite"
    broken = b'[{"vehicle_id": "car-a", "ts_ms": 17'
    response = client.post(
        "/api/v1/telemetry",
        content=broken,
        headers={**bearer(world.tokens["device_a"]), "content-type": "application/json"},
    )
    assert response.json()["results"][0]["reason"] == "malformed_json"
    kept = services.quarantine.list(vehicle_ids=None)
    assert kept[-1].raw_text == broken.decode()


def test_ndjson_batches_are_accepted_line_by_line(
    client: TestClient, world: World, services: Services
) -> None:
    lines = [json.dumps(r) for r in trip("car-a", 5)] + ["{oops"]
    response = client.post(
        "/api/v1/telemetry",
        content="\n".join(lines).encode(),
        headers={**bearer(world.tokens["device_a"]), "content-type": "application/x-ndjson"},
    )
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (5, 1)
    assert services.quarantine.list(vehicle_ids=None)[0].raw_text == "{oops"


def test_oversize_bodies_and_batches_are_refused_with_413(
    client: TestClient, world: World, services: Services
) -> None:
    too_many = trip("car-a", services.settings.ingest_max_batch_records + 1)
    response = client.post("/api/v1/telemetry", json=too_many, headers=bearer(world.tokens["device_a"]))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    huge = b"[" + b" " * (services.settings.ingest_max_body_bytes + 1) + b"]"
    response = client.post("/api/v1/telemetry", content=huge, headers=bearer(world.tokens["device_a"]))
    assert response.status_code == 413
    assert services.telemetry.count() == 0


def test_vehicle_detail_shows_the_newest_value_of_each_signal(client: TestClient, world: World) -> None:
    post(
        client,
        world.tokens["device_a"],
        [
            {"vehicle_id": "car-a", "ts_ms": NOW_MS - 20_000, "soc_pct": 70.0, "locked": True},
            {"vehicle_id": "car-a", "ts_ms": NOW_MS - 10_000, "soc_pct": 69.5},
        ],
    )
    post(
        client, world.tokens["device_a"], [{"vehicle_id": "car-a", "ts_ms": NOW_MS - 30_000, "soc_pct": 71.0}]
    )
    body = client.get("/api/v1/vehicles/car-a", headers=bearer(world.tokens["ann"])).json()
    signals = body["latest"]["signals"]
    assert signals["soc_pct"] == {"value": 69.5, "ts_ms": NOW_MS - 10_000}  # a late record does not win
    assert signals["locked"] == {"value": True, "ts_ms": NOW_MS - 20_000}
    assert body["latest"]["record_count"] == 3


def test_a_quarantined_record_is_stored_when_replayed_after_the_fix(
    client: TestClient, world: World, services: Services
) -> None:
    post(
        client,
        world.tokens["device_a"],
        [{"vehicle_id": "car-a", "ts_ms": NOW_MS + 3_600_000, "soc_pct": 50}],
    )
    entry = services.quarantine.list(vehicle_ids=None)[0]
    assert entry.reason == "timestamp_in_future"
    response = client.post(
        f"/api/v1/quarantine/{entry.quarantine_id}/replay", headers=bearer(world.tokens["root"])
    )
    assert response.json()["status"] == "rejected"  # still in the future: stays quarantined, no new row
    services.clock.now_ms = NOW_MS + 3_600_000  # type: ignore[attr-defined]  # the server clock was wrong; fixed
    response = client.post(
        f"/api/v1/quarantine/{entry.quarantine_id}/replay", headers=bearer(world.tokens["root"])
    )
    assert response.json()["status"] == "accepted"
    assert services.telemetry.count("car-a") == 1
    assert len(services.quarantine.list(vehicle_ids=None)) == 1
    assert services.quarantine.get(entry.quarantine_id).replay_status == "accepted"  # type: ignore[union-attr]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["schema_revision"]


def test_errors_are_json_with_a_code_and_a_sentence(client: TestClient, world: World) -> None:
    response = client.get(
        "/api/v1/vehicles/car-a/positions",
        params={"from_ms": 10, "to_ms": 5},
        headers=bearer(world.tokens["ann"]),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input" and "to_ms" in response.json()["message"]
    response = client.get("/api/v1/vehicles/car-a/positions", headers=bearer(world.tokens["ann"]))
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"


def test_a_drive_sent_over_http_is_derived_off_the_request_path(
    client: TestClient, world: World, services: Services
) -> None:
    start = NOW_MS - 3_600_000
    driving = [
        {
            "vehicle_id": "car-a",
            "ts_ms": start + i * 5000,
            "gear": "D",
            "ignition_on": True,
            "speed_kmh": 30.0,
            "odometer_km": 1000 + i * 5 * 30 / 3600,
            "soc_pct": 80 - i * 0.05,
            "lat_deg": 31.2 + i * 4e-4,
            "lon_deg": 121.47,
            "pack_voltage_v": 100.0,
            "pack_current_a": 40.0,
        }
        for i in range(120)
    ]
    parked = [
        {
            "vehicle_id": "car-a",
            "ts_ms": start + 600_000 + i * 60_000,
            "gear": "P",
            "ignition_on": False,
            "speed_kmh": 0.0,
            "odometer_km": 1005.0,
            "soc_pct": 74.0,
            "pack_voltage_v": 100.0,
            "pack_current_a": 0.2,
        }
        for i in range(15)
    ]
    assert post(client, world.tokens["device_a"], driving + parked)["accepted"] == 135
    assert services.derivations.pending() == 1  # queued, not derived while the device waited
    services.derivations.run_pending()
    drives = client.get("/api/v1/vehicles/car-a/drives", headers=bearer(world.tokens["ann"])).json()
    assert len(drives) == 1
    assert drives[0]["start_ts_ms"] == start
    assert 4.5 < drives[0]["distance_odometer_km"] < 5.5
    assert drives[0]["energy_used_kwh"] > 0
    assert client.get("/api/v1/vehicles/car-a/drives", headers=bearer(world.tokens["bob"])).status_code == 404


def test_stale_history_survives_a_restart_and_is_derived_once(services: Services, world: World) -> None:
    from microfleet.bootstrap import build_services

    records = [
        {
            "vehicle_id": "car-a",
            "ts_ms": NOW_MS - 3_600_000 + i * 5000,
            "gear": "D",
            "speed_kmh": 25.0,
            "odometer_km": 10 + i * 25 * 5 / 3600,
            "lat_deg": 31.2 + i * 3e-4,
            "lon_deg": 121.47,
        }
        for i in range(100)
    ] + [
        {"vehicle_id": "car-a", "ts_ms": NOW_MS - 2_000_000 + i * 60_000, "gear": "P", "speed_kmh": 0.0}
        for i in range(10)
    ]
    report = services.ingest.ingest(
        json.dumps(records).encode(),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=NOW_MS,
    )
    assert report.accepted == 110
    restarted = build_services(services.settings)  # the process died before deriving; a new one starts
    try:
        assert restarted.derivations.pending() == 1
        first = restarted.derivations.run_pending()
        assert [r.drives for r in first] == [1]
        assert restarted.derivations.run_pending() == []  # claimed once, not again
    finally:
        restarted.close()


def test_a_gps_jump_is_excluded_with_a_reason_and_shown_to_the_owner(
    client: TestClient, world: World, services: Services
) -> None:
    start = NOW_MS - 3_600_000
    records = [
        {
            "vehicle_id": "car-a",
            "ts_ms": start + i * 5000,
            "gear": "D",
            "speed_kmh": 30.0,
            "odometer_km": 100 + i * 30 * 5 / 3600,
            "lat_deg": 31.2 + i * 4e-4,
            "lon_deg": 121.47,
        }
        for i in range(120)
    ] + [
        {"vehicle_id": "car-a", "ts_ms": start + 600_000 + i * 60_000, "gear": "P", "speed_kmh": 0.0}
        for i in range(10)
    ]
    records[60]["lat_deg"] = 31.65  # 50 km north for one fix: a GPS glitch, not a drive
    assert post(client, world.tokens["device_a"], records)["accepted"] == 130
    services.derivations.run_pending()
    excluded = client.get(
        "/api/v1/vehicles/car-a/excluded-records", headers=bearer(world.tokens["ann"])
    ).json()
    assert [(e["ts_ms"], e["reason"]) for e in excluded] == [(start + 60 * 5000, "implausible_sequence")]
    (drive,) = client.get("/api/v1/vehicles/car-a/drives", headers=bearer(world.tokens["ann"])).json()
    assert drive["distance_gps_km"] < 6  # the jump adds no distance
