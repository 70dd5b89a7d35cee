"""Scale-out ingest against the real NATS JetStream, PostgreSQL and Mosquitto: cars' MQTT messages go to the
stream, ingest workers store them exactly once and derive history, one worker per car at a time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import aiomqtt
import msgspec
import nats
import pytest

from microfleet.bootstrap import Services, build_services
from microfleet.ingest.jetstream import JetStreamConfig, JetStreamPublisher, OutgoingBatch
from microfleet.ingest.jetstream_worker import IngestWorker
from microfleet.ingest.mqtt import MqttTelemetryAdapter, MqttTopics
from microfleet.services.derivation import HistoryDeriver, RecomputeReport
from microfleet.store.history import HistoryStore
from microfleet.store.stale_claims import StaleClaims
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import Broker, Car, running, started_broker, wait_for
from tests.integration.nats_server import PrivateNats, delete_stream, private_nats, stream_config

pytestmark = pytest.mark.parametrize("settings", ["postgres"], indirect=True)

RECORDS_PER_BATCH = 20


@pytest.fixture
def config() -> Iterator[JetStreamConfig]:
    made = stream_config()
    yield made
    delete_stream(made)


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def batch(vehicle_id: str, i: int) -> bytes:
    """NDJSON of one car's i-th batch: records 1 s apart, within the hour before the test's clock."""
    first_ms = NOW_MS - 3_600_000 + i * RECORDS_PER_BATCH * 1000
    lines = [
        msgspec.json.encode(
            {
                "vehicle_id": vehicle_id,
                "ts_ms": first_ms + k * 1000,
                "soc_pct": 50.0,
                "speed_kmh": (i % 7) * 5.0,
            }
        )
        for k in range(RECORDS_PER_BATCH)
    ]
    return b"\n".join(lines)


def worker(
    services: Services, config: JetStreamConfig, name: str, deriver: HistoryDeriver | None = None
) -> IngestWorker:
    return IngestWorker(
        services.ingest,
        config,
        StaleClaims(services.engine, services.telemetry),
        deriver or services.deriver,
        worker_id=name,
        derive_interval_s=0.2,
        clock=services.clock,
    )


def mqtt_adapter(
    broker: Broker, services: Services, config: JetStreamConfig
) -> tuple[MqttTelemetryAdapter, object]:
    _, connection = broker.adapter(services)
    adapter = MqttTelemetryAdapter(
        services.ingest,
        services.accounts,
        MqttTopics(broker.prefix),
        services.clock,
        max_payload_bytes=services.settings.ingest_max_body_bytes,
        publisher=JetStreamPublisher(config),
    )
    return adapter, connection


def stored(services: Services, vehicles: Sequence[str]) -> int:
    return sum(services.telemetry.count(v) for v in vehicles)


def test_mqtt_to_jetstream_to_worker_stores_every_record_once(
    services: Services, broker: Broker, config: JetStreamConfig
) -> None:
    vehicles = [f"car-{k}" for k in range(6)]
    cars = []
    for vehicle in vehicles:
        services.admin.add_vehicle(vehicle)
        cars.append(Car(broker, vehicle, broker.access(services).issue(vehicle).password))
    adapter, connection = mqtt_adapter(broker, services, config)
    ingest_worker = worker(services, config, "w1")
    per_car = 5

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest_worker.run(stop))
        async with running(adapter, connection):  # type: ignore[arg-type]
            for car in cars:
                async with car.client() as client:
                    for i in range(per_car):
                        await client.publish(
                            f"{broker.prefix}/v1/{car.vehicle_id}/telemetry", batch(car.vehicle_id, i), qos=1
                        )
                    # a re-send of the same batch (a car that lost the PUBACK): the stream drops it
                    await client.publish(
                        f"{broker.prefix}/v1/{car.vehicle_id}/telemetry", batch(car.vehicle_id, 0), qos=1
                    )
            total = len(vehicles) * per_car * RECORDS_PER_BATCH
            await wait_for(lambda: stored(services, vehicles) >= total, 30)
            await wait_for(lambda: services.derivations.pending() == 0, 30)  # the worker derived them
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(scenario())
    total = len(vehicles) * per_car * RECORDS_PER_BATCH
    assert stored(services, vehicles) == total
    assert adapter.counters.batches_published == len(vehicles) * (per_car + 1)
    assert ingest_worker.counters.records_accepted == total  # every record stored once
    assert ingest_worker.counters.records_rejected == 0
    assert ingest_worker.counters.derived_cars >= len(vehicles)
    # each car's re-sent batch: dropped by the stream (same Nats-Msg-Id) or answered duplicate by the store
    duplicates = ingest_worker.counters.records_duplicate // RECORDS_PER_BATCH
    assert adapter._publisher is not None
    assert adapter._publisher.duplicates + duplicates == len(vehicles)


def _publish_all(config: JetStreamConfig, batches: list[OutgoingBatch]) -> None:
    async def publish() -> None:
        publisher = JetStreamPublisher(config)
        await publisher.start()
        for item in batches:
            await publisher.publish(item)
        await publisher.close()

    asyncio.run(publish())


def _worker_process(
    services: Services, config: JetStreamConfig, name: str, log_path: Path
) -> subprocess.Popen[bytes]:
    settings = services.settings
    env = {
        **os.environ,
        "MICROFLEET_DATABASE_URL": settings.database_url,
        "MICROFLEET_DATABASE_SCHEMA": settings.database_schema or "",
        "MICROFLEET_NATS_URL": ",".join(config.servers),
        "MICROFLEET_NATS_PREFIX": config.prefix,
        "MICROFLEET_NATS_STREAM": config.stream,
        "MICROFLEET_NATS_PARTITIONS": str(config.partitions),
        "MICROFLEET_NATS_ACK_WAIT_S": str(config.ack_wait_s),
        "MICROFLEET_NATS_LEASE_S": str(config.lease_s),
    }
    command = [sys.executable, "-m", "microfleet", "ingest-worker", "--worker-id", name]
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*command, "--derive-interval-s", "0.5"], env=env, stdout=subprocess.DEVNULL, stderr=log
        )


def test_a_worker_killed_mid_stream_and_restarted_loses_and_doubles_nothing(
    services: Services, config: JetStreamConfig, tmp_path: Path
) -> None:
    vehicles = [f"car-{k}" for k in range(8)]
    for vehicle in vehicles:
        services.admin.add_vehicle(vehicle)
    per_car = 40
    batches = [
        OutgoingBatch(v, batch(v, i), "application/x-ndjson", f"test {v}", NOW_MS)
        for i in range(per_car)
        for v in vehicles
    ]
    total = len(batches) * RECORDS_PER_BATCH
    first = _worker_process(services, config, "doomed", tmp_path / "doomed.log")
    try:
        publisher = threading.Thread(target=_publish_all, args=(config, batches))
        publisher.start()
        deadline = time.monotonic() + 60
        while stored(services, vehicles) < total // 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        at_kill = stored(services, vehicles)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        publisher.join(60)
        assert 0 < at_kill < total, at_kill  # killed mid-stream
        second = _worker_process(services, config, "successor", tmp_path / "successor.log")
        try:
            deadline = time.monotonic() + 60
            while stored(services, vehicles) < total and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(config.ack_wait_s + 1)  # redeliveries still on their way are stored (or not) too
            lost = total - stored(services, vehicles)
            doubled = services.telemetry.count() - total  # every row in the store against what was published
            assert (lost, doubled) == (0, 0), (at_kill, second.poll())
            assert services.quarantine.list() == []  # no redelivery was refused as a conflicting duplicate
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
            assert second.returncode == 0, (tmp_path / "successor.log").read_text()[-2000:]
    finally:
        if first.poll() is None:
            first.kill()


class RecordingDeriver(HistoryDeriver):
    """The real deriver, noting when each car's derivation ran and on which worker."""

    def __init__(self, store: HistoryStore, name: str, log: list[tuple[str, str, float, float]]) -> None:
        super().__init__(store)
        self._name = name
        self._log = log

    def records_landed(self, vehicle_id: str, ts_ms: Sequence[int]) -> RecomputeReport | None:
        start = time.monotonic()
        try:
            return super().records_landed(vehicle_id, ts_ms)
        finally:
            self._log.append((vehicle_id, self._name, start, time.monotonic()))


