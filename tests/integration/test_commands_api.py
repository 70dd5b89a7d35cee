"""Remote commands through the real app on both stores: bad input gets a 4xx with the reason, idempotency,
bookings, expiry in the server's lifespan, the live feed, and no private key in any answer."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient
from sqlalchemy import select

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.command_wire import CommandVerifier, load_public_key
from microfleet.store.commands_store import command_keys
from tests.integration.conftest import FrozenClock
from tests.integration.world import World, bearer, build_world

CAR_A = "/api/v1/vehicles/car-a"


@pytest.fixture
def api(services: Services) -> Iterator[tuple[World, TestClient]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as client:
        yield world, client


def call(client: TestClient, world: World, who: str, method: str, path: str, **kwargs: Any) -> Any:
    headers = {**bearer(world.tokens[who]), **kwargs.pop("headers", {})}
    return client.request(method, path, headers=headers, **kwargs)


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        ({"action": "teleport"}, {}, 422, "unknown action 'teleport'"),
        ({"action": "climate_on", "params": {"target_c": 80}}, {}, 422, "target_c 80 is out of range"),
        ({"action": "set_charge_limit", "params": {"limit_pct": 5}}, {}, 422, "limit_pct 5 is out of range"),
        ({"action": "set_charge_limit", "params": {"limit_pct": 80.5}}, {}, 422, "whole number"),
        ({"action": "lock", "params": {"x": {"nested": 1}}}, {}, 422, "params.x"),
        ({"action": "lock", "expires_in_s": 0}, {}, 422, "expires_in_s"),
        ({"action": "lock", "expires_in_s": 90_000}, {}, 422, "expires_in_s"),
        ({"action": "lock", "extra": 1}, {}, 422, "extra"),
        ({"action": "lock"}, {"Idempotency-Key": "k" * 129}, 422, "Idempotency-Key"),
        ({"action": "lock"}, {"Idempotency-Key": "tab\there"}, 422, "printable"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason_and_nothing_is_stored(
    api: tuple[World, TestClient],
    services: Services,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    world, client = api
    response = call(client, world, "ann", "POST", f"{CAR_A}/commands", json=body, headers=headers)
    assert response.status_code == status, response.text
    assert says in response.json()["message"]
    assert call(client, world, "ann", "GET", f"{CAR_A}/commands").json()["commands"] == []


def test_not_json_and_unknown_commands_are_refused_cleanly(api: tuple[World, TestClient]) -> None:
    world, client = api
    response = call(
        client,
        world,
        "ann",
        "POST",
        f"{CAR_A}/commands",
        content=b"\xff{",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400 and set(response.json()) == {"code", "message"}
    assert call(client, world, "ann", "GET", f"{CAR_A}/commands/0000-0000").status_code == 404
    assert call(client, world, "ann", "GET", f"{CAR_A}/commands/NOT_HEX!").status_code == 422
    assert call(client, world, "ann", "DELETE", "/api/v1/bookings/999").status_code == 404


def test_the_same_idempotency_key_returns_the_same_command(api: tuple[World, TestClient]) -> None:
    world, client = api
    key = {"Idempotency-Key": "ann-unlock-1"}
    first = call(client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "unlock"}, headers=key)
    again = call(client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "unlock"}, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other = call(client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "lock"}, headers=key)
    assert other.status_code == 422 and "already used" in other.json()["message"]
    assert len(call(client, world, "ann", "GET", f"{CAR_A}/commands").json()["commands"]) == 1


def test_a_driver_commands_during_their_booking_only_and_each_refusal_is_counted(
    api: tuple[World, TestClient], services: Services, clock: FrozenClock
) -> None:
    world, client = api
    unlock = {"action": "unlock"}
    refused_before = services.commands.refusals["permission_denied"]
    assert call(client, world, "dan", "POST", f"{CAR_A}/commands", json=unlock).status_code == 403
    window = {"driver": "dan", "start_ms": clock.now_ms, "end_ms": clock.now_ms + 3_600_000}
    booking = call(client, world, "olga", "POST", f"{CAR_A}/bookings", json=window)
    assert booking.status_code == 201, booking.text
    clash = call(client, world, "olga", "POST", f"{CAR_A}/bookings", json=window)
    assert clash.status_code == 409
    assert call(client, world, "ann", "POST", f"{CAR_A}/bookings", json=window).status_code == 403
    booked = call(client, world, "dan", "POST", f"{CAR_A}/commands", json=unlock)
    assert booked.status_code == 201 and booked.json()["expires_at_ms"] <= window["end_ms"]
    assert [b["booking_id"] for b in call(client, world, "dan", "GET", "/api/v1/bookings").json()] == [
        booking.json()["booking_id"]
    ]
    cancelled = call(client, world, "olga", "DELETE", f"/api/v1/bookings/{booking.json()['booking_id']}")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at_ms"] == clock.now_ms
    for _ in range(3):
        assert call(client, world, "dan", "POST", f"{CAR_A}/commands", json=unlock).status_code == 403
    assert services.commands.refusals["permission_denied"] - refused_before == 4  # 4 of 4 refused
    audit = call(client, world, "ann", "GET", f"{CAR_A}/commands").json()
    assert [e["actor"] for e in audit["refused_attempts"]] == ["user:dan"] * 4
    assert {e["client"] for e in audit["refused_attempts"]} == {"testclient"}


def test_the_car_fetches_its_keys_with_its_device_credential_and_verifies_commands(
    api: tuple[World, TestClient], clock: FrozenClock
) -> None:
    world, client = api
    keys = call(client, world, "device_a", "GET", f"{CAR_A}/command-keys")
    assert keys.status_code == 200
    assert call(client, world, "device_b", "GET", f"{CAR_A}/command-keys").status_code == 403
    car = CommandVerifier("car-a")
    for key in keys.json()["keys"]:
        car.trust(load_public_key(key["public_key"]))
    issued = call(client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "locate"}).json()
    assert issued["key_id"] == keys.json()["keys"][0]["key_id"] and issued["key_id"] in car.keys


def test_no_answer_or_log_line_ever_holds_a_private_key(
    api: tuple[World, TestClient], services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    world, client = api
    texts = [
        call(client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "lock"}).text,
        call(client, world, "root", "POST", f"{CAR_A}/command-keys/rotate").text,
        call(client, world, "ann", "GET", f"{CAR_A}/command-keys").text,
        call(client, world, "device_a", "GET", f"{CAR_A}/command-keys").text,
        call(client, world, "ann", "GET", f"{CAR_A}/commands").text,
        client.get("/openapi.json").text,
    ]
    command_id = json.loads(texts[0])["command_id"]
    texts.append(call(client, world, "ann", "GET", f"{CAR_A}/commands/{command_id}").text)
    private = services.commands._keys.signing_key("car-a", services.clock())  # the test's oracle
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with services.engine.connect() as conn:
        sealed = list(conn.execute(select(command_keys.c.sealed_private_key)).scalars())
    secrets = [base64.b64encode(raw).decode(), raw.hex(), *sealed]
    assert len(sealed) == 2
    for text in [*texts, caplog.text]:
        for secret in secrets:
            assert secret not in text
    assert "queued by user:ann" in caplog.text  # the log was captured


def test_commands_expire_in_the_servers_lifespan_and_the_live_feed_hears_each_change(
    api: tuple[World, TestClient], services: Services, clock: FrozenClock
) -> None:
    world, client = api
    issued = call(
        client, world, "ann", "POST", f"{CAR_A}/commands", json={"action": "wake", "expires_in_s": 2}
    )
    command_id = issued.json()["command_id"]
    clock.now_ms += 2_000
    path = f"{CAR_A}/commands/{command_id}"

    def announced() -> list[str]:
        events = [e for e in services.live_log.after(0, 1000) if e.kind == "command"]
        assert {e.vehicle_id for e in events} <= {"car-a"}
        return [json.loads(e.payload_json)["status"] for e in events]

    # The expiry runs every 1 s by default and announces just after its commit; a loaded machine is slow.
    deadline = time.monotonic() + 60
    while announced() != ["queued", "expired"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert announced() == ["queued", "expired"]
    assert call(client, world, "ann", "GET", path).json()["command"]["status"] == "expired"
