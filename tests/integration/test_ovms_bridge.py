"""OVMS v3 through a real Mosquitto into SQLite and PostgreSQL: a module's metric-by-metric sends over a
drive and a charge give the same records, drives and charges as the equivalent protocol-v1 feed; bad input
is quarantined (a malformed known metric, alone; a module mapped to no vehicle, once) or counted (unknown
names)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest

from microfleet.bootstrap import Services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.ingest.mqtt import MqttConnection
from microfleet.ingest.ovms_bridge import OvmsBridge
from microfleet.services.derivation import HistoryDeriver
from microfleet.store.history import HistoryStore
from tests.integration.conftest import NOW_MS
from tests.integration.mqtt_broker import Broker, started_broker, wait_for
from tests.integration.ovms_module import ticks, topic, utc_text

FOREVER = (0, 2**62, 100_000)
MODULE = "alice/TWIZY1"
MALLORY_PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture
def broker() -> Iterator[Broker]:
    with started_broker() as started:
        yield started


def _g(x: float) -> float:
    """A value OVMS can write exactly (6 significant digits), so both feeds hold the same number."""
    return float(f"{x:g}")


def v1_feed(vehicle_id: str, t0_ms: int) -> list[TelemetryRecord]:
    """Parked, a 20 min drive at 5 s ticks (OVMS's updatetime.on), parked, a 30 min 3.3 kW charge at 10 s
    ticks (updatetime.charging), unplugged and parked at 60 s ticks (updatetime.awake)."""
    out: list[TelemetryRecord] = []
    lat, lon, odo, soc = 31.2304, 121.4737, 1200.0, 70.0

    def add(t_s: int, **kw: Any) -> None:
        out.append(
            TelemetryRecord(
                vehicle_id=vehicle_id,
                ts_ms=t0_ms + t_s * 1000,
                lat_deg=round(lat, 6),
                lon_deg=round(lon, 6),
                odometer_km=_g(round(odo, 2)),
                soc_pct=_g(round(soc, 3)),
                pack_voltage_v=340.0,
                ambient_temp_c=12.0,
                **{k: _g(v) if isinstance(v, float) else v for k, v in kw.items()},
            )
        )

    parked = {"gear": "N", "ignition_on": False, "speed_kmh": 0.0, "pack_current_a": 0.5}
    unplugged = {"charger_connected": False, "charger_power_kw": 0.0, "charger_ac_voltage_v": 0.0}
    for t in range(0, 600, 60):
        add(t, **parked, **unplugged)
    for t in range(600, 1800, 5):
        lat += 50 / 111_195
        odo += 0.05
        soc -= 0.015
        add(t, gear="D", ignition_on=True, speed_kmh=36.0, pack_current_a=15_000 / 340, **unplugged)
    for t in range(1800, 2400, 60):
        add(t, **parked, **unplugged)
    for t in range(2400, 4200, 10):
        soc += 0.05
        charging = {"charger_connected": True, "charger_power_kw": 3.3, "charger_ac_voltage_v": 230.0}
        add(t, **{**parked, "pack_current_a": -0.9 * 3300 / 340}, **charging)
    for t in range(4200, 5400, 60):
        add(t, **parked, **unplugged)
    return out


def _bridge(services: Services, broker: Broker) -> tuple[OvmsBridge, MqttConnection, str]:
    """The bridge logged in as the ingest user, and a broker login for the module (ACL: its own tree)."""
    login = broker.access(services).set_ingest_login()
    module_password = secrets.token_urlsafe(16)
    broker.files.set_password("alice", module_password)
    broker.files.set_password("mallory", MALLORY_PASSWORD)  # another module's login on the same broker
    broker.restart()
    bridge = OvmsBridge(services.ingest, services.accounts, {MODULE: "car-ovms"}, services.clock)
    connection = MqttConnection(
        "127.0.0.1",
        broker.port,
        login.username,
        login.password,
        f"{broker.prefix}-ovms",
        reconnect_first_s=0.2,
        reconnect_max_s=1.0,
    )
    return bridge, connection, module_password


@contextlib.asynccontextmanager
async def running(bridge: OvmsBridge, connection: MqttConnection) -> AsyncIterator[asyncio.Event]:
    connected, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(bridge.run(connection, stop, connected=connected))
    await asyncio.wait_for(connected.wait(), 10)
    try:
        yield connected
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def _history(services: Services, vehicle_id: str) -> tuple[list[Any], list[Any]]:
    store = HistoryStore(services.engine, usable_kwh_of_model=lambda _m: 5.0)
    HistoryDeriver(store).rederive(vehicle_id)
    drives = [dataclasses.replace(d, vehicle_id="-") for d in store.drives(vehicle_id, *FOREVER)]
    charges = [dataclasses.replace(c, vehicle_id="-") for c in store.charges(vehicle_id, *FOREVER)]
    return drives, charges


def test_a_drive_and_a_charge_from_ovms_equal_the_protocol_v1_feed(
    services: Services, broker: Broker
) -> None:
    import aiomqtt

    for vehicle_id in ("car-ovms", "car-v1"):
        services.admin.add_vehicle(vehicle_id)
    t0_ms = (NOW_MS - 4 * 3_600_000) // 1000 * 1000
    feed = v1_feed("car-v1", t0_ms)
    report = services.ingest.ingest(
        msgspec.json.encode(feed),
        "application/json",
        credential_vehicle_id="car-v1",
        source="v1",
        now_ms=NOW_MS,
    )
    assert report.accepted == len(feed)
    bridge, connection, module_password = _bridge(services, broker)
    sends = ticks(feed)
    will = aiomqtt.Will(topic("alice", "TWIZY1", "s.v3.connected"), "no", qos=0, retain=True)

    async def scenario() -> None:
        async with (
            running(bridge, connection),
            aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="alice",
                password=module_password,
                identifier="ovms-1",
                will=will,
            ) as module,
        ):
            await module.subscribe("ovms/alice/TWIZY1/client/+/command/+", qos=1)  # as server-v3 does
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, username="mallory", password=MALLORY_PASSWORD, identifier="ovms-2"
            ) as mallory:  # the ACL drops both: no value into alice's car, no shell command to her module
                await mallory.publish(topic("alice", "TWIZY1", "v.b.soc"), "1", qos=1)
                await mallory.publish(
                    "ovms/alice/TWIZY1/client/x/command/1", "vfs rm /store/ovms_config", qos=1
                )
            await module.publish(topic("alice", "TWIZY1", "s.v3.connected"), "yes", qos=0, retain=True)
            for send in sends:  # as server-v3 does: QoS 0, retained
                for name, payload in send:
                    await module.publish(topic("alice", "TWIZY1", name), payload, qos=0, retain=True)
            await wait_for(lambda: services.telemetry.count("car-ovms") == len(feed), timeout_s=60)
            assert bridge.online == {"car-ovms": True}
            commands = asyncio.create_task(anext(aiter(module.messages)))
            await asyncio.sleep(0.5)
            assert not commands.done()  # mallory's command never reached the module
            commands.cancel()

    asyncio.run(scenario())
    messages = sum(len(s) for s in sends)
    values = sum(sum(v is not None for v in msgspec.structs.astuple(r)[2:]) for r in feed)  # v1 signals
    assert messages < 0.3 * values  # OVMS sent the changes only (1,389 messages for 5,980 values)
    stored = [
        msgspec.structs.replace(r, vehicle_id="car-v1")
        for r in services.telemetry.records("car-ovms", *FOREVER[:2])
    ]
    assert stored == feed
    ovms_history, v1_history = _history(services, "car-ovms"), _history(services, "car-v1")
    assert [len(h) for h in v1_history] == [1, 1]  # one drive, one charge
    assert ovms_history == v1_history
    assert bridge.counts["records accepted"] == len(feed)
    assert services.quarantine.list() == []


def test_the_bridge_survives_a_broker_restart(services: Services, broker: Broker) -> None:
    import aiomqtt

    services.admin.add_vehicle("car-ovms")
    bridge, connection, module_password = _bridge(services, broker)
    t0_ms = (NOW_MS - 3_600_000) // 1000 * 1000

    async def send(i: int) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, username="alice", password=module_password
        ) as module:
            for name, payload in (("m.time.utc", utc_text(t0_ms + i * 5000)), ("v.b.soc", f"{60 + i}")):
                await module.publish(topic("alice", "TWIZY1", name), payload, qos=0)

    async def scenario() -> None:
        async with running(bridge, connection) as connected:
            await send(0)
            await wait_for(lambda: services.telemetry.count("car-ovms") == 1)
            broker.restart()  # the bridge loses its connection and reconnects with back-off
            await wait_for(lambda: bridge.counts["reconnects"] >= 1 and connected.is_set())
            await send(1)
            await wait_for(lambda: services.telemetry.count("car-ovms") == 2)

    asyncio.run(scenario())
    soc = [r.soc_pct for r in services.telemetry.records("car-ovms", *FOREVER[:2])]
    assert soc == [60.0, 61.0]


def test_bad_input_is_quarantined_or_counted_and_loses_nothing_valid(services: Services) -> None:
    services.admin.add_vehicle("car-ovms")
    bridge = OvmsBridge(
        services.ingest, services.accounts, {MODULE: "car-ovms", "bob/GONE": "car-gone"}, services.clock
    )
    at = NOW_MS - 60_000
    sends = [
        ("ovms/alice/TWIZY1/metric/m/time/utc", "2025-11-24 15:59:00 UTC"),
        ("ovms/alice/TWIZY1/metric/v/b/soc", "81.5"),
        ("ovms/alice/TWIZY1/metric/v/p/speed", "fast"),  # malformed: quarantined alone
        ("ovms/alice/TWIZY1/metric/xrt/cfg/type", "Twizy80"),  # no v1 field: counted
        ("ovms/alice/TWIZY1/metric/xrt/cfg/type", "Twizy80"),
        ("ovms/alice/TWIZY1/event", "vehicle.charge.start"),
        ("ovms/alice/TWIZY1/client/app1/command/7", "vfs rm /store/ovms_config"),  # never read
        ("ovms/bob/UNMAPPED/metric/v/b/soc", "50"),  # no mapping: quarantined once
        ("ovms/bob/UNMAPPED/metric/v/b/soc", "51"),
        ("ovms/bob/GONE/metric/v/b/soc", "49"),  # mapped to no registered vehicle
    ]
    for i, (name, payload) in enumerate(sends):
        bridge.handle(name, payload.encode(), arrival_ms=at + i)
    bridge.handle("ovms/alice/TWIZY1/metric/v/b/soc", b"80", retained=True, arrival_ms=at + 20)
    bridge.flush_due(at + 10_000)
    bridge.handle("ovms/alice/TWIZY1/metric/s/v3/connected", b"yes", arrival_ms=at + 30)
    assert bridge.online == {"car-ovms": True}
    bridge.handle("ovms/alice/TWIZY1/metric/s/v3/connected", b"no", arrival_ms=at + 31)  # its last will
    assert bridge.online == {"car-ovms": False}
    (record,) = services.telemetry.records("car-ovms", *FOREVER[:2])
    assert (record.ts_ms, record.soc_pct, record.speed_kmh) == (1_763_999_940_000, 81.5, None)
    rows = sorted(services.quarantine.list(), key=lambda q: q.source)
    assert [(q.reason, q.source, q.credential_vehicle_id) for q in rows] == [
        ("wrong_type", "ovms alice/TWIZY1", "car-ovms"),
        ("unknown_vehicle", "ovms bob/GONE", None),
        ("unknown_vehicle", "ovms bob/UNMAPPED", None),
    ]
    assert "v.p.speed" in rows[0].detail and "fast" in rows[0].raw_text
    assert bridge.counts["unknown metric"] == 2
    assert bridge.counts["unmapped module"] == 3
    assert bridge.counts["event vehicle.charge.start"] == 1
    assert bridge.counts["ignored topic"] == 1 and bridge.counts["retained ignored"] == 1


class _StalledBridge(OvmsBridge):
    """A bridge that stalls 0.6 s (more than the 500 ms quiet interval) before handling each message, as a
    slow store or a busy CPU does under a backlog."""

    def handle(
        self, topic: str, payload: bytes, *, retained: bool = False, arrival_ms: int | None = None
    ) -> None:
        time.sleep(0.6)
        super().handle(topic, payload, retained=retained, arrival_ms=arrival_ms)


def test_a_backlog_never_splits_a_send(services: Services, broker: Broker) -> None:
    """Sends published back to back wait in the bridge's queue; each is still one record (timed on arrival,
    not when handled 0.6 s apart)."""
    import aiomqtt

    services.admin.add_vehicle("car-ovms")
    _, connection, module_password = _bridge(services, broker)
    bridge = _StalledBridge(services.ingest, services.accounts, {MODULE: "car-ovms"}, services.clock)
    t0_ms = (NOW_MS - 3_600_000) // 1000 * 1000
    sends = [
        [("m.time.utc", utc_text(t0_ms + i * 5000)), ("v.b.soc", f"{60 + i}"), ("v.p.speed", f"{30 + i}")]
        for i in range(2)
    ]

    async def scenario() -> None:
        async with (
            running(bridge, connection),
            aiomqtt.Client("127.0.0.1", broker.port, username="alice", password=module_password) as module,
        ):
            for send in sends:
                for name, payload in send:
                    await module.publish(topic("alice", "TWIZY1", name), payload, qos=0)
            await wait_for(lambda: bridge.counts["messages"] == 6, timeout_s=30)
            await asyncio.sleep(1.2)  # more than the quiet interval: the last send closes

    asyncio.run(scenario())
    stored = [(r.ts_ms, r.soc_pct, r.speed_kmh) for r in services.telemetry.records("car-ovms", *FOREVER[:2])]
    assert stored == [(t0_ms, 60.0, 30.0), (t0_ms + 5000, 61.0, 31.0)]


def test_a_backlog_handled_at_once_stores_each_vehicle_s_sends(services: Services) -> None:
    """Two modules' sends interleaved in one handle_many call (one commit per vehicle) are the same records
    as handled one message at a time."""
    for vehicle_id in ("car-a", "car-b"):
        services.admin.add_vehicle(vehicle_id)
    modules = {"alice/A": "car-a", "bob/B": "car-b"}
    at = NOW_MS - 60_000
    messages = []
    for i in range(3):
        for user, module, soc in (("alice", "A", 60 + i), ("bob", "B", 40 - i)):
            for name, payload in (("m.time.utc", utc_text(at + i * 5000)), ("v.b.soc", str(soc))):
                messages.append((topic(user, module, name), payload.encode(), False, at + i * 5000))
    bridge = OvmsBridge(services.ingest, services.accounts, modules, services.clock)
    bridge.handle_many(messages)
    bridge.flush_all()
    t0 = at // 1000 * 1000
    for vehicle_id, socs in (("car-a", [60.0, 61.0, 62.0]), ("car-b", [40.0, 39.0, 38.0])):
        stored = [(r.ts_ms, r.soc_pct) for r in services.telemetry.records(vehicle_id, *FOREVER[:2])]
        assert stored == [(t0 + i * 5000, soc) for i, soc in enumerate(socs)]
    assert bridge.counts["records accepted"] == 6