def test_two_workers_share_partitions_and_never_derive_one_car_at_once(
    services: Services, config: JetStreamConfig
) -> None:
    vehicles = [f"car-{k}" for k in range(16)]
    for vehicle in vehicles:
        services.admin.add_vehicle(vehicle)
    other = build_services(services.settings, migrate=False, clock=services.clock)
    runs: list[tuple[str, str, float, float]] = []
    workers = [
        worker(built, config, name, RecordingDeriver(HistoryStore(built.engine), name, runs))
        for built, name in ((services, "a"), (other, "b"))
    ]
    per_car = 30
    batches = [
        OutgoingBatch(v, batch(v, i), "application/x-ndjson", f"test {v}", NOW_MS)
        for i in range(per_car)
        for v in vehicles
    ]
    total = len(batches) * RECORDS_PER_BATCH

    async def scenario() -> None:
        stop = asyncio.Event()
        first = asyncio.create_task(workers[0].run(stop))
        await asyncio.sleep(config.lease_s)  # a holds every partition; b's arrival makes a hand half over
        second = asyncio.create_task(workers[1].run(stop))
        # b's arrival makes a release half its partitions (after its derivation round, if one runs)
        await wait_for(lambda: all(w.leases is not None and w.leases.valid() for w in workers), 30)
        publisher = JetStreamPublisher(config)
        await publisher.start()
        for item in batches:
            await publisher.publish(item)
            await asyncio.sleep(0.002)
        await publisher.close()
        await wait_for(lambda: stored(services, vehicles) >= total, 60)
        await wait_for(lambda: services.derivations.pending() == 0, 30)
        stop.set()
        await asyncio.wait_for(asyncio.gather(first, second), 20)

    try:
        asyncio.run(scenario())
    finally:
        other.close()
    assert stored(services, vehicles) == total
    assert sum(w.counters.records_accepted for w in workers) == total
    assert all(w.counters.messages > 0 for w in workers), [w.counters for w in workers]  # the load was shared
    assert {name for _, name, _, _ in runs} == {"a", "b"}
    by_car: dict[str, list[tuple[str, float, float]]] = {}
    for vehicle, name, start, end in runs:
        by_car.setdefault(vehicle, []).append((name, start, end))
    overlaps = [
        (vehicle, x, y)
        for vehicle, spans in by_car.items()
        for i, x in enumerate(spans)
        for y in spans[i + 1 :]
        if x[0] != y[0] and x[1] < y[2] and y[1] < x[2]
    ]
    assert overlaps == []
    assert len(by_car) == len(vehicles)


