"""Remote commands to an OVMS v3 module over the real Mosquitto: the bridge verifies each command and sends
only its allow-listed OVMS text; the twin's module runs it and its answer becomes the command's result; no
other login can make the module run anything."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import aiomqtt
import pytest

from microfleet.bootstrap import Services
from microfleet.domain.access import Role
from microfleet.domain.command_wire import Action, CommandVerifier
from microfleet.domain.commands import CommandStatus
from microfleet.ingest.mqtt import MqttConnection
from microfleet.ingest.ovms_commands import OvmsCommandRelay
from microfleet.sim.commands import CommandExecutor, controls_for_model
from microfleet.sim.ovms_sender import OvmsSender
from tests.integration.mqtt_broker import Broker, started_broker, wait_for

MODEL = "dacia-spring-65-2024"
PIN = "4711"


class WallClock:
    def __call__(self) -> int:
        return time.time_ns() // 1_000_000


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def test_an_ovms_module_runs_only_the_allow_listed_text_and_answers(
    services: Services, broker: Broker
) -> None:
    services.admin.add_user("owner", Role.OWNER)
    owner = next(u for u in services.admin.list_users() if u.name == "owner")
    access = broker.access(services)
    for vehicle_id in ("ovms-1", "ovms-2"):
        services.admin.add_vehicle(vehicle_id, model_id=MODEL)
        services.admin.grant(vehicle_id, user_name="owner")
    password, other_password = access.issue("ovms-1").password, access.issue("ovms-2").password
    login = access.set_ingest_login()
    connection = MqttConnection(
        "127.0.0.1",
        broker.port,
        login.username,
        login.password,
        f"{broker.prefix}-bridge",
        reconnect_first_s=0.2,
    )
    # The module verifies nothing: its executor trusts no key at all.
    module_car = CommandExecutor(CommandVerifier("ovms-1"), controls_for_model(MODEL))
    module = OvmsSender(
        "127.0.0.1", broker.port, {"ovms-1": password}, executors={"ovms-1": module_car}, pin=PIN
    )
    relay = OvmsCommandRelay(
        services.commands, services.accounts, {"ovms-1/ovms-1": "ovms-1"}, services.clock, pin=PIN
    )

    def issue(action: Action) -> str:
        return services.commands.issue(owner, "ovms-1", action, {}, client="test")[0].command_id

    def status(command_id: str) -> CommandStatus:
        return services.commands.get(owner, "ovms-1", command_id)[0].status

    async def scenario() -> None:
        connected, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(relay.run(connection, stop, connected=connected))
        await asyncio.wait_for(connected.wait(), 10)
        try:
            assert await asyncio.to_thread(module.connect, "ovms-1")
            await wait_for(lambda: relay.online.get("ovms-1") is True)
            unlock, charge, climate = (
                issue(Action.UNLOCK),
                issue(Action.CHARGE_START),
                issue(Action.CLIMATE_ON),
            )
            for command_id in (unlock, charge, climate):
                await wait_for(
                    lambda c=command_id: status(c) not in (CommandStatus.QUEUED, CommandStatus.SENT)
                )
            assert status(unlock) is CommandStatus.ACKNOWLEDGED
            assert status(climate) is CommandStatus.ACKNOWLEDGED
            command = services.commands.get(owner, "ovms-1", charge)[0]
            assert command.status is CommandStatus.FAILED and command.channel == "ovms"
            assert command.result_reason == "Error: Could not start charge"  # no cable: OVMS's own words
            # Another module's login writes shell text on this module's command topic: the broker drops it.
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, username="ovms-2", password=other_password, identifier="intruder"
            ) as intruder:
                for text in (f"lock {PIN}", "charge start", "vfs rm /store/ovms_config"):
                    await intruder.publish(
                        "ovms/ovms-1/ovms-1/client/intruder/command/1", text.encode(), qos=1
                    )
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await asyncio.to_thread(module.close)

    asyncio.run(scenario())
    assert module_car.controls.locked is False  # the intruder's "lock" never arrived
    assert module_car.controls.climate_target_c is not None
    assert module_car.counts == {"acknowledged": 2, "failed": 1}
    assert relay.counts["sent"] == 3


def test_the_bridge_sends_no_text_for_a_command_that_fails_verification(services: Services) -> None:
    services.admin.add_user("owner", Role.OWNER)
    owner = next(u for u in services.admin.list_users() if u.name == "owner")
    services.admin.add_vehicle("ovms-1", model_id=MODEL)
    services.admin.grant("ovms-1", user_name="owner")
    relay = OvmsCommandRelay(
        services.commands, services.accounts, {"ovms-1/ovms-1": "ovms-1"}, services.clock, pin=PIN
    )
    genuine, _ = services.commands.issue(owner, "ovms-1", Action.LOCK, {}, client="test")
    edited = dataclasses.replace(genuine, signed=dataclasses.replace(genuine.signed, action=Action.UNLOCK))
    assert relay._translate(edited, services.clock()) == []  # nothing published
    command = services.commands.get(owner, "ovms-1", genuine.command_id)[0]
    assert command.status is CommandStatus.REFUSED
    assert command.result_reason is not None and command.result_reason.startswith("bad_signature")
    # A genuine one gets its one text; the same one again is a replay, refused before any text.
    second, _ = services.commands.issue(owner, "ovms-1", Action.UNLOCK, {}, client="test")
    assert relay._translate(second, services.clock()) == [
        (f"ovms/ovms-1/ovms-1/client/microfleet/command/{second.command_id}", f"unlock {PIN}".encode())
    ]
    assert relay._translate(second, services.clock()) == []
    assert relay.counts["not sent: refused"] == 2
