"""Twin cars on MQTT (issue 12 item 5): each car with its own broker login publishes its day to a real
Mosquitto configured by Microfleet; the bridge stores it in SQLite and PostgreSQL, every record accounted
for by the answers the cars read, and stored once (the link's duplicates are answered as duplicates)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select

from microfleet.bootstrap import Services
from microfleet.ingest.mqtt import MqttConnection, MqttTelemetryAdapter, MqttTopics
from microfleet.sim.engine import Twin
from microfleet.sim.launch import MqttBroker, run_live_twin
from microfleet.sim.mqtt_sender import MqttSender, car_topic
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario, registrations
from microfleet.sim.senders import records_from_rows
from microfleet.store.schema import telemetry
from tests.integration.conftest import FrozenClock
from tests.integration.mqtt_broker import Broker, started_broker

SCENARIO = Scenario(
    vehicles=4,
    days=1,
    seed=12,
    sharing_share=0.25,
    link=LinkFaults(duplicate_p=0.05),
    vehicle_id_prefix="mtwin",
    protocol="mqtt",
)


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


@pytest.fixture
def live_clock(clock: FrozenClock) -> FrozenClock:
    """The store's clock at the wall clock: a live twin's records end now, and the future is refused."""
    clock.now_ms = time.time_ns() // 1_000_000 + 60_000
    return clock


class Bridge:
    """The MQTT adapter's run loop in a thread of its own, as ``microfleet demo`` runs it."""

    def __init__(self, adapter: MqttTelemetryAdapter, connection: MqttConnection) -> None:
        self.adapter = adapter
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._connected = threading.Event()

        async def main() -> None:
            connected = asyncio.Event()
            task = asyncio.create_task(self.adapter.run(connection, self._stop, connected=connected))
            await connected.wait()
            self._connected.set()
            await task

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),), daemon=True)

    def __enter__(self) -> Bridge:
        self._thread.start()
        assert self._connected.wait(10), "the bridge did not subscribe"
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


def _logins(services: Services, broker: Broker, scenario: Scenario) -> dict[str, str]:
    access = broker.access(services)
    passwords = {}
    for car in registrations(scenario):
        services.admin.add_vehicle(car.vehicle_id, name=car.name, model_id=car.model_id)
        passwords[car.vehicle_id] = access.issue(car.vehicle_id).password
    return passwords


def test_the_twin_s_topics_are_the_bridge_s() -> None:
    topics = MqttTopics("mf-x")
    assert car_topic("mf-x", "car-1", "telemetry") == topics.telemetry("car-1")
    assert car_topic("mf-x", "car-1", "status") == topics.status("car-1")
    assert car_topic("mf-x", "car-1", "ingest_results") == topics.ingest_results("car-1")


def test_a_twin_day_over_mqtt_is_stored_once_and_every_record_answered(
    services: Services, broker: Broker, live_clock: FrozenClock
) -> None:
    passwords = _logins(services, broker, SCENARIO)
    adapter, connection = broker.adapter(services)
    sent_rows = [row for day in run_days(Twin(SCENARIO)) for row in day.telemetry.to_pylist()]
    distinct = {(row["vehicle_id"], row["ts_ms"]) for row in sent_rows}
    with Bridge(adapter, connection):
        result = run_live_twin(
            "",
            passwords,
            SCENARIO,
            speedup=86_400 * 50,
            mqtt=MqttBroker("127.0.0.1", broker.port, broker.prefix),
        )
        # The cars said goodbye: their retained status is offline.
        _until(lambda: all(adapter.online.get(v) is False for v in passwords))
    assert result.sent == len(sent_rows) and result.failed == 0, result.reasons
    assert result.accepted + result.duplicate + result.rejected == len(sent_rows)
    assert result.duplicate > 0  # the link duplicated messages; the store answered them as duplicates
    with services.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(telemetry)).scalar_one()
    assert stored == result.accepted  # what the cars were told is what the store holds
    assert stored == len(distinct) - result.rejected  # each record the twin made, once, less the refused
    counters = adapter.counters
    assert (counters.records_accepted, counters.records_duplicate) == (result.accepted, result.duplicate)


def test_a_refused_login_is_reported_not_retried(
    services: Services, broker: Broker, live_clock: FrozenClock
) -> None:
    passwords = _logins(services, broker, SCENARIO)
    victim, other = sorted(passwords)[:2]
    passwords[victim] = "mfm_not-the-password"
    day = next(run_days(Twin(SCENARIO)))
    rows = day.telemetry.to_pylist()
    adapter, connection = broker.adapter(services)
    sender = MqttSender("127.0.0.1", broker.port, passwords, topic_prefix=broker.prefix, answer_timeout_s=10)
    with Bridge(adapter, connection):
        try:
            refused = sender.send(
                victim, records_from_rows([r for r in rows if r["vehicle_id"] == victim][:50])
            )
            again = sender.send(
                victim, records_from_rows([r for r in rows if r["vehicle_id"] == victim][:50])
            )
            fine = sender.send(other, records_from_rows([r for r in rows if r["vehicle_id"] == other][:50]))
        finally:
            sender.close()
    assert refused.failed == 50 and refused.accepted == 0
    assert any("broker refused the login" in reason for reason in refused.reasons), refused.reasons
    assert again.failed == 50 and victim in sender.refused_credentials
    assert fine.accepted == 50 and fine.failed == 0
    assert services.telemetry.count(victim) == 0 and services.telemetry.count(other) == 50


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