def test_a_nats_restart_mid_stream_loses_and_doubles_nothing(services: Services, broker: Broker) -> None:
    with private_nats() as server:
        _nats_restart(services, broker, server)


def _nats_restart(services: Services, broker: Broker, server: PrivateNats) -> None:
    config = stream_config(server.url)
    services.admin.add_vehicle("car-1")
    car = Car(broker, "car-1", broker.access(services).issue("car-1").password)
    adapter, connection = mqtt_adapter(broker, services, config)
    ingest_worker = worker(services, config, "w1")
    messages = 60
    topic = f"{broker.prefix}/v1/car-1/telemetry"
    third = asyncio.Event()
    stored_at_restart: list[int] = []

    async def send_all() -> None:
        i = 0
        while i < messages:
            try:
                async with car.client() as client:
                    while i < messages:
                        await client.publish(topic, batch("car-1", i), qos=1, timeout=30)
                        i += 1
                        if i == messages // 3:
                            third.set()
                        await asyncio.sleep(0.02)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest_worker.run(stop))
        async with running(adapter, connection):  # type: ignore[arg-type]
            sender = asyncio.create_task(send_all())
            await asyncio.wait_for(third.wait(), 30)
            stored_at_restart.append(services.telemetry.count("car-1"))
            await asyncio.to_thread(server.restart)
            await asyncio.wait_for(sender, 90)
            await wait_for(lambda: services.telemetry.count("car-1") >= messages * RECORDS_PER_BATCH, 60)
            await asyncio.sleep(config.ack_wait_s + 0.5)
        stop.set()
        await asyncio.wait_for(task, 20)

    asyncio.run(scenario())
    total = messages * RECORDS_PER_BATCH
    assert 0 < stored_at_restart[0] < total
    lost = total - services.telemetry.count("car-1")
    doubled = ingest_worker.counters.records_accepted - total
    assert (lost, doubled) == (0, 0), (adapter.counters, ingest_worker.counters)
    assert ingest_worker.counters.records_rejected == 0


