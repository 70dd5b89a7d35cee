"""TLS is a setting: with ``MICROFLEET_MQTT_TLS`` and a CA the bridge reaches a broker whose listener
Microfleet configured for TLS, and stores a car's telemetry sent over TLS; a client without TLS is not
served there, and the bridge refuses a broker whose certificate its CA did not sign."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Iterator

import aiomqtt
import msgspec
import pytest

from microfleet.bootstrap import Services, build_mqtt_bridge
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import INGEST_USER, Broker, Car, running, started_broker, wait_for


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker(tls=True) as started:
        yield started


def _bridge_services(services: Services, broker: Broker, **tls: object) -> Services:
    password = broker.access(services).set_ingest_login().password
    settings = services.settings.model_copy(
        update={
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker.port,
            "mqtt_topic_prefix": broker.prefix,
            "mqtt_username": INGEST_USER,
            "mqtt_password": password,
            "mqtt_client_id": f"{broker.prefix}-bridge",
            **tls,
        }
    )
    return dataclasses.replace(services, settings=settings)


def test_the_bridge_and_a_car_over_tls(services: Services, broker: Broker) -> None:
    services.admin.add_vehicle("car-1")
    car = Car(broker, "car-1", broker.access(services).issue("car-1").password)
    adapter, connection = build_mqtt_bridge(
        _bridge_services(services, broker, mqtt_tls=True, mqtt_tls_ca_path=broker.cert_path)
    )
    car_tls = ssl.create_default_context(cafile=str(broker.cert_path))
    records = [{"vehicle_id": "car-1", "ts_ms": NOW_MS - 60_000 + i * 1000} for i in range(3)]

    async def scenario() -> None:
        async with running(adapter, connection), car.client(tls_context=car_tls) as client:
            await client.publish(f"{broker.prefix}/v1/car-1/telemetry", msgspec.json.encode(records), qos=1)
            await wait_for(lambda: adapter.counters.records_accepted == 3)
        with pytest.raises(aiomqtt.MqttError):
            async with car.client(timeout=1.0):  # plain MQTT on the TLS listener: no answer
                pass

    asyncio.run(scenario())
    assert services.telemetry.count("car-1") == 3


# paho leaves the socket of a refused TLS handshake for the garbage collector to close.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_bridge_refuses_a_certificate_its_ca_did_not_sign(services: Services, broker: Broker) -> None:
    adapter, connection = build_mqtt_bridge(_bridge_services(services, broker, mqtt_tls=True))  # system CAs
    stop = asyncio.Event()

    async def scenario() -> None:
        task = asyncio.create_task(adapter.run(connection, stop))
        await wait_for(lambda: adapter.counters.reconnects >= 1)
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    assert adapter.counters.messages == 0
