"""Who sees a quarantined record: the people who see the vehicle whose credential sent it — never the
people of the vehicle the record merely names (it could be anyone's device posting under a foreign id)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.access import Role
from tests.integration.conftest import NOW_MS
from tests.integration.world import bearer


@pytest.fixture
def client(services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    admin = services.admin
    admin.add_fleet("fleet-1", "One")
    admin.add_fleet("fleet-2", "Two")
    tokens = {
        "device_a": admin.add_vehicle("car-a", fleet_id="fleet-1"),
        "device_b": admin.add_vehicle("car-b", fleet_id="fleet-2"),
    }
    for name, role, fleet in [
        ("owner_a", Role.OWNER, None),
        ("owner_b", Role.OWNER, None),
        ("op1", Role.OPERATOR, "fleet-1"),
        ("op2", Role.OPERATOR, "fleet-2"),
        ("root", Role.ADMIN, None),
    ]:
        admin.add_user(name, role, fleet)
        tokens[name] = admin.issue_token(name)
    admin.grant("car-a", user_name="owner_a")
    admin.grant("car-b", user_name="owner_b")
    with TestClient(create_app(services.settings, services)) as c:
        yield c, tokens


def _visible_rows(c: TestClient, token: str) -> list[dict[str, object]]:
    response = c.get("/api/v1/quarantine", headers=bearer(token))
    assert response.status_code == 200
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_a_record_naming_another_fleets_car_is_seen_only_by_the_senders_people(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    c, tokens = client
    # car-b's device (fleet 2) posts a record that names car-a (fleet 1), with a position in it.
    posted = c.post(
        "/api/v1/telemetry",
        json=[{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1000, "lat_deg": 31.23, "lon_deg": 121.47}],
        headers=bearer(tokens["device_b"]),
    )
    assert posted.json()["rejected"] == 1
    # and car-a's own device sends one refused record of its own
    c.post(
        "/api/v1/telemetry",
        json=[{"vehicle_id": "car-a", "ts_ms": NOW_MS - 2000, "soc_pct": 400}],
        headers=bearer(tokens["device_a"]),
    )
    seen = {name: _visible_rows(c, tokens[name]) for name in ("owner_a", "op1", "owner_b", "op2", "root")}
    for name in ("owner_a", "op1"):  # car-a's people: only car-a's own device's row
        assert [r["credential_vehicle_id"] for r in seen[name]] == ["car-a"], name
        assert all("121.47" not in str(r["raw_text"]) for r in seen[name]), name
    for name in ("owner_b", "op2"):  # car-b's people: the row car-b's device sent
        assert [r["credential_vehicle_id"] for r in seen[name]] == ["car-b"], name
    assert len(seen["root"]) == 2
