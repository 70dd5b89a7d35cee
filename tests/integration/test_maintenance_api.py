"""Maintenance API on SQLite and PostgreSQL: detectors off the request path, alerts, false alarms, service."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.services.maintenance import SOURCE
from tests.integration.conftest import FrozenClock
from tests.integration.world import World, bearer, build_world

T0 = 1_763_942_400_000  # 2025-11-24T00:00:00Z
DAY_MS = 86_400_000
STEP_MS = 600_000


def parked_days(vehicle_id: str, days: int, leak_from_day: float) -> list[TelemetryRecord]:
    """A parked car every 10 min: its front-left tyre loses 10 kPa/day from ``leak_from_day``."""
    out = []
    for i in range(days * 144):
        d = i / 144
        fl = 250.0 - max(0.0, d - leak_from_day) * 10.0
        out.append(TelemetryRecord(
            vehicle_id=vehicle_id, ts_ms=T0 + i * STEP_MS, speed_kmh=0.0, ignition_on=False,
            odometer_km=1200.0, ambient_temp_c=15.0, tyre_pressure_kpa=[round(fl), 250.0, 251.0, 249.0],
            aux_battery_v=12.65,
        ))  # fmt: skip
    return out


@pytest.fixture
def world(services: Services, clock: FrozenClock) -> World:
    built = build_world(services)
    clock.now_ms = T0 + 6 * DAY_MS
    records = parked_days("car-a", 6, 4.0)
    for k in range(0, len(records), 500):
        services.ingest.ingest(
            msgspec.json.encode(records[k : k + 500]), "application/json", credential_vehicle_id="car-a",
            source="t", now_ms=clock.now_ms,
        )  # fmt: skip
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def get(client: TestClient, token: str, path: str, status: int = 200) -> dict:
    r = client.get(path, headers=bearer(token))
    assert r.status_code == status, r.text
    out = r.json()
    assert isinstance(out, dict)
    return out


def test_a_leak_is_found_off_the_request_path_and_raised_as_one_alert(
    services: Services, client: TestClient, world: World
) -> None:
    before = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/maintenance")
    assert before["findings"] == []  # nothing evaluated yet: a GET runs no detector
    assert services.maintenance.evaluate_due() == 1  # car-b sent nothing: not due
    out = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/maintenance")
    by = {(f["detector"], f["condition"]): f for f in out["findings"]}
    tyre = by[("tyre", "tyre:fl")]
    assert tyre["verdict"] == "suspected"
    assert tyre["evidence"]["slope_kpa_per_day"] == pytest.approx(-10.0, abs=1.0)
    assert "front left tyre is losing" in tyre["reason"]
    assert by[("12v_battery", "12v_battery")]["verdict"] == "ok"
    cells = by[("cell_balance", "cell_balance")]
    assert cells["verdict"] == "no_signal"
    assert cells["reason"] == "no cell_balance detector: the car sends no lowest and highest cell voltages"
    assert any(d["kind"] == "condition" and d["pressing"] for d in out["due"])
    alerts = [a for a in services.alerts.all_alerts() if a.source == SOURCE]
    assert [(a.vehicle_id, a.condition, a.status.value) for a in alerts] == [("car-a", "tyre:fl", "raised")]
    assert "suggested action" in alerts[0].detail
    # a second pass over the same data raises nothing new (de-duplicated), an unseen car is 404
    services.maintenance.evaluate("car-a")
    assert len([a for a in services.alerts.all_alerts() if a.source == SOURCE]) == 1
    get(client, world.tokens["bob"], "/api/v1/vehicles/car-a/maintenance", 404)


def test_false_alarm_resolves_the_alert_and_raises_the_threshold(
    services: Services, client: TestClient, world: World
) -> None:
    services.maintenance.evaluate("car-a")
    path = "/api/v1/vehicles/car-a/maintenance/false-alarms"
    r = client.post(path, json={"condition": "tyre:fl"}, headers=bearer(world.tokens["dan"]))
    assert r.status_code == 403, r.text  # drivers acknowledge alerts; they do not mark false alarms
    r = client.post(path, json={"condition": "nope"}, headers=bearer(world.tokens["ann"]))
    assert r.status_code == 404, r.text
    r = client.post(path, json={"condition": "tyre:fl"}, headers=bearer(world.tokens["ann"]))
    assert r.status_code == 201, r.text
    assert r.json()["false_alarms"] == 1 and r.json()["threshold_factor"] == 1.25
    (alert,) = [a for a in services.alerts.all_alerts() if a.source == SOURCE]
    assert alert.status.value == "resolved"
    out = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/maintenance")
    assert out["false_alarms"] == {"tyre": 1}


def test_service_records_intervals_and_the_fleets_week(
    services: Services, client: TestClient, world: World, clock: FrozenClock
) -> None:
    services.maintenance.evaluate("car-a")
    rec = {"item": "tyre pressure check", "done_at_ms": clock.now_ms - DAY_MS, "odometer_km": 1200.0}
    r = client.post("/api/v1/vehicles/car-a/service-records", json=rec, headers=bearer(world.tokens["dan"]))
    assert r.status_code == 403, r.text
    r = client.post("/api/v1/vehicles/car-a/service-records", json=rec, headers=bearer(world.tokens["ann"]))
    assert r.status_code == 201, r.text
    bad = rec | {"done_at_ms": clock.now_ms + 5 * DAY_MS}
    r = client.post("/api/v1/vehicles/car-a/service-records", json=bad, headers=bearer(world.tokens["ann"]))
    assert r.status_code == 422, r.text
    iv = {"item": "tyre pressure check", "every_days": 14}
    for who, status in (("ann", 403), ("olga", 201)):
        r = client.post(
            "/api/v1/fleets/city-share/service-intervals", json=iv, headers=bearer(world.tokens[who])
        )
        assert r.status_code == status, r.text
    out = get(client, world.tokens["ann"], "/api/v1/vehicles/car-a/maintenance")
    (check,) = [d for d in out["due"] if d["item"] == "tyre pressure check"]
    assert check["due_in_days"] == pytest.approx(13.0)  # every 14 days, done a day ago
    get(client, world.tokens["ann"], "/api/v1/fleets/city-share/service-plan", 403)
    plan = get(client, world.tokens["olga"], "/api/v1/fleets/city-share/service-plan")
    assert [v["vehicle_id"] for v in plan["visits"]] == ["car-a"]  # the leak is pressing
    assert plan["visits"][0]["disrupted_booking_min"] == 0
    get(client, world.tokens["olga"], "/api/v1/fleets/nowhere/service-plan", 404)


def test_a_note_with_a_nul_character_is_refused_not_a_server_error(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    rec = {"item": "brake fluid", "done_at_ms": clock.now_ms - DAY_MS, "note": "pads\u0000ok"}
    r = client.post("/api/v1/vehicles/car-a/service-records", json=rec, headers=bearer(world.tokens["ann"]))
    assert r.status_code == 422, r.text
