"""The broker's ACL, as Microfleet writes it, isolates cars: a car cannot publish as another car nor read
another car's topics, a wrong or revoked password cannot log in, and a rotation ends the old password."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiomqtt
import msgspec
import pytest

from microfleet.bootstrap import Services
from microfleet.errors import NotFoundError
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import Broker, Car, running, started_broker, wait_for


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def _records(vehicle_id: str, first_s: int, n: int) -> bytes:
    return msgspec.json.encode(
        [{"vehicle_id": vehicle_id, "ts_ms": NOW_MS - 600_000 + (first_s + i) * 1000} for i in range(n)]
    )


def test_a_car_can_neither_publish_as_another_nor_read_its_topics(services: Services, broker: Broker) -> None:
    for vehicle_id in ("car-a", "car-b"):
        services.admin.add_vehicle(vehicle_id)
    access = broker.access(services)
    a = Car(broker, "car-a", access.issue("car-a").password)
    b = Car(broker, "car-b", access.issue("car-b").password)
    adapter, connection = broker.adapter(services)
    base = f"{broker.prefix}/v1"

    async def scenario() -> None:
        async with running(adapter, connection), a.client() as ca, b.client() as cb:
            # car-a listens to everything it can name: the whole tree, car-b's answers and status.
            for topic in (f"{base}/#", f"{base}/car-b/ingest_results", f"{base}/+/status", "#"):
                await ca.subscribe(topic, qos=1)
            await cb.subscribe(f"{base}/car-b/ingest_results", qos=1)
            collecting = [asyncio.create_task(a.collect(ca)), asyncio.create_task(b.collect(cb))]
            # car-a writes car-b's records on car-b's topic, and on its own topic.
            await ca.publish(f"{base}/car-b/telemetry", _records("car-b", 0, 5), qos=1)
            await ca.publish(f"{base}/car-b/status", b"offline", qos=1, retain=True)
            await ca.publish(f"{base}/car-a/telemetry", _records("car-b", 10, 1), qos=1)
            await cb.publish(f"{base}/car-b/status", b"online", qos=1, retain=True)
            await cb.publish(f"{base}/car-b/telemetry", _records("car-b", 20, 2), qos=1)
            await wait_for(lambda: len(b.results) == 1 and len(a.results) == 1)
            await asyncio.sleep(0.5)  # time for anything the broker would wrongly deliver
            for task in collecting:
                task.cancel()

    asyncio.run(scenario())
    # Only car-b's own two records were stored; car-a's forgery on its own topic was quarantined.
    assert services.telemetry.count("car-b") == 2
    assert [r["results"][0]["reason"] for r in a.results] == ["vehicle_mismatch"]
    assert [(r["accepted"], r["rejected"]) for r in b.results] == [(2, 0)]
    # car-a received nothing of car-b's: not its answers, not its status, not its telemetry.
    assert all(topic == f"{base}/car-a/ingest_results" for topic, _ in a.received), a.received
    assert adapter.online == {"car-b": True}  # car-a's forged "offline" never arrived
    assert adapter.counters.messages == 3  # car-b's status and telemetry, car-a's own telemetry


def test_wrong_rotated_and_revoked_passwords_cannot_log_in(services: Services, broker: Broker) -> None:
    services.admin.add_vehicle("car-a")
    access = broker.access(services)
    first = access.issue("car-a").password
    second = access.issue("car-a")  # a rotation: the broker rereads its users (SIGHUP)
    assert second.broker_reloaded and second.password != first

    async def logs_in(vehicle_id: str, password: str) -> bool:
        await asyncio.sleep(0.3)  # the broker rereads its files asynchronously after SIGHUP
        try:
            async with Car(broker, vehicle_id, password).client():
                return True
        except aiomqtt.MqttError:
            return False

    assert asyncio.run(logs_in("car-a", second.password))
    assert not asyncio.run(logs_in("car-a", first))
    assert not asyncio.run(logs_in("car-b", second.password))
    assert access.vehicles_with_login() == ["car-a"]
    assert access.revoke("car-a")
    assert not asyncio.run(logs_in("car-a", second.password))
    with pytest.raises(NotFoundError):
        access.issue("car-unregistered")
    with pytest.raises(NotFoundError):
        access.revoke("car-a")


def test_a_car_reads_only_its_own_commands_and_answers_only_as_itself(
    services: Services, broker: Broker
) -> None:
    for vehicle_id in ("car-a", "car-b"):
        services.admin.add_vehicle(vehicle_id)
    access = broker.access(services)
    a = Car(broker, "car-a", access.issue("car-a").password)
    b = Car(broker, "car-b", access.issue("car-b").password)
    bridge_login = access.set_ingest_login()
    base = f"{broker.prefix}/v1"
    heard: list[tuple[str, bytes]] = []

    async def scenario() -> None:
        bridge = aiomqtt.Client(
            "127.0.0.1",
            broker.port,
            username=bridge_login.username,
            password=bridge_login.password,
            identifier=f"{broker.prefix}-bridge",
        )
        async with bridge, a.client() as ca, b.client() as cb:
            await bridge.subscribe(f"{base}/+/command_results", qos=1)
            for topic in (f"{base}/#", f"{base}/car-b/commands", f"{base}/+/commands", "#"):
                await ca.subscribe(topic, qos=1)
            await cb.subscribe(f"{base}/car-b/commands", qos=1)
            collecting = [asyncio.create_task(a.collect(ca)), asyncio.create_task(b.collect(cb))]

            async def listen() -> None:
                async for message in bridge.messages:
                    heard.append((str(message.topic), bytes(message.payload)))  # type: ignore[arg-type]

            collecting.append(asyncio.create_task(listen()))
            # The bridge's login may write every car's commands topic.
            await bridge.publish(f"{base}/car-a/commands", b"for-a", qos=1)
            await bridge.publish(f"{base}/car-b/commands", b"for-b", qos=1)
            # car-a answers as car-b, writes a command to car-b, and answers as itself.
            await ca.publish(f"{base}/car-b/command_results", b"forged-by-a", qos=1)
            await ca.publish(f"{base}/car-b/commands", b"command-by-a", qos=1)
            await ca.publish(f"{base}/car-a/command_results", b"own-by-a", qos=1)
            await cb.publish(f"{base}/car-b/command_results", b"own-by-b", qos=1)
            await wait_for(lambda: len(heard) == 2 and len(b.received) == 1 and len(a.received) == 1)
            await asyncio.sleep(0.5)  # time for anything the broker would wrongly deliver
            for task in collecting:
                task.cancel()

    asyncio.run(scenario())
    assert a.received == [(f"{base}/car-a/commands", b"for-a")]  # not car-b's command, not its own forgeries
    assert b.received == [(f"{base}/car-b/commands", b"for-b")]  # car-a's command to car-b never arrived
    assert sorted(heard) == [
        (f"{base}/car-a/command_results", b"own-by-a"),
        (f"{base}/car-b/command_results", b"own-by-b"),
    ]
