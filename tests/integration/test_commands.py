"""Remote commands through the service over both stores: lifecycle, idempotency, who may, expiry, keys.

The car side is the reference verifier (``domain/command_wire.CommandVerifier``) a box embeds: every command
the service queues must pass it with the keys the service lists, and nothing else may.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from microfleet.bootstrap import Services
from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.command_wire import (
    Action,
    CommandRefused,
    CommandResult,
    CommandVerifier,
    Refusal,
    ResultStatus,
    decode,
    encode,
    load_public_key,
)
from microfleet.domain.commands import CommandStatus
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.services.commands import ResultVerdict
from microfleet.store.commands_store import command_events, command_keys, commands
from tests.integration.conftest import FrozenClock

HOUR_MS = 3_600_000


@pytest.fixture
def people(services: Services) -> dict[str, UserPrincipal]:
    """ann owns car-a (city-share's), olga operates city-share, eve bus-co, dan drives, root is admin."""
    admin = services.admin
    admin.add_fleet("city-share", "City car-sharing pilot")
    admin.add_fleet("bus-co", "Shuttles")
    admin.add_vehicle("car-a", name="Mini of Ann", fleet_id="city-share")
    admin.add_vehicle("twizy", name="Twizy", model_id="renault-twizy-80", fleet_id="city-share")
    admin.add_vehicle("car-c", name="Spring of the shuttles", fleet_id="bus-co")
    for name, role, fleet in [
        ("ann", Role.OWNER, None),
        ("dan", Role.DRIVER, None),
        ("olga", Role.OPERATOR, "city-share"),
        ("eve", Role.OPERATOR, "bus-co"),
        ("root", Role.ADMIN, None),
    ]:
        admin.add_user(name, role, fleet)
    for vehicle_id in ("car-a", "twizy"):
        admin.grant(vehicle_id, user_name="ann")
        admin.grant(vehicle_id, user_name="dan")
    admin.grant("car-a", user_name="eve")  # eve sees car-a, but it is not her fleet's
    return {u.name: u for u in admin.list_users()}


def verifier(services: Services, vehicle_id: str) -> CommandVerifier:
    """The car's verifier, provisioned as the twin is: with the keys the server lists."""
    car = CommandVerifier(vehicle_id)
    for text in services.commands.public_keys(vehicle_id):
        car.trust(load_public_key(text))
    return car


def test_a_command_lives_queued_sent_acknowledged_and_is_audited(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    service = services.commands
    command, created = service.issue(people["ann"], "car-a", Action.LOCK, {}, client="203.0.113.7")
    assert created and command.status is CommandStatus.QUEUED
    assert command.expires_at_ms == clock.now_ms + 60_000  # the default expiry
    car = verifier(services, "car-a")
    wire = decode(encode(command.signed))
    assert car.verify(wire, clock.now_ms) == wire  # signed with the car's current key
    with pytest.raises(CommandRefused) as replayed:
        car.verify(wire, clock.now_ms)
    assert replayed.value.reason is Refusal.REPLAYED

    assert [c.command_id for c in service.due_for_dispatch(clock.now_ms)] == [command.command_id]
    assert service.due_for_dispatch(clock.now_ms, vehicle_ids=["car-c"]) == []
    clock.now_ms += 40
    assert service.mark_sent(command.command_id, clock.now_ms, "mqtt")
    assert not service.mark_sent(command.command_id, clock.now_ms, "mqtt")  # already sent
    assert service.due_for_dispatch(clock.now_ms) == []
    result = CommandResult(command.command_id, "car-a", ResultStatus.ACKNOWLEDGED, clock.now_ms + 5)
    assert service.record_result(result, reporting_vehicle_id="car-a", now_ms=clock.now_ms + 9) == "applied"
    assert service.record_result(result, reporting_vehicle_id="car-a", now_ms=clock.now_ms + 9) == "duplicate"
    late = replace(result, status=ResultStatus.FAILED)
    assert service.record_result(late, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == "not_sent"

    stored, events = service.get(people["ann"], "car-a", command.command_id)
    assert (stored.status, stored.channel, stored.sent_at_ms) == ("acknowledged", "mqtt", clock.now_ms)
    assert [(e.event, e.actor) for e in reversed(events)] == [
        ("queued", "user:ann"),
        ("sent", "dispatcher:mqtt"),
        ("acknowledged", "vehicle:car-a"),
    ]
    assert events[-1].client == "203.0.113.7"
    listed, refused = service.list_for_vehicle(people["olga"], "car-a")
    assert [c.command_id for c in listed] == [command.command_id] and refused == []


def test_a_result_before_mark_sent_is_applied_and_the_command_is_not_sent_again(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    """The dispatcher publishes, then marks sent: a fast car may answer in between."""
    command, _ = services.commands.issue(people["ann"], "car-a", Action.WAKE, {})
    result = CommandResult(command.command_id, "car-a", ResultStatus.ACKNOWLEDGED, clock.now_ms)
    assert services.commands.record_result(result, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == (
        ResultVerdict.APPLIED
    )
    assert not services.commands.mark_sent(command.command_id, clock.now_ms, "mqtt")
    assert services.commands.due_for_dispatch(clock.now_ms) == []


def test_the_same_idempotency_key_gives_the_same_command_never_a_second(
    services: Services, people: dict[str, UserPrincipal]
) -> None:
    service = services.commands
    first, created = service.issue(people["ann"], "car-a", Action.UNLOCK, {}, idempotency_key="k-1")
    again, created_again = service.issue(people["ann"], "car-a", Action.UNLOCK, {}, idempotency_key="k-1")
    assert (created, created_again) == (True, False) and again == first
    with pytest.raises(InvalidInputError, match="Idempotency-Key was already used"):
        service.issue(people["ann"], "car-a", Action.LOCK, {}, idempotency_key="k-1")
    other, created_other = service.issue(people["olga"], "car-a", Action.UNLOCK, {}, idempotency_key="k-1")
    assert created_other and other.command_id != first.command_id  # keys are per caller
    with services.engine.connect() as conn:
        assert len(conn.execute(select(commands)).all()) == 2


def test_a_driver_commands_only_during_their_own_booking_and_refusals_are_audited(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    service, dan = services.commands, people["dan"]
    with pytest.raises(PermissionDeniedError, match="only during their own booking"):
        service.issue(dan, "car-a", Action.UNLOCK, {}, client="198.51.100.4")
    booking = services.bookings.create("car-a", "dan", clock.now_ms + HOUR_MS, clock.now_ms + 3 * HOUR_MS)
    with pytest.raises(PermissionDeniedError):  # booked, but not yet
        service.issue(dan, "car-a", Action.UNLOCK, {})
    clock.now_ms += 3 * HOUR_MS - 30_000  # 30 s before the booking ends
    command, _ = service.issue(dan, "car-a", Action.UNLOCK, {})
    assert command.expires_at_ms == booking.end_ms  # a driver's command never outlives the booking
    with pytest.raises(PermissionDeniedError):  # another car, not booked
        service.issue(dan, "twizy", Action.UNLOCK, {})
    services.bookings.cancel(booking.booking_id)
    with pytest.raises(PermissionDeniedError):
        service.issue(dan, "car-a", Action.LOCK, {})
    assert service.refusals["permission_denied"] == 4

    _, refused = service.list_for_vehicle(people["ann"], "car-a")
    assert [(e.actor, e.action, e.client) for e in reversed(refused)] == [
        ("user:dan", "unlock", "198.51.100.4"),
        ("user:dan", "unlock", "unknown"),
        ("user:dan", "lock", "unknown"),
    ]
    assert all("booking" in e.detail for e in refused)
    mine, my_refusals = service.list_for_vehicle(dan, "car-a")  # a driver sees their own
    assert [c.command_id for c in mine] == [command.command_id] and len(my_refusals) == 3


def test_operators_command_only_their_fleet_and_unseen_cars_are_not_found(
    services: Services, people: dict[str, UserPrincipal]
) -> None:
    service = services.commands
    assert service.issue(people["olga"], "car-a", Action.LOCATE, {})[1]
    with pytest.raises(PermissionDeniedError, match="own fleet"):
        service.issue(people["eve"], "car-a", Action.LOCATE, {})  # sees it, not her fleet's
    with pytest.raises(NotFoundError):
        service.issue(people["ann"], "car-c", Action.LOCATE, {})
    assert service.issue(people["root"], "car-c", Action.LOCATE, {})[1]  # admins command any car
    with services.engine.connect() as conn:
        attempts = conn.execute(
            select(command_events.c.vehicle_id, command_events.c.actor).where(
                command_events.c.event == "refused_attempt"
            )
        ).all()
    assert sorted(tuple(a) for a in attempts) == [("car-a", "user:eve"), ("car-c", "user:ann")]


@pytest.mark.parametrize(
    ("vehicle_id", "action", "params", "message"),
    [
        ("twizy", Action.CLIMATE_ON, {}, "cannot climate_on"),
        ("twizy", Action.LOCATE, {}, "cannot locate"),
        ("car-a", Action.CLIMATE_ON, {"target_c": 80}, "target_c 80 is out of range"),
        ("car-a", Action.SET_CHARGE_LIMIT, {"limit_pct": 5}, "limit_pct 5 is out of range"),
        ("car-a", Action.SET_CHARGE_LIMIT, {}, "needs limit_pct"),
        ("car-a", Action.LOCK, {"speed": 3}, "takes no parameter speed"),
        ("car-a", Action.CLIMATE_ON, {"target_c": "warm"}, "must be a number"),
    ],
)
def test_unsupported_actions_and_bad_parameters_are_refused_before_anything_is_stored(
    services: Services,
    people: dict[str, UserPrincipal],
    vehicle_id: str,
    action: Action,
    params: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        services.commands.issue(people["ann"], vehicle_id, action, params)
    with services.engine.connect() as conn:
        assert conn.execute(select(commands)).all() == []
        assert conn.execute(select(command_keys)).all() == []  # not even a key was made
    assert services.commands.refusals["invalid_input"] == 1


def test_a_twizy_lock_is_its_speed_lock_and_its_charge_limit_is_taken(
    services: Services, people: dict[str, UserPrincipal]
) -> None:
    lock, _ = services.commands.issue(people["ann"], "twizy", Action.LOCK, {})
    limit, _ = services.commands.issue(people["ann"], "twizy", Action.SET_CHARGE_LIMIT, {"limit_pct": 80.0})
    assert (lock.action, dict(limit.params)) == (Action.LOCK, {"limit_pct": 80})


def test_an_offline_cars_command_expires_and_is_never_dispatched_late(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    service = services.commands
    command, _ = service.issue(people["ann"], "car-a", Action.UNLOCK, {}, expires_in_s=5)
    sent, _ = service.issue(people["ann"], "car-a", Action.LOCK, {}, expires_in_s=5)
    assert service.mark_sent(sent.command_id, clock.now_ms, "mqtt")
    clock.now_ms += 5_000
    assert service.due_for_dispatch(clock.now_ms) == []  # due no more at its expiry, even before expire_due
    assert service.expire_due(clock.now_ms) == 2
    assert service.expire_due(clock.now_ms) == 0
    assert not service.mark_sent(command.command_id, clock.now_ms, "mqtt")
    answer = CommandResult(command.command_id, "car-a", ResultStatus.ACKNOWLEDGED, clock.now_ms)
    assert service.record_result(answer, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == "not_sent"
    # The sent one may still tell what the car did just before its expiry.
    answer = CommandResult(sent.command_id, "car-a", ResultStatus.ACKNOWLEDGED, clock.now_ms - 1)
    assert service.record_result(answer, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == "applied"
    unsent, events = service.get(people["ann"], "car-a", command.command_id)
    assert unsent.status is CommandStatus.EXPIRED and events[0].detail == "expired unsent (car offline)"
    with pytest.raises(InvalidInputError, match="expires_in_s"):
        service.issue(people["ann"], "car-a", Action.LOCK, {}, expires_in_s=2 * 86_400)


def test_a_result_from_another_vehicle_or_for_an_unknown_command_is_refused_and_counted(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    service = services.commands
    command, _ = service.issue(people["ann"], "car-a", Action.UNLOCK, {})
    service.mark_sent(command.command_id, clock.now_ms, "mqtt")
    forged = CommandResult(command.command_id, "car-a", ResultStatus.ACKNOWLEDGED, clock.now_ms)
    assert service.record_result(forged, reporting_vehicle_id="twizy", now_ms=clock.now_ms) == "wrong_vehicle"
    claims_other = replace(forged, vehicle_id="twizy")
    assert service.record_result(claims_other, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == (
        "wrong_vehicle"
    )
    unknown = replace(forged, command_id="no-such-command")
    assert service.record_result(unknown, reporting_vehicle_id="car-a", now_ms=clock.now_ms) == (
        "unknown_command"
    )
    assert service.get(people["ann"], "car-a", command.command_id)[0].status is CommandStatus.SENT
    assert service.rejected_results == {"wrong_vehicle": 2, "unknown_command": 1}


def test_rotation_lists_the_previous_key_for_a_while_and_private_keys_are_sealed(
    services: Services, people: dict[str, UserPrincipal], clock: FrozenClock
) -> None:
    service = services.commands
    before, _ = service.issue(people["ann"], "car-a", Action.LOCK, {})
    (first,) = service.public_keys("car-a")
    keys = service.rotate_key_for(people["olga"], "car-a")
    assert [k.current for k in keys] == [True, False] and keys[1].public_key == first
    after, _ = service.issue(people["ann"], "car-a", Action.UNLOCK, {})
    assert before.signed.key_id != after.signed.key_id == keys[0].key_id
    car = verifier(services, "car-a")  # a car that fetched the keys after the rotation
    car.verify(before.signed, clock.now_ms)  # signed before the rotation: still accepted
    car.verify(after.signed, clock.now_ms)
    clock.now_ms += 86_400_000  # the overlap (MICROFLEET_COMMAND_KEY_PREVIOUS_LISTED_S) is over
    assert service.public_keys("car-a") == [keys[0].public_key]
    with pytest.raises(PermissionDeniedError):
        service.rotate_key_for(people["dan"], "car-a")
    with services.engine.connect() as conn:
        sealed = conn.execute(select(command_keys.c.sealed_private_key)).scalars().all()
    assert len(sealed) == 2 and all(len(s) > 60 for s in sealed)  # nonce, 32 bytes and the GCM tag
    assert not any(s.startswith("MC4C") for s in sealed)  # no PKCS8 DER of an Ed25519 key in the clear


def test_racing_requests_with_one_idempotency_key_store_one_command_and_one_first_key(
    services: Services, people: dict[str, UserPrincipal]
) -> None:
    """Eight requests at once: one key pair is made for the car, and one command under the key."""
    from concurrent.futures import ThreadPoolExecutor

    def issue(_: int) -> str:
        command, _created = services.commands.issue(
            people["ann"], "car-a", Action.LOCK, {}, idempotency_key="same"
        )
        return command.command_id

    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: tuple(services.commands.public_keys("twizy")), range(8)))
        ids = list(pool.map(issue, range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == 1
    assert len(set(ids)) == 1
    with services.engine.connect() as conn:
        assert len(conn.execute(select(commands)).all()) == 1
        assert len(conn.execute(select(command_keys)).all()) == 2  # twizy's and car-a's
