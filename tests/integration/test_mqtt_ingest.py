"""Protocol v1 over a real Mosquitto configured by Microfleet, into SQLite and PostgreSQL: a car's JSON and
NDJSON messages are stored once and answered per record on its ingest_results topic; a malformed message, a
record naming another car and a topic naming no registered car are quarantined with the adapter as source;
the car's retained status is read, and its last will says when it drops off."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiomqtt
import msgspec
import pytest

from microfleet.bootstrap import Services
from microfleet.ingest.mqtt import MqttTelemetryAdapter, MqttTopics
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import Broker, Car, running, started_broker, wait_for


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def _record(vehicle_id: str, i: int) -> dict[str, object]:
    return {"vehicle_id": vehicle_id, "ts_ms": NOW_MS - 600_000 + i * 1000, "soc_pct": 50.0 + i / 10}


def test_a_car_s_messages_are_stored_once_and_answered(services: Services, broker: Broker) -> None:
    services.admin.add_vehicle("car-1")
    login = broker.access(services).issue("car-1")
    car = Car(broker, "car-1", login.password)
    adapter, connection = broker.adapter(services)

    async def scenario() -> None:
        async with running(adapter, connection), car.client() as client:
            await client.subscribe(broker.prefix + "/v1/car-1/ingest_results", qos=1)
            collecting = asyncio.create_task(car.collect(client))
            topic = f"{broker.prefix}/v1/car-1/telemetry"
            await client.publish(topic, msgspec.json.encode([_record("car-1", i) for i in range(3)]), qos=1)
            ndjson = b"\n".join(msgspec.json.encode(_record("car-1", i)) for i in range(3, 5))
            await client.publish(topic, ndjson, qos=1)
            await client.publish(topic, msgspec.json.encode([_record("car-1", i) for i in range(3)]), qos=1)
            await client.publish(topic, b'[{"vehicle_id": "car-1", "ts_ms": ', qos=1)
            await client.publish(topic, msgspec.json.encode([_record("car-9", 7)]), qos=1)
            await client.publish(f"{broker.prefix}/v1/car-1/status", b"online", qos=1, retain=True)
            await wait_for(lambda: len(car.results) == 5 and adapter.online.get("car-1") is True)
            collecting.cancel()

    asyncio.run(scenario())
    assert [(r["accepted"], r["duplicate"], r["rejected"]) for r in car.results] == [
        (3, 0, 0),
        (2, 0, 0),
        (0, 3, 0),  # the same records again: duplicates, not stored twice
        (0, 0, 1),
        (0, 0, 1),
    ]
    assert car.results[3]["results"][0]["reason"] == "malformed_json"
    assert car.results[4]["results"][0]["reason"] == "vehicle_mismatch"
    assert services.telemetry.count("car-1") == 5
    assert services.telemetry.count("car-9") == 0
    quarantined = services.quarantine.list()
    assert sorted(q.reason for q in quarantined) == ["malformed_json", "vehicle_mismatch"]
    assert {q.source for q in quarantined} == {f"mqtt {broker.prefix}/v1/car-1/telemetry"}
    assert {q.credential_vehicle_id for q in quarantined} == {"car-1"}
    counters = adapter.counters
    assert (counters.records_accepted, counters.records_duplicate, counters.records_rejected) == (5, 3, 2)
    assert counters.refused_by_reason == {"malformed_json": 1, "vehicle_mismatch": 1}


def test_a_topic_naming_no_registered_car_is_quarantined_whole(services: Services, broker: Broker) -> None:
    adapter, _ = broker.adapter(services)
    payload = msgspec.json.encode([_record("ghost", 1)])
    reply = adapter.handle(f"{broker.prefix}/v1/ghost/telemetry", payload)
    assert reply is not None and reply.topic == f"{broker.prefix}/v1/ghost/ingest_results"
    assert msgspec.json.decode(reply.payload)["results"][0]["reason"] == "unknown_vehicle"
    assert adapter.handle(f"{broker.prefix}/v1/ghost/status", b"online") is None
    (first, second) = services.quarantine.list()
    assert (first.reason, first.raw_text, first.credential_vehicle_id) == (
        "unknown_vehicle",
        payload.decode(),
        None,
    )
    assert second.source == f"mqtt {broker.prefix}/v1/ghost/status"
    assert services.telemetry.count() == 0
    assert adapter.counters.messages_quarantined == 2 and "ghost" not in adapter.online


def test_a_car_that_drops_off_is_offline_by_its_last_will(services: Services, broker: Broker) -> None:
    services.admin.add_vehicle("car-1")
    car = Car(broker, "car-1", broker.access(services).issue("car-1").password)
    adapter, connection = broker.adapter(services)
    status = f"{broker.prefix}/v1/car-1/status"

    async def scenario() -> None:
        async with running(adapter, connection):
            client = car.client(will=aiomqtt.Will(status, b"offline", qos=1, retain=True))
            await client.__aenter__()
            try:
                await client.publish(status, b"online", qos=1, retain=True)
                await wait_for(lambda: adapter.online.get("car-1") is True)
                sock = client._client.socket()
                assert sock is not None
                sock.shutdown(
                    socket.SHUT_RDWR
                )  # the link drops without DISCONNECT: the broker sends the will
                await wait_for(lambda: adapter.online.get("car-1") is False)
            finally:
                await client.__aexit__(None, None, None)

    asyncio.run(scenario())
    assert adapter.counters.status_changes == 2


def test_a_long_topic_is_cut_to_the_quarantine_s_source_column(services: Services) -> None:
    services.admin.add_vehicle("car-1")
    topics = MqttTopics("p" * 250)  # a prefix this long is allowed; the source column holds 200 characters
    adapter = MqttTelemetryAdapter(
        services.ingest, services.accounts, topics, services.clock, max_payload_bytes=1024
    )
    reply = adapter.handle(topics.telemetry("car-1"), b"not json")
    assert reply is not None and msgspec.json.decode(reply.payload)["rejected"] == 1
    adapter.handle(f"{topics.prefix}/v1/{'x' * 70}/telemetry", b"[]")  # no such vehicle id can exist
    (malformed, unknown) = services.quarantine.list()
    assert malformed.reason == "malformed_json" and unknown.reason == "unknown_vehicle"
    assert malformed.source == f"mqtt {topics.telemetry('car-1')}"[:200]
    assert len(unknown.source) == 200