def test_an_undecodable_message_is_quarantined_with_a_reason_and_acknowledged(
    services: Services, config: JetStreamConfig
) -> None:
    ingest_worker = worker(services, config, "w1")

    async def scenario() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(ingest_worker.run(stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 15)
        nc = await nats.connect(list(config.servers))
        js = nc.jetstream()
        await js.publish(
            config.subject(0), b"\x00 not a batch", headers={"Microfleet-Source": "mqtt x/v1/car-9/telemetry"}
        )
        await wait_for(lambda: ingest_worker.counters.messages_quarantined == 1, 15)
        await asyncio.sleep(config.ack_wait_s + 0.5)  # acknowledged: never delivered again
        info = await js.consumer_info(config.stream, config.consumer(0))
        await nc.close()
        stop.set()
        await asyncio.wait_for(task, 15)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)

    asyncio.run(scenario())
    assert ingest_worker.counters.messages == 1  # not redelivered
    [entry] = services.quarantine.list()
    assert (entry.reason, entry.source) == ("undecodable_message", "mqtt x/v1/car-9/telemetry")
    assert "names no vehicle" in entry.detail
    assert entry.raw_text.endswith("not a batch")


def test_many_cars_batches_stored_together_keep_each_batch_verdicts(
    services: Services, config: JetStreamConfig
) -> None:
    """A backlog of several cars' NDJSON batches, a JSON array and a poisoned batch, waiting before the worker
    starts, so its fetches are stored together: every good record once, only the bad one quarantined."""
    vehicles = [f"car-m{k}" for k in range(6)]
    for v in vehicles:
        services.admin.add_vehicle(v, name=v)
    ndjson = "application/x-ndjson"
    batches = [OutgoingBatch(v, batch(v, i), ndjson, f"test {v}", NOW_MS) for i in range(3) for v in vehicles]
    array = b"[" + b",".join(batch("car-m0", 3).split(b"\n")) + b"]"
    batches.append(OutgoingBatch("car-m0", array, "application/json", "test car-m0", NOW_MS))
    lines = batch("car-m1", 3).split(b"\n")
    lines.insert(5, b'{"vehicle_id": "car-m1", "ts_ms": 1763990000000, "gear": "\\udc00"}')
    batches.append(OutgoingBatch("car-m1", b"\n".join(lines), ndjson, "test car-m1", NOW_MS))
    _publish_all(config, batches)
    expected = (len(vehicles) * 3 + 2) * RECORDS_PER_BATCH
    ingest_worker = worker(services, config, "w1")

    async def scenario() -> list[tuple[int, int]]:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest_worker.run(stop))
        await wait_for(lambda: ingest_worker.counters.messages == len(batches), 30)
        nc = await nats.connect(list(config.servers))
        js = nc.jetstream()
        await asyncio.sleep(0.5)
        pending = []
        for partition in range(config.partitions):
            info = await js.consumer_info(config.stream, config.consumer(partition))
            pending.append((info.num_pending, info.num_ack_pending))
        await nc.close()
        stop.set()
        await asyncio.wait_for(task, 15)
        return pending

    pending = asyncio.run(scenario())
    assert set(pending) == {(0, 0)}  # every message acknowledged
    assert stored(services, vehicles) == expected
    counters = ingest_worker.counters
    assert (counters.records_accepted, counters.records_duplicate, counters.records_rejected) == (
        expected,
        0,
        1,
    )
    [kept] = services.quarantine.list()
    assert (kept.reason, kept.source, kept.credential_vehicle_id) == ("invalid_utf8", "test car-m1", "car-m1")
