"""Remote commands end to end over the real Mosquitto: the API's service queues and signs, the bridge's
dispatcher publishes to online twin cars, the cars verify and act, and their results come back.

Commands injected straight onto a car's topic (replayed, edited, signed with another key, expired, another
vehicle's) are refused every time, counted, and never change the car; an offline car's command expires and
is never done late; a command delivered twice is done once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator

import aiomqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.command_wire import (
    Action,
    CommandResult,
    CommandVerifier,
    ResultStatus,
    encode,
    encode_result,
    new_nonce,
    sign,
)
from microfleet.domain.commands import CommandStatus
from microfleet.ingest.mqtt import MqttConnection, MqttTopics
from microfleet.ingest.mqtt_commands import MqttCommandDispatcher
from microfleet.sim import command_link
from microfleet.sim.command_link import MqttCommandCars
from microfleet.sim.commands import CommandExecutor, controls_for_model
from tests.integration.mqtt_broker import INGEST_USER, Broker, started_broker, wait_for

MODEL = "dacia-spring-65-2024"  # locks, climate, charge start/stop (domain/commands.py)


class WallClock:
    """The services on the wall clock: the cars check expiry against theirs."""

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


@dataclasses.dataclass
class World:
    services: Services
    broker: Broker
    owner: UserPrincipal
    cars: MqttCommandCars
    dispatcher: MqttCommandDispatcher
    connection: MqttConnection
    passwords: dict[str, str]

    def car(self, vehicle_id: str) -> CommandExecutor:
        return self.cars.executors[vehicle_id]

    def status(self, vehicle_id: str, command_id: str) -> CommandStatus:
        return self.services.commands.get(self.owner, vehicle_id, command_id)[0].status

    def issue(self, vehicle_id: str, action: Action, **params: object) -> str:
        expires = params.pop("expires_in_s", None)
        command, _ = self.services.commands.issue(
            self.owner,
            vehicle_id,
            action,
            params,
            expires_in_s=expires,
            client="test",  # type: ignore[arg-type]
        )
        return command.command_id


def _world(services: Services, broker: Broker) -> World:
    services.admin.add_user("owner", Role.OWNER)
    owner = next(u for u in services.admin.list_users() if u.name == "owner")
    access = broker.access(services)
    passwords: dict[str, str] = {}
    executors = {}
    for vehicle_id in ("car-a", "car-b"):
        services.admin.add_vehicle(vehicle_id, model_id=MODEL)
        services.admin.grant(vehicle_id, user_name="owner")
        passwords[vehicle_id] = access.issue(vehicle_id).password
        executor = CommandExecutor(
            CommandVerifier(vehicle_id), controls_for_model(MODEL, ambient_c=5.0, cabin_c=5.0)
        )
        executor.trust_keys(services.commands.public_keys(vehicle_id))  # as the car fetches them over the API
        executors[vehicle_id] = executor
    login = access.set_ingest_login()
    connection = MqttConnection(
        "127.0.0.1",
        broker.port,
        login.username,
        login.password,
        f"{broker.prefix}-bridge",
        reconnect_first_s=0.2,
    )
    dispatcher = MqttCommandDispatcher(
        services.commands, MqttTopics(broker.prefix), services.clock, expire_interval_s=0.2
    )
    cars = MqttCommandCars("127.0.0.1", broker.port, passwords, executors, topic_prefix=broker.prefix)
    return World(services, broker, owner, cars, dispatcher, connection, passwords)


@dataclasses.dataclass
class Injector:
    """Someone who can publish on cars' command topics (the broker lets only the bridge's login do it)."""

    client: aiomqtt.Client
    prefix: str

    async def send(self, vehicle_id: str, payload: bytes) -> None:
        await self.client.publish(f"{self.prefix}/v1/{vehicle_id}/commands", payload, qos=1)


@dataclasses.dataclass
class Running:
    injector: Injector


@contextlib.asynccontextmanager
async def _running(world: World) -> AsyncIterator[Running]:
    connected, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(world.dispatcher.run(world.connection, stop, connected=connected))
    await asyncio.wait_for(connected.wait(), 10)
    injector = aiomqtt.Client(
        "127.0.0.1",
        world.broker.port,
        username=world.connection.username,
        password=world.connection.password,
        identifier=f"{world.broker.prefix}-injector",
    )
    try:
        async with injector:
            yield Running(Injector(injector, world.broker.prefix))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await asyncio.to_thread(world.cars.close)


def _settled(world: World, vehicle_id: str, command_id: str) -> bool:
    return world.status(vehicle_id, command_id) not in (CommandStatus.QUEUED, CommandStatus.SENT)


def test_the_topics_match_the_dispatchers() -> None:
    dispatcher_topics = MqttCommandDispatcher.__new__(MqttCommandDispatcher)
    dispatcher_topics.topics = MqttTopics("p")
    assert command_link.commands_topic("p", "car-a") == dispatcher_topics.commands_topic("car-a")
    assert dispatcher_topics.results_filter.replace("+", "car-a") == command_link.results_topic("p", "car-a")
    assert INGEST_USER  # the bridge's login is the broker fixture's ingest user


def test_a_command_round_trip_changes_the_car_and_records_its_answer(
    services: Services, broker: Broker
) -> None:
    world = _world(services, broker)
    car = world.car("car-a")

    async def scenario() -> None:
        async with _running(world):
            await asyncio.to_thread(world.cars.connect, "car-a")
            await wait_for(lambda: world.dispatcher.online.get("car-a") is True)
            unlock = world.issue("car-a", Action.UNLOCK)
            climate = world.issue("car-a", Action.CLIMATE_ON)  # the Dacia takes no target: 21 °C
            charge = world.issue("car-a", Action.CHARGE_START)  # no cable plugged in
            for command_id in (unlock, climate, charge):
                await wait_for(lambda c=command_id: _settled(world, "car-a", c))
            assert world.status("car-a", unlock) is CommandStatus.ACKNOWLEDGED
            assert world.status("car-a", climate) is CommandStatus.ACKNOWLEDGED
            assert world.status("car-a", charge) is CommandStatus.FAILED
            command, events = services.commands.get(world.owner, "car-a", charge)
            assert command.result_reason == "no charging cable is plugged in"
            assert command.channel == "mqtt"
            assert sorted(e.event for e in events) == ["failed", "queued", "sent"]

    asyncio.run(scenario())
    assert car.controls.locked is False
    assert car.controls.climate_target_c == 21.0
    car.controls.advance(600.0)
    assert car.controls.cabin_c > 5.0 and car.controls.hvac_energy_kwh > 0  # the HVAC runs from the pack
    assert car.counts["acknowledged"] == 2 and car.counts["failed"] == 1


def test_injected_forged_replayed_expired_and_foreign_commands_are_all_refused(
    services: Services, broker: Broker
) -> None:
    world = _world(services, broker)
    car = world.car("car-a")
    injected = 0

    async def scenario() -> None:
        nonlocal injected
        async with _running(world) as running:
            # Commands signed by the server but never delivered: one expired, one for car-b (offline).
            expired_id = world.issue("car-a", Action.UNLOCK, expires_in_s=1)
            foreign_id = world.issue("car-b", Action.UNLOCK)
            await wait_for(lambda: world.status("car-a", expired_id) is CommandStatus.EXPIRED)
            await asyncio.to_thread(world.cars.connect, "car-a")
            await wait_for(lambda: world.dispatcher.online.get("car-a") is True)
            genuine_id = world.issue("car-a", Action.LOCATE)
            await wait_for(lambda: _settled(world, "car-a", genuine_id))
            assert world.status("car-a", genuine_id) is CommandStatus.ACKNOWLEDGED
            before = dataclasses.asdict(car.controls)
            genuine = services.commands.get(world.owner, "car-a", genuine_id)[0].signed
            expired = services.commands.get(world.owner, "car-a", expired_id)[0].signed
            foreign = services.commands.get(world.owner, "car-b", foreign_id)[0].signed
            other_key = sign(dataclasses.replace(genuine, action=Action.UNLOCK), Ed25519PrivateKey.generate())
            attacks = [
                encode(genuine),  # replayed as it was
                encode(genuine),  # and again (a QoS 1 redelivery looks the same)
                encode(dataclasses.replace(genuine, action=Action.UNLOCK)),  # an edited field
                encode(dataclasses.replace(genuine, nonce=new_nonce())),  # a fresh nonce on the old signature
                encode(other_key),  # signed with a key the car does not trust
                encode(dataclasses.replace(other_key, key_id=genuine.key_id)),  # ... claiming the car's key
                encode(expired),  # genuine, but past its expiry
                encode(foreign),  # genuine, for another car
                encode(dataclasses.replace(foreign, vehicle_id="car-a")),  # re-addressed (car-b's key)
                b'{"not": "a command"}',
            ]
            for payload in attacks:
                await running.injector.send("car-a", payload)
            injected = len(attacks)
            await wait_for(lambda: car.refused == injected)
            await asyncio.sleep(0.3)  # their results reach the dispatcher, which must not apply them
            assert dataclasses.asdict(car.controls) == before

    asyncio.run(scenario())
    assert car.executed == [services.commands.get(world.owner, "car-a", car.executed[0])[0].command_id]
    assert car.counts["acknowledged"] == 1
    assert car.refused == injected == 10
    reasons = {k.removeprefix("refused "): n for k, n in car.counts.items() if k.startswith("refused")}
    assert reasons == {
        "replayed": 2,
        "bad_signature": 3,
        "unknown_key": 2,
        "expired": 1,
        "wrong_vehicle": 1,
        "malformed": 1,
    }
    # The server kept its own view: car-b's command untouched, none of the refusals applied to a command.
    foreign = [c for c in services.commands.list_for_vehicle(world.owner, "car-b")[0]]
    assert [c.status for c in foreign] == [CommandStatus.QUEUED]
    assert world.dispatcher.counts["result applied"] == 1
    assert car.controls.locked is True


def test_an_offline_cars_command_expires_and_is_never_done_late(services: Services, broker: Broker) -> None:
    world = _world(services, broker)
    car = world.car("car-a")

    async def scenario() -> None:
        async with _running(world):
            await asyncio.to_thread(world.cars.connect, "car-a")
            await wait_for(lambda: world.dispatcher.online.get("car-a") is True)
            await asyncio.to_thread(world.cars.disconnect, "car-a")
            await wait_for(lambda: world.dispatcher.online.get("car-a") is False)
            command_id = world.issue("car-a", Action.UNLOCK, expires_in_s=1)
            await wait_for(lambda: world.status("car-a", command_id) is CommandStatus.EXPIRED)
            await asyncio.to_thread(world.cars.connect, "car-a")  # back online after the expiry
            await wait_for(lambda: world.dispatcher.online.get("car-a") is True)
            await asyncio.sleep(1.0)  # twenty dispatch polls
            assert world.status("car-a", command_id) is CommandStatus.EXPIRED

    asyncio.run(scenario())
    assert car.executed == [] and sum(car.counts.values()) == 0
    assert car.controls.locked is True


def test_a_cars_malformed_or_misdirected_results_are_counted_and_never_applied(
    services: Services, broker: Broker
) -> None:
    world = _world(services, broker)
    foreign_id = world.issue("car-b", Action.UNLOCK)
    base = f"{broker.prefix}/v1/car-a/command_results"
    answers = [
        b"not json",
        b'{"v": 1, "command_id": "x", "vehicle_id": "car-a", "status": "maybe", "ts_ms": 1, "reason": null}',
        encode_result(
            CommandResult(foreign_id, "car-b", ResultStatus.ACKNOWLEDGED, 1)
        ),  # car-b's, from car-a
        encode_result(CommandResult(foreign_id, "car-a", ResultStatus.ACKNOWLEDGED, 1)),
        encode_result(CommandResult("no-such-command", "car-a", ResultStatus.ACKNOWLEDGED, 1)),
    ]

    async def scenario() -> None:
        async with _running(world):
            car = aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="car-a",
                password=world.passwords["car-a"],
                identifier="raw-a",
            )
            async with car:
                for payload in answers:
                    await car.publish(base, payload, qos=1)
            await wait_for(
                lambda: sum(n for k, n in world.dispatcher.counts.items() if k.startswith("result")) == 5
            )

    asyncio.run(scenario())
    counts = {k: n for k, n in world.dispatcher.counts.items() if k.startswith("result")}
    assert counts == {"result malformed": 2, "result wrong_vehicle": 2, "result unknown_command": 1}
    assert world.status("car-b", foreign_id) is CommandStatus.QUEUED  # never applied


def test_a_car_fetches_its_own_keys_with_its_device_credential(services: Services) -> None:
    tokens = {v: services.admin.add_vehicle(v, model_id=MODEL) for v in ("car-a", "car-b")}
    with TestClient(create_app(services.settings, services)) as api:
        keys = command_link.fetch_command_keys("", "car-a", tokens["car-a"], client=api)
        assert keys == services.commands.public_keys("car-a") and len(keys) == 1
        # Another car's credential reads nothing of car-a's (the test client's own HTTPStatusError).
        with pytest.raises(Exception, match="403 Forbidden"):
            command_link.fetch_command_keys("", "car-a", tokens["car-b"], client=api)
    car = CommandExecutor(CommandVerifier("car-a"), controls_for_model(MODEL))
    car.trust_keys(keys)
    assert list(car.verifier.keys) == [k.key_id for k in services.commands.key_infos("car-a")]
