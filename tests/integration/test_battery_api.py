"""Battery API on SQLite and PostgreSQL: models fitted off the request path from a small derived history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.alerts import AlertKind
from microfleet.services.battery import SOURCE
from microfleet.services.derivation import HistoryDeriver
from microfleet.store.history import HistoryStore
from tests.integration.conftest import FrozenClock
from tests.integration.test_history_day import DAY0_MS, body, day_records
from tests.integration.world import World, bearer, build_world

DAY_MS = 86_400_000
CAR = "bat-1"
MODEL = "dacia-spring-65-2024"


def ingest_days(services: Services, vehicle_id: str, first: int, days: int) -> None:
    """``days`` copies of the history fixture's day (a drive out, an AC charge, a drive home)."""
    deriver = HistoryDeriver(HistoryStore(services.engine))
    for d in range(first, first + days):
        day0 = DAY0_MS - 20 * DAY_MS + d * DAY_MS
        report = services.ingest.ingest(
            body(day_records(vehicle_id, day0)), "application/json", credential_vehicle_id=vehicle_id,
            source="t", now_ms=day0 + DAY_MS,
        )  # fmt: skip
        deriver.ingest_landed(report)


@pytest.fixture
def world(services: Services, clock: FrozenClock) -> World:
    built = build_world(services)
    services.admin.add_vehicle(CAR, name="Spring of Ann", model_id=MODEL)
    services.admin.grant(CAR, user_name="ann")
    clock.now_ms = DAY0_MS  # the fixture's days run up to yesterday
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def battery(client: TestClient, token: str, vehicle_id: str = CAR, query: str = "") -> dict:
    response = client.get(f"/api/v1/vehicles/{vehicle_id}/battery{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    out = response.json()
    assert isinstance(out, dict)
    return out


def test_too_little_history_says_how_much_more_is_needed(
    services: Services, client: TestClient, world: World
) -> None:
    before = battery(client, world.tokens["ann"])
    assert before["model_version"] is None
    assert before["soh"]["available"] is False
    assert before["soh"]["reason"].startswith("not enough data yet: 5 more charge sessions needed")
    ingest_days(services, CAR, 0, 3)
    assert services.battery.refit_due() == 1
    out = battery(client, world.tokens["ann"])
    assert out["soh"] == {
        "available": False,
        "reason": "not enough data yet: 2 more charge sessions needed "
        "(each with 20+ points of SoC and pack-measured energy)",
    }
    assert out["range"]["reason"] == "not enough data yet: 2 more days of driving needed"
    assert "capacity_kwh" not in out["soh"] and "p50_km" not in out["range"]


def test_fitted_off_the_request_path_with_version_window_band_and_range(
    services: Services, client: TestClient, world: World
) -> None:
    ingest_days(services, CAR, 0, 8)
    assert services.battery.refit_due() == 1
    assert services.battery.refit_due() == 0  # nothing moved since: not fitted again
    out = battery(client, world.tokens["ann"], query="?trip_km=5")
    assert out["model_version"].startswith("battery-1")
    first_drive_ms = DAY0_MS - 20 * DAY_MS + 8 * 3_600_000
    assert out["data_from_ms"] == first_drive_ms
    assert out["data_to_ms"] > first_drive_ms + 7 * DAY_MS
    soh = out["soh"]
    # each day's charge: 2.97 kWh into the pack over 24 points of SoC, i.e. 12.4 kWh of a 25 kWh pack
    assert soh["available"] is True
    assert soh["capacity_kwh"] == pytest.approx(12.4, rel=0.03)
    assert soh["band_low_pct"] <= soh["soh_pct"] <= soh["band_high_pct"]
    assert soh["sessions_used"] == 8
    rng = out["range"]
    assert rng["available"] is True, rng
    assert rng["p10_km"] <= rng["p50_km"] <= rng["p90_km"]
    # 15 kW at 36 km/h is 417 Wh/km: about 30 km on 12.4 kWh x 100 % ... x the BMS's SoC now
    assert rng["wh_per_km_p50"] == pytest.approx(417, rel=0.05)
    assert rng["trip_verdict"] in ("yes", "likely")
    ingest_days(services, CAR, 8, 1)
    assert services.battery.refit_due() == 1  # a new day of history: refitted


def test_a_car_the_caller_cannot_see_is_404_and_bad_trip_is_422(
    services: Services, client: TestClient, world: World
) -> None:
    for who, vid in (("bob", CAR), ("dan", CAR), ("ann", "car-b"), ("ann", "no-such-car")):
        response = client.get(f"/api/v1/vehicles/{vid}/battery", headers=bearer(world.tokens[who]))
        assert response.status_code == 404, (who, vid)
    assert client.get(f"/api/v1/vehicles/{CAR}/battery").status_code == 401
    bad = client.get(f"/api/v1/vehicles/{CAR}/battery?trip_km=-3", headers=bearer(world.tokens["ann"]))
    assert bad.status_code == 422
    assert battery(client, world.tokens["root"])["vehicle_id"] == CAR


def test_pack_alerts_go_through_the_alert_path(services: Services, world: World) -> None:
    ingest_days(services, CAR, 0, 2)
    services.battery.refit(CAR)  # nothing abnormal: no alert
    assert not services.alerts.all_alerts(vehicle_id=CAR)
    from microfleet.services.battery import BatteryService

    found = [("weak_cell", "A cell is drifting away", "spread grew")]
    BatteryService._raise_pack_alerts(services.battery, CAR, found)
    (alert,) = services.alerts.all_alerts(vehicle_id=CAR)
    assert (alert.kind, alert.source, alert.condition) == (AlertKind.EXTERNAL, SOURCE, "weak_cell")
    services.battery.refit(CAR)  # the refit finds the pack healthy again: resolved
    assert services.alerts.all_alerts(vehicle_id=CAR)[0].status == "resolved"
