"""Twin cars as OVMS v3 modules (issue 12 item 5): each car, logged in to a real Mosquitto as its own broker
user, publishes its records metric by metric as OVMS's server-v3 client does; Microfleet's OVMS bridge stores
one record per send, in SQLite and PostgreSQL: records sent = records stored, none doubled, the values to
the precision OVMS writes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from microfleet.bootstrap import Services
from microfleet.ingest.mqtt import MqttConnection
from microfleet.ingest.ovms_bridge import OvmsBridge
from microfleet.sim.engine import Twin
from microfleet.sim.ovms_sender import OvmsSender
from microfleet.sim.run import run_days
from microfleet.sim.scenario import Scenario, registrations
from microfleet.sim.senders import SendResult, records_from_rows
from microfleet.store.schema import telemetry
from tests.integration.conftest import FrozenClock
from tests.integration.mqtt_broker import Broker, started_broker

SCENARIO = Scenario(
    vehicles=1, days=1, seed=20, sharing_share=0.0, vehicle_id_prefix="otwin", protocol="ovms"
)
SENDS = 300  # the first 300 records of the car's day, 30 at a time (about 3,500 OVMS messages)


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def _stored(services: Services) -> list[tuple[int, float | None, float | None]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            select(telemetry.c.ts_ms, telemetry.c.soc_pct, telemetry.c.lat_deg).order_by(telemetry.c.ts_ms)
        )
        return [(r.ts_ms, r.soc_pct, r.lat_deg) for r in rows]


def test_a_twin_car_as_an_ovms_module_is_stored_one_record_per_send(
    services: Services, broker: Broker, clock: FrozenClock
) -> None:
    clock.now_ms = time.time_ns() // 1_000_000 + 60_000
    (car,) = registrations(SCENARIO)
    vehicle_id = car.vehicle_id
    services.admin.add_vehicle(vehicle_id, name=car.name, model_id=car.model_id)
    access = broker.access(services)
    ingest = access.set_ingest_login()
    password = access.issue(vehicle_id).password
    broker.restart()
    # The twin's module: server.v3 user and vehicle id are both the car's id.
    bridge = OvmsBridge(
        services.ingest, services.accounts, {f"{vehicle_id}/{vehicle_id}": vehicle_id}, services.clock
    )
    connection = MqttConnection(
        "127.0.0.1",
        broker.port,
        ingest.username,
        ingest.password,
        f"{broker.prefix}-ovms",
        reconnect_first_s=0.2,
    )
    day = next(run_days(Twin(SCENARIO), start_ms=clock.now_ms - 86_400_000 - 60_000))
    records = records_from_rows(day.telemetry.slice(0, SENDS).to_pylist())

    loop, stop, subscribed = asyncio.new_event_loop(), asyncio.Event(), threading.Event()

    async def run_bridge() -> None:
        connected = asyncio.Event()
        task = asyncio.create_task(bridge.run(connection, stop, connected=connected))
        await connected.wait()
        subscribed.set()
        await task

    thread = threading.Thread(target=loop.run_until_complete, args=(run_bridge(),), daemon=True)
    thread.start()
    sender = OvmsSender("127.0.0.1", broker.port, {vehicle_id: password})
    result = SendResult()
    try:
        assert subscribed.wait(10)
        for start in range(0, SENDS, 30):
            # QoS 0 and one commit per send: wait for the bridge before the next 30, as a module's
            # 5-second sends would (the last send closes after the bridge's 500 ms quiet time).
            result.add(sender.send(vehicle_id, records[start : start + 30]))
            deadline = time.monotonic() + 20
            while len(_stored(services)) < start + 30 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        sender.close()
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
    assert result.sent == result.unconfirmed == SENDS and result.accepted == result.failed == 0
    stored = _stored(services)
    assert len(stored) == SENDS  # one record per send: none lost, none doubled
    last_lat = None
    for record, (ts_ms, soc, lat) in zip(records, stored, strict=True):
        # A GPS dropout sends no position, so the record carries the module's last one (OVMS's own state).
        last_lat = record.lat_deg if record.lat_deg is not None else last_lat
        assert ts_ms // 1000 == record.ts_ms // 1000  # the module's clock, whole seconds
        assert soc == pytest.approx(record.soc_pct, rel=5e-6)  # 6 significant digits
        assert lat == pytest.approx(last_lat, abs=5e-7)  # 6 decimals
