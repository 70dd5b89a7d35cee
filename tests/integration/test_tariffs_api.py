"""Tariffs API on SQLite and PostgreSQL: CRUD, clear refusals, scopes, and charges costed and re-costed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.test_history_day import DAY0_MS, body
from tests.integration.test_places_api import DAYS, WORK, circle, days_of
from tests.integration.world import World, bearer, build_world

NIGHT_AND_DAY = {
    "kind": "time_of_use",
    "currency": "EUR",
    "timezone": "Asia/Shanghai",
    "bands": [
        {"start": "22:00", "end": "06:00", "price_per_kwh": 0.1},
        {"start": "06:00", "end": "22:00", "price_per_kwh": 0.3, "weekdays": [0, 1, 2, 3, 4]},
        {"start": "06:00", "end": "22:00", "price_per_kwh": 0.2, "weekdays": [5, 6]},
    ],
}
DAY_AHEAD = {"kind": "day_ahead", "currency": "EUR", "timezone": "Asia/Shanghai", "interval_min": 60}


@pytest.fixture
def world(services: Services) -> World:
    built = build_world(services)
    report = services.ingest.ingest(
        body(days_of("car-a", DAYS)),
        "application/json",
        credential_vehicle_id="car-a",
        source="t",
        now_ms=DAY0_MS + DAYS * 86_400_000,
    )
    services.deriver.ingest_landed(report)
    return built


@pytest.fixture
def client(services: Services, world: World) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as test_client:
        yield test_client


def post(client: TestClient, who: str, world: World, tariff_id: str, **tariff: Any) -> Any:
    return client.post(
        "/api/v1/tariffs", json={"tariff_id": tariff_id, **tariff}, headers=bearer(world.tokens[who])
    )


def charge_place(client: TestClient, world: World, tariff_id: str) -> str:
    place = {
        "name": "Office charger",
        "geometry": circle(WORK),
        "tariff_id": tariff_id,
        "vehicle_id": "car-a",
    }
    response = client.post("/api/v1/places", json=place, headers=bearer(world.tokens["ann"]))
    assert response.status_code == 201, response.text
    return str(response.json()["place_id"])


def charges(client: TestClient, world: World) -> list[dict[str, Any]]:
    return list(client.get("/api/v1/vehicles/car-a/charges", headers=bearer(world.tokens["ann"])).json())


def hourly_csv(price: float, from_ms: int, hours: int) -> str:
    starts = (dt.datetime.fromtimestamp(from_ms / 1000 + 3600 * h, tz=dt.UTC) for h in range(hours))
    return "start,price_per_kwh\n" + "".join(f"{s:%Y-%m-%dT%H:%MZ},{price}\n" for s in starts)


def test_create_read_replace_and_delete_a_time_of_use_tariff(client: TestClient, world: World) -> None:
    ann = bearer(world.tokens["ann"])
    created = post(client, "ann", world, "ann-home", vehicle_id="car-a", **NIGHT_AND_DAY)
    assert created.status_code == 201, created.text
    assert created.json()["scope"] == "vehicle" and created.json()["bands"][0]["months"] == list(range(1, 13))
    listed = client.get("/api/v1/tariffs", headers=ann).json()
    assert [t["scope"] for t in listed] == ["builtin"] * 4 + ["vehicle"]
    assert listed[-1]["tariff_id"] == "ann-home" and listed[-1]["source"] == "entered by a user"
    assert client.get("/api/v1/tariffs/cn_sh_residential_tou", headers=ann).json()["currency"] == "CNY"

    cheaper = {**NIGHT_AND_DAY, "bands": [], "default_price_per_kwh": 0.15, "source": "my bill"}
    replaced = client.put("/api/v1/tariffs/ann-home", json=cheaper, headers=ann)
    assert replaced.status_code == 200, replaced.text
    got = client.get("/api/v1/tariffs/ann-home", headers=ann).json()
    assert (got["bands"], got["default_price_per_kwh"], got["source"]) == ([], 0.15, "my bill")

    assert client.delete("/api/v1/tariffs/ann-home", headers=ann).status_code == 204
    assert client.get("/api/v1/tariffs/ann-home", headers=ann).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "complaint"),
    [
        ({"bands": NIGHT_AND_DAY["bands"][:2]}, 422, "no band prices Saturdays in Jan at 06:00"),
        (
            {"bands": [*NIGHT_AND_DAY["bands"], {"start": "12:00", "end": "13:00", "price_per_kwh": 0}]},
            422,
            "bands 1 and 3 overlap: both price Mondays in Jan at 12:00",
        ),
        ({"currency": "eu"}, 422, "currency 'eu' is not a 3-letter code"),
        ({"timezone": "Shanghai"}, 422, "timezone 'Shanghai' is not an IANA time zone"),
        ({"default_price_per_kwh": -1}, 422, "default_price_per_kwh -1.0 is not between 0 and 100,000"),
        ({"bands": [{"start": "8:00", "end": "09:00", "price_per_kwh": 1}]}, 422, "not a time HH:MM"),
        ({"price_per_session": 3}, 422, "a time_of_use tariff has no field price_per_session"),
        ({"kind": "flat"}, 422, "a flat tariff has no field bands, timezone; it takes currency, kind"),
        ({"tariff_id": "cn_sh_residential_tou"}, 409, "is a built-in example tariff"),
        ({"tariff_id": "bad id"}, 422, "tariff_id"),
        ({"fleet_id": "city-share"}, 422, "exactly one of vehicle_id, fleet_id or is_global"),
        ({"bands": [NIGHT_AND_DAY["bands"][0]] * 201}, 422, "at most 200"),
    ],
)
def test_a_bad_tariff_is_refused_with_its_reason(
    client: TestClient, world: World, change: dict[str, Any], status: int, complaint: str
) -> None:
    tariff = {"tariff_id": "t1", "vehicle_id": "car-a", **NIGHT_AND_DAY, **change}
    response = client.post("/api/v1/tariffs", json=tariff, headers=bearer(world.tokens["root"]))
    assert response.status_code == status, response.text
    assert complaint in response.json()["message"]


def test_scopes_decide_who_sees_writes_and_may_name_a_tariff(client: TestClient, world: World) -> None:
    assert post(client, "ann", world, "ann-home", vehicle_id="car-a", **NIGHT_AND_DAY).status_code == 201
    assert post(client, "olga", world, "depot", fleet_id="city-share", **NIGHT_AND_DAY).status_code == 201
    assert post(client, "ann", world, "taken", fleet_id="city-share", **NIGHT_AND_DAY).status_code == 403
    assert post(client, "dan", world, "dans", vehicle_id="car-a", **NIGHT_AND_DAY).status_code == 403
    assert post(client, "bob", world, "bobs", vehicle_id="car-a", **NIGHT_AND_DAY).status_code == 404
    again = post(client, "bob", world, "depot", vehicle_id="car-b", **NIGHT_AND_DAY)
    assert again.status_code == 409 and "is taken" in again.json()["message"]

    def ids(who: str) -> list[str]:
        found = client.get("/api/v1/tariffs", headers=bearer(world.tokens[who])).json()
        return [t["tariff_id"] for t in found if t["scope"] != "builtin"]

    assert ids("ann") == ids("dan") == ids("olga") == ids("root") == ["ann-home", "depot"]
    assert ids("bob") == []
    assert client.get("/api/v1/tariffs/depot", headers=bearer(world.tokens["bob"])).status_code == 404
    assert client.delete("/api/v1/tariffs/depot", headers=bearer(world.tokens["ann"])).status_code == 403
    builtin = client.put(
        "/api/v1/tariffs/cn_sh_residential_tou", json=NIGHT_AND_DAY, headers=bearer(world.tokens["root"])
    )
    assert builtin.status_code == 403 and "built-in" in builtin.json()["message"]

    # A place may name a tariff whose scope holds every car it applies to.
    root = bearer(world.tokens["root"])
    for_b = {"name": "B", "geometry": circle(WORK), "vehicle_id": "car-b", "tariff_id": "depot"}
    refused = client.post("/api/v1/places", json=for_b, headers=root)
    assert refused.status_code == 422 and "unknown tariff 'depot' for this place" in refused.json()["message"]
    everyone = {"name": "G", "geometry": circle(WORK), "is_global": True, "tariff_id": "ann-home"}
    assert client.post("/api/v1/places", json=everyone, headers=root).status_code == 422
    assert charge_place(client, world, "depot")


def test_a_charge_is_costed_with_a_user_tariff_and_re_costed_when_it_changes(
    client: TestClient, world: World, services: Services
) -> None:
    flat_rate = {
        "kind": "time_of_use",
        "currency": "EUR",
        "timezone": "Asia/Shanghai",
        "default_price_per_kwh": 0.2,
    }
    assert post(client, "ann", world, "ann-office", vehicle_id="car-a", **flat_rate).status_code == 201
    place_id = charge_place(client, world, "ann-office")
    services.derivations.run_pending()
    before = charges(client, world)
    assert all(c["place_id"] == place_id and c["tariff_id"] == "ann-office" for c in before)
    assert all(c["cost"] > 0 and c["currency"] == "EUR" for c in before)

    ann = bearer(world.tokens["ann"])
    changed = client.put(
        "/api/v1/tariffs/ann-office", json={**flat_rate, "default_price_per_kwh": 0.6}, headers=ann
    )
    assert changed.status_code == 200
    assert services.derivations.pending() == 1
    services.derivations.run_pending()
    after = charges(client, world)
    assert [a["cost"] for a in after] == pytest.approx(
        [3 * b["cost"] for b in before], rel=1e-3
    )  # API rounds

    in_use = client.delete("/api/v1/tariffs/ann-office", headers=ann)
    assert in_use.status_code == 409 and "in use by 1 place(s): Office charger" in in_use.json()["message"]
    assert client.delete(f"/api/v1/places/{place_id}", headers=ann).status_code == 204
    assert client.delete("/api/v1/tariffs/ann-office", headers=ann).status_code == 204


def test_day_ahead_prices_cost_the_charges_they_cover(
    client: TestClient, world: World, services: Services
) -> None:
    olga = bearer(world.tokens["olga"])
    created = post(client, "olga", world, "spot", fleet_id="city-share", fee_per_kwh=0.05, **DAY_AHEAD)
    assert created.status_code == 201 and created.json()["series_intervals"] == 0
    charge_place(client, world, "spot")
    services.derivations.run_pending()
    # No prices yet: each charge names the tariff, with no cost (the series does not cover it).
    assert [(c["tariff_id"], c["cost"]) for c in charges(client, world)] == [("spot", None)] * DAYS

    csv_text = hourly_csv(0.1, DAY0_MS, 24 * DAYS)
    uploaded = client.post(
        "/api/v1/tariffs/spot/day-ahead", content=csv_text, headers={**olga, "Content-Type": "text/csv"}
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["read"] == 24 * DAYS
    assert uploaded.json()["tariff"]["series_from_ms"] == DAY0_MS
    assert uploaded.json()["tariff"]["series_to_ms"] == DAY0_MS + DAYS * 86_400_000
    services.derivations.run_pending()
    costed = charges(client, world)
    assert all(c["cost"] > 0 for c in costed)

    dearer = hourly_csv(0.25, DAY0_MS, 24 * DAYS)
    again = client.post(
        "/api/v1/tariffs/spot/day-ahead?replace=true",
        content=dearer,
        headers={**olga, "Content-Type": "text/csv"},
    )
    assert again.json()["tariff"]["series_intervals"] == 24 * DAYS
    services.derivations.run_pending()
    assert [c["cost"] for c in charges(client, world)] == pytest.approx(
        [2 * c["cost"] for c in costed], rel=1e-3
    )  # the API rounds costs

    bad = client.post(
        "/api/v1/tariffs/spot/day-ahead", content="start,price_per_kwh\n2025-11-24T13:00,1\n", headers=olga
    )
    assert (
        bad.status_code == 422
        and "line 2: start '2025-11-24T13:00' has no UTC offset" in bad.json()["message"]
    )
    huge = client.post("/api/v1/tariffs/spot/day-ahead", content=b"x" * 2_000_001, headers=olga)
    assert huge.status_code == 413
    assert post(client, "olga", world, "tou", fleet_id="city-share", **NIGHT_AND_DAY).status_code == 201
    wrong = client.post("/api/v1/tariffs/tou/day-ahead", content=csv_text, headers=olga)
    assert wrong.status_code == 422 and "is a time_of_use tariff" in wrong.json()["message"]
    dan = client.post("/api/v1/tariffs/spot/day-ahead", content=csv_text, headers=bearer(world.tokens["dan"]))
    assert dan.status_code == 403
