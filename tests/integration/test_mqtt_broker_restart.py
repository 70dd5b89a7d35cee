"""A broker restart mid-stream loses and doubles nothing: the car re-sends what the broker did not
acknowledge, the broker keeps the adapter's queued messages across the restart (persistence), the adapter
reconnects with back-off, and every redelivery is answered as a duplicate, never stored twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiomqtt
import msgspec
import pytest

from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import Broker, Car, running, started_broker, wait_for

MESSAGES = 60
RECORDS_PER_MESSAGE = 5
RESTART_AFTER = MESSAGES // 3


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def _message(i: int) -> bytes:
    first_ms = NOW_MS - 3_600_000 + i * RECORDS_PER_MESSAGE * 1000
    return msgspec.json.encode(
        [
            {"vehicle_id": "car-1", "ts_ms": first_ms + k * 1000, "soc_pct": 40.0 + (i % 50)}
            for k in range(RECORDS_PER_MESSAGE)
        ]
    )


def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(services: Services, broker: Broker) -> None:
    services.admin.add_vehicle("car-1")
    car = Car(broker, "car-1", broker.access(services).issue("car-1").password)
    adapter, connection = broker.adapter(services)
    topic = f"{broker.prefix}/v1/car-1/telemetry"
    sent = asyncio.Event()
    car_retries = 0
    stored_at_restart: list[int] = []

    async def send_all() -> None:
        # A car's at-least-once sender: a message the broker did not acknowledge is sent again.
        nonlocal car_retries
        i = 0
        while i < MESSAGES:
            try:
                async with car.client() as client:
                    while i < MESSAGES:
                        await client.publish(topic, _message(i), qos=1, timeout=5)
                        i += 1
                        if i == RESTART_AFTER:
                            sent.set()
                        await asyncio.sleep(0.01)
            except aiomqtt.MqttError:
                car_retries += 1
                await asyncio.sleep(0.2)

    async def scenario() -> None:
        async with running(adapter, connection):
            sender = asyncio.create_task(send_all())
            await asyncio.wait_for(sent.wait(), 30)
            stored_at_restart.append(services.telemetry.count("car-1"))
            await asyncio.to_thread(broker.restart)
            await asyncio.wait_for(sender, 60)
            total = MESSAGES * RECORDS_PER_MESSAGE
            await wait_for(lambda: services.telemetry.count("car-1") >= total, 30)
            await asyncio.sleep(0.5)  # redeliveries still on their way are counted too

    asyncio.run(scenario())
    total = MESSAGES * RECORDS_PER_MESSAGE
    assert 0 < stored_at_restart[0] < total  # the restart came mid-stream
    assert adapter.counters.reconnects >= 1  # the adapter lost the broker and came back
    lost = total - services.telemetry.count("car-1")
    doubled = adapter.counters.records_accepted - total  # a record stored anew twice
    assert (lost, doubled) == (0, 0), (car_retries, adapter.counters)
    assert adapter.counters.records_rejected == 0
    print(
        f"broker restart: {total} records in {MESSAGES} messages, lost {lost}, doubled {doubled}, "
        f"redelivered as duplicate {adapter.counters.records_duplicate}, car re-sends {car_retries}, "
        f"adapter reconnects {adapter.counters.reconnects}"
    )
