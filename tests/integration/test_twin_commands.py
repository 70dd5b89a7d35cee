"""The live twin over MQTT takes remote commands, as ``microfleet demo`` runs it: each car fetched its keys,
the demo's bridge thread relays a command issued through the service, and the driving car does it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from microfleet.bootstrap import Services
from microfleet.cli.demo import BridgeThread
from microfleet.domain.access import Role
from microfleet.domain.command_wire import Action
from microfleet.domain.commands import CommandStatus
from microfleet.ingest.mqtt_commands import MqttCommandDispatcher
from microfleet.sim.launch import MqttBroker, run_live_twin
from microfleet.sim.scenario import Scenario, registrations
from tests.integration.mqtt_broker import Broker, started_broker

SCENARIO = Scenario(vehicles=2, days=1, seed=5, sharing_share=0.0, vehicle_id_prefix="ctwin", protocol="mqtt")


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


def test_a_live_twin_car_does_a_command_sent_while_it_drives(services: Services, broker: Broker) -> None:
    services.admin.add_user("owner", Role.OWNER)
    owner = next(u for u in services.admin.list_users() if u.name == "owner")
    access = broker.access(services)
    passwords = {}
    for r in registrations(SCENARIO):
        services.admin.add_vehicle(r.vehicle_id, model_id=r.model_id)
        services.admin.grant(r.vehicle_id, user_name="owner")
        passwords[r.vehicle_id] = access.issue(r.vehicle_id).password
    target = sorted(passwords)[0]
    adapter, connection = broker.adapter(services)
    dispatcher = MqttCommandDispatcher(services.commands, adapter.topics, services.clock)
    bridge = BridgeThread(adapter, connection, dispatcher)
    assert bridge.start()
    stop = threading.Event()
    outcome: dict[str, object] = {}

    def drive() -> None:
        outcome["result"] = run_live_twin(
            "http://unused",
            passwords,
            SCENARIO,
            speedup=20_000,
            should_stop=stop.is_set,
            keep_up=True,
            mqtt=MqttBroker("127.0.0.1", broker.port, broker.prefix),
            command_keys={v: services.commands.public_keys(v) for v in passwords},
        )

    twin = threading.Thread(target=drive, daemon=True)
    twin.start()
    try:
        deadline = time.monotonic() + 60
        while not dispatcher.online.get(target) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert dispatcher.online.get(target), "the twin car never came online"
        command, _ = services.commands.issue(owner, target, Action.WAKE, {}, client="test")
        while time.monotonic() < deadline:
            status = services.commands.get(owner, target, command.command_id)[0].status
            if status not in (CommandStatus.QUEUED, CommandStatus.SENT):
                break
            time.sleep(0.1)
        assert status is CommandStatus.ACKNOWLEDGED
    finally:
        stop.set()
        twin.join(60)
        bridge.stop()
    assert adapter.counters.records_accepted > 0  # the same cars kept sending their telemetry
    assert dispatcher.counts["result applied"] == 1
