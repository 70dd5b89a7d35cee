"""Driver scores over the API on SQLite and PostgreSQL: events of a 1 Hz drive, who sees whose score.

car-a (fleet city-share) makes three drives on DAY0: at 08:05 in dan's booking, with one harsh braking
(40 km/h to 0 in 3 s, 0.38 g); at 09:05 in dina's booking, gentle; at 10:05 in no booking, sent every 5 s.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.access import Role
from microfleet.domain.telemetry import TelemetryRecord
from tests.integration.conftest import NOW_MS, FrozenClock
from tests.integration.test_history_day import DAY0_MS, HOME, body
from tests.integration.world import World, bearer, build_world

H_MS = 3_600_000
M_PER_DEG = 111_195.0
BRAKE_AT_S = 90  # seconds into the harsh drive when the 3 s braking starts


def _speeds_kmh(harsh: bool) -> list[float]:
    """Ignition on at standstill, a gentle start, cruise, a stop (harsh or 20 s), again, a gentle stop."""
    up = [40.0 * k / 20 for k in range(1, 21)]
    stop = [40.0 * (1 - k / 3) for k in range(1, 4)] if harsh else [40.0 * (1 - k / 20) for k in range(1, 21)]
    return [0.0] * 10 + up + [40.0] * 60 + stop + [0.0] * 10 + up + [40.0] * 60 + up[::-1][1:] + [0.0] * 11


def _drive(start_ms: int, speeds: list[float], step_s: int, odo_km: float) -> list[TelemetryRecord]:
    lat, _lon = HOME
    out = []
    for k, v in enumerate(speeds[::step_s]):
        moving = v > 0
        lat += v / 3.6 * step_s / M_PER_DEG
        odo_km += v / 3.6 * step_s / 1000
        out.append(
            TelemetryRecord(
                vehicle_id="car-a",
                ts_ms=start_ms + k * step_s * 1000,
                lat_deg=round(lat, 7),
                lon_deg=HOME[1],
                heading_deg=0.0,
                speed_kmh=v,
                odometer_km=round(odo_km, 3),
                soc_pct=70.0,
                pack_voltage_v=340.0,
                pack_current_a=30.0 if moving else 1.0,
                ignition_on=True,
                gear="D",
                ambient_temp_c=12.0,
            )
        )
    return out


def _parked(start_ms: int, minutes: int, odo_km: float) -> list[TelemetryRecord]:
    return [
        TelemetryRecord(
            vehicle_id="car-a",
            ts_ms=start_ms + m * 60_000,
            lat_deg=HOME[0],
            lon_deg=HOME[1],
            speed_kmh=0.0,
            odometer_km=odo_km,
            soc_pct=70.0,
            pack_voltage_v=340.0,
            pack_current_a=0.2,
            ignition_on=False,
            gear="P",
            ambient_temp_c=12.0,
        )
        for m in range(minutes)
    ]


@pytest.fixture
def client(services: Services, clock: FrozenClock) -> Iterator[tuple[World, TestClient]]:
    world = build_world(services)
    services.admin.add_user("dina", Role.DRIVER, None)
    world.tokens["dina"] = services.admin.issue_token("dina", "tests")
    services.admin.grant("car-a", user_name="dina")
    clock.now_ms = DAY0_MS  # bookings are made before they start
    services.bookings.create("car-a", "dan", DAY0_MS + 8 * H_MS, DAY0_MS + 9 * H_MS)
    services.bookings.create("car-a", "dina", DAY0_MS + 9 * H_MS, DAY0_MS + 10 * H_MS)
    clock.now_ms = NOW_MS
    records = _parked(DAY0_MS + 7 * H_MS, 60, 1000.0)
    for hour, harsh, step in ((8, True, 1), (9, False, 1), (10, False, 5)):
        start = DAY0_MS + hour * H_MS + 5 * 60_000
        records += _parked(DAY0_MS + hour * H_MS, 5, 1000.0 + hour)[1:]
        records += _drive(start, _speeds_kmh(harsh), step, 1000.0 + hour)
        records += _parked(start + 600_000, 30, 1000.0 + hour + 1.5)
    report = services.ingest.ingest(
        body(records), "application/json", credential_vehicle_id="car-a", source="t", now_ms=NOW_MS
    )
    assert report.accepted == len(records), report
    services.deriver.rederive("car-a")
    with TestClient(create_app(services.settings, services)) as test_client:
        yield world, test_client


def _get(client: TestClient, world: World, who: str, path: str, status: int = 200) -> dict[str, object]:
    response = client.get(path, headers=bearer(world.tokens[who]))
    assert response.status_code == status, response.text
    out: dict[str, object] = response.json()
    return out


def _drive_ids(client: TestClient, world: World) -> list[int]:
    drives = client.get("/api/v1/vehicles/car-a/drives", headers=bearer(world.tokens["olga"])).json()
    return [int(d["start_ts_ms"]) for d in drives]


def test_a_harsh_braking_is_found_where_it_happened(client: tuple[World, TestClient]) -> None:
    world, c = client
    harsh, gentle, coarse = _drive_ids(c, world)
    body = _get(c, world, "dan", f"/api/v1/vehicles/car-a/drives/{harsh}/events")
    assert (body["driver"], body["assessed"]) == ("dan", True)
    start_ms = DAY0_MS + 8 * H_MS + 5 * 60_000
    # (v[k+1] - v[k-1]) / 2 s first reaches 0.3 g at the braking's first sample: (3.7 - 11.1) / 2 = 3.7 m/s²
    assert [(e["kind"], e["start_ts_ms"]) for e in body["events"]] == [
        ("braking", start_ms + BRAKE_AT_S * 1000)
    ]
    assert body["events"][0]["peak_g"] == pytest.approx(11.11 / 3 / 9.80665, abs=0.01)
    assert body["hard_braking_pct"] > 0 and body["safety_score"] < 100
    assert _get(c, world, "olga", f"/api/v1/vehicles/car-a/drives/{gentle}/events")["events"] == []
    five_s = _get(c, world, "olga", f"/api/v1/vehicles/car-a/drives/{coarse}/events")
    assert (five_s["assessed"], five_s["driver"], five_s["events"]) == (False, None, [])
    assert "1 Hz" in str(five_s["note"])


def test_a_driver_sees_only_their_own_score_and_drives(client: tuple[World, TestClient]) -> None:
    world, c = client
    harsh, gentle, _ = _drive_ids(c, world)
    dan = _get(c, world, "dan", "/api/v1/drivers/me/score")
    dina = _get(c, world, "dina", "/api/v1/drivers/me/score")
    assert (dan["driver"], dan["drives"], dan["status"]) == ("dan", 1, "learning")
    assert "4 more drives" in str(dan["message"])
    assert (dina["driver"], dina["drives"]) == ("dina", 1)
    # dina's score holds no braking of dan's; neither reads the other's drive
    _get(c, world, "dina", f"/api/v1/vehicles/car-a/drives/{harsh}/events", 404)
    _get(c, world, "dan", f"/api/v1/vehicles/car-a/drives/{gentle}/events", 404)
    assert _get(c, world, "ann", "/api/v1/drivers/me/score")["drives"] == 0  # an owner books nothing


def test_the_operator_sees_the_fleets_drivers_and_nobody_else_does(client: tuple[World, TestClient]) -> None:
    world, c = client
    fleet = _get(c, world, "olga", "/api/v1/fleets/city-share/driver-scores")
    drivers = fleet["drivers"]
    assert isinstance(drivers, list)
    assert [(d["driver"], d["drives"]) for d in drivers] == [("dan", 1), ("dina", 1)]
    assert fleet["unattributed_drives"] == 1
    for who in ("ann", "dan", "dina"):
        _get(c, world, who, "/api/v1/fleets/city-share/driver-scores", 403)
    _get(c, world, "root", "/api/v1/fleets/no-such-fleet/driver-scores", 404)
    _get(c, world, "olga", "/api/v1/fleets/city-share/driver-scores?days=91", 422)
