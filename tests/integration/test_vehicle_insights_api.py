"""A car's SoH trend, parked drain and charging costs over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.tariffs import parse_tariff
from tests.integration.conftest import FrozenClock
from tests.integration.test_battery_api import CAR, MODEL, ingest_days
from tests.integration.test_history_day import DAY0_MS
from tests.integration.world import World, bearer, build_world

DAY_MS = 86_400_000
FAR_MS = 2**62


@pytest.fixture
def world(services: Services, clock: FrozenClock) -> World:
    built = build_world(services)
    services.admin.add_vehicle(CAR, name="Spring of Ann", model_id=MODEL)
    services.admin.grant(CAR, user_name="ann")
    clock.now_ms = DAY0_MS
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def get(client: TestClient, token: str, path: str, status: int = 200) -> Any:
    response = client.get(f"/api/v1/vehicles/{path}", headers=bearer(token))
    assert response.status_code == status, response.text
    return response.json()


def test_the_soh_trend_is_what_the_refit_stored(services: Services, client: TestClient, world: World) -> None:
    ann = world.tokens["ann"]
    before = get(client, ann, f"{CAR}/battery/history")
    assert (before["available"], before["estimates"]) == (False, [])
    assert before["reason"].startswith("not fitted yet")
    ingest_days(services, CAR, 0, 8)
    services.battery.refit_due()
    out = get(client, ann, f"{CAR}/battery/history")
    charges = services.history.charges(CAR, 0, FAR_MS, 100)
    assert [m["ts_ms"] for m in out["measurements"]] == [c.start_ts_ms for c in charges]
    # one point per week with a session once five sessions exist: the fixture's 8 days span 2 weeks at most
    assert out["available"] and 1 <= len(out["estimates"]) <= 2
    assert {e["sessions_used"] for e in out["estimates"]} <= set(range(5, 9))
    last = out["estimates"][-1]
    report = get(client, ann, f"{CAR}/battery")
    assert last["ts_ms"] == charges[-1].start_ts_ms and last["sessions_used"] == 8
    # 8 days: no trend yet, so the estimate at the last session is the report's own
    assert last["soh_pct"] == pytest.approx(report["soh"]["soh_pct"])
    assert last["band_low_pct"] <= last["soh_pct"] <= last["band_high_pct"]
    assert (out["eol_ts_ms"], out["end_of_life_pct"]) == (None, 80.0)


def test_parked_drain_lists_the_cars_parked_spells(
    services: Services, client: TestClient, world: World
) -> None:
    ingest_days(services, CAR, 0, 3)
    first_day = DAY0_MS - 20 * DAY_MS
    out = get(
        client, world.tokens["ann"], f"{CAR}/parked-drain?from_ms={first_day}&to_ms={first_day + 3 * DAY_MS}"
    )
    spans = [s for s in services.history.states(CAR, 0, FAR_MS, 1000) if s["status"] in ("parked", "asleep")]
    assert out["spells"], "the fixture's days have parked spells of 15 min or more"
    assert {s["start_ts_ms"] for s in out["spells"]} <= {s["start_ts_ms"] for s in spans}
    for s in out["spells"]:
        assert s["kwh_per_day"] == pytest.approx(s["drain_w"] * 24 / 1000)
        assert s["soc_pct_per_day"] == pytest.approx(s["kwh_per_day"] / out["usable_kwh"] * 100)
    assert out["usable_basis"] == "catalogue"  # not fitted yet: the model's usable kWh when new
    hours = sum(s["end_ts_ms"] - s["start_ts_ms"] for s in out["spells"]) / 3_600_000
    assert out["parked_h"] == pytest.approx(hours)
    # the default window is the last 30 days before now (the clock's DAY0): these days are 18-20 days old
    assert get(client, world.tokens["ann"], f"{CAR}/parked-drain")["spells"] == out["spells"]
    older = f"{CAR}/parked-drain?from_ms={first_day - 30 * DAY_MS}&to_ms={first_day}"
    assert get(client, world.tokens["ann"], older)["spells"] == []
    bad = client.get(
        f"/api/v1/vehicles/{CAR}/parked-drain?from_ms=5&to_ms=4", headers=bearer(world.tokens["ann"])
    )
    assert bad.status_code == 422


def test_charging_costs_come_from_the_tariff_of_the_place_charged_at(
    services: Services, client: TestClient, world: World, clock: FrozenClock
) -> None:
    ingest_days(services, CAR, 0, 2)
    ann = world.tokens["ann"]
    query = f"period=week&from_ms={DAY0_MS - 30 * DAY_MS}&to_ms={DAY0_MS}&tz=Asia/Shanghai"
    uncosted = get(client, ann, f"{CAR}/charging-costs?{query}")
    assert (uncosted["charges"], uncosted["costed_charges"], uncosted["total_cost"]) == (2, 0, {})
    charge = services.history.charges(CAR, 0, FAR_MS, 10)[0]
    assert charge.lat_deg is not None and charge.lon_deg is not None
    services.tariffs.add(parse_tariff({"tariff_id": "ann-home", "kind": "per_kwh", "currency": "CNY",
                                       "price_per_kwh": 0.6}), vehicle_id=CAR)  # fmt: skip
    services.places.add(
        Place("ann-work", "Work", PlaceKind.OTHER, Circle(charge.lat_deg, charge.lon_deg, 200), "ann-home"),
        vehicle_id=CAR,
    )
    services.deriver.rederive(CAR)
    out = get(client, ann, f"{CAR}/charging-costs?{query}")
    charges = services.history.charges(CAR, 0, FAR_MS, 10)
    assert (out["charges"], out["costed_charges"], out["tariff_ids"]) == (2, 2, ["ann-home"])
    assert out["total_cost"]["CNY"] == pytest.approx(sum(c.cost or 0 for c in charges))
    grid = sum(c.energy_grid_kwh or 0 for c in charges)
    assert out["total_cost"]["CNY"] == pytest.approx(0.6 * grid)
    assert sum(p["charges"] for p in out["periods"]) == 2 and out["timezone"] == "Asia/Shanghai"
    monthly = get(
        client, ann, f"{CAR}/charging-costs?period=month&from_ms={DAY0_MS - 30 * DAY_MS}&to_ms={DAY0_MS}"
    )
    assert monthly["total_cost"] == pytest.approx(out["total_cost"])
    bad = client.get(f"/api/v1/vehicles/{CAR}/charging-costs?period=day", headers=bearer(ann))
    assert bad.status_code == 422 and "week or month" in bad.json()["message"]
    zone = client.get(f"/api/v1/vehicles/{CAR}/charging-costs?tz=Mars/Base", headers=bearer(ann))
    assert zone.status_code == 422


@pytest.mark.parametrize("path", ["battery/history", "parked-drain", "charging-costs"])
def test_a_car_the_caller_cannot_see_is_404(client: TestClient, world: World, path: str) -> None:
    for who, vid in (("bob", CAR), ("dan", CAR), ("ann", "car-b"), ("ann", "no-such-car")):
        get(client, world.tokens[who], f"{vid}/{path}", 404)
    assert client.get(f"/api/v1/vehicles/{CAR}/{path}").status_code == 401
    assert get(client, world.tokens["root"], f"{CAR}/{path}")["vehicle_id"] == CAR
