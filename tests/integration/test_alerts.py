"""Alerts through the real store (SQLite and PostgreSQL): each rule raises and resolves on crafted telemetry,
one open alert per condition, quiet hours, visibility, and deliveries through Apprise to a real HTTP receiver.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.alert_delivery import MAX_ATTEMPTS, Channel, DeliveryStatus, QuietHours
from microfleet.domain.alerts import AlertKind, AlertStatus, Severity
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.telemetry import TelemetryRecord
from tests.integration.conftest import FrozenClock
from tests.integration.mqtt_broker import free_port
from tests.integration.world import World, bearer, build_world

MIN_MS = 60_000
HOME = (31.2304, 121.4737)
AWAY = (31.2504, 121.4737)  # 2.2 km north


@pytest.fixture
def world(services: Services) -> World:
    return build_world(services)


def send(services: Services, vehicle_id: str, ts_ms: int, **signals: Any) -> None:
    record = TelemetryRecord(vehicle_id=vehicle_id, ts_ms=ts_ms, **signals)
    report = services.ingest.ingest(
        msgspec.json.encode([record]),
        "application/json",
        credential_vehicle_id=vehicle_id,
        source="test",
        now_ms=ts_ms,
    )
    assert report.accepted == 1, report


def evaluate(services: Services) -> None:
    services.alert_worker.evaluator.run_pass()


def open_alerts(services: Services, vehicle_id: str = "car-a") -> list[tuple[str, str]]:
    found = services.alerts.all_alerts(
        statuses=[AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED], vehicle_id=vehicle_id
    )
    return sorted((a.kind.value, a.condition) for a in found)


def resolved(services: Services, vehicle_id: str = "car-a") -> list[tuple[str, str]]:
    found = services.alerts.all_alerts(statuses=[AlertStatus.RESOLVED], vehicle_id=vehicle_id)
    return sorted((a.kind.value, a.condition) for a in found)


# --- each rule raises on crafted telemetry and resolves when its condition clears


def test_left_unlocked_raises_after_its_minutes_without_a_new_record(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.add_rule(AlertKind.LEFT_UNLOCKED, Severity.WARNING, {"minutes": 10}, vehicle_id="car-a")
    t0 = clock.now_ms
    send(services, "car-a", t0, locked=True, speed_kmh=0.0, ignition_on=False)
    send(services, "car-a", t0 + MIN_MS, locked=False, speed_kmh=0.0, ignition_on=False)
    clock.now_ms = t0 + 6 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == []
    clock.now_ms = t0 + 11 * MIN_MS + 1  # no new record: the timer brings the car back
    evaluate(services)
    assert open_alerts(services) == [("left_unlocked", "unlocked")]
    send(services, "car-a", t0 + 12 * MIN_MS, locked=True, speed_kmh=0.0, ignition_on=False)
    evaluate(services)
    assert (open_alerts(services), resolved(services)) == ([], [("left_unlocked", "unlocked")])


def test_an_unlocked_car_being_driven_is_not_left_unlocked(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.add_rule(AlertKind.LEFT_UNLOCKED, Severity.WARNING, {"minutes": 1}, vehicle_id="car-a")
    t0 = clock.now_ms
    for i in range(5):
        send(services, "car-a", t0 + i * MIN_MS, locked=False, speed_kmh=40.0, ignition_on=True, gear="D")
    clock.now_ms = t0 + 5 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == []


def test_charging_stopped_before_the_limit_and_a_timer_wait_is_not_a_stop(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.add_rule(AlertKind.CHARGING_STOPPED, Severity.WARNING, {}, vehicle_id="car-a")
    t0 = clock.now_ms
    # Plugged in, waiting for an off-peak timer: never charged, so nothing stopped.
    for i in range(3):
        send(services, "car-a", t0 + i * MIN_MS, charger_connected=True, charger_power_kw=0.0, soc_pct=40.0)
    clock.now_ms = t0 + 20 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == []
    t1 = clock.now_ms
    send(services, "car-a", t1, charger_connected=True, charger_power_kw=3.3, soc_pct=41.0)
    send(services, "car-a", t1 + MIN_MS, charger_connected=True, charger_power_kw=0.0, soc_pct=42.0)
    clock.now_ms = t1 + 4 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == []  # a pause shorter than 5 min
    clock.now_ms = t1 + 7 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == [("charging_stopped", "stopped")]
    (alert,) = services.alerts.all_alerts(vehicle_id="car-a")
    assert "42 %" in alert.detail and "100 %" in alert.detail  # no limit set: the default, 100 %
    send(services, "car-a", clock.now_ms, charger_connected=False, charger_power_kw=0.0, soc_pct=42.0)
    evaluate(services)
    assert resolved(services) == [("charging_stopped", "stopped")]


def test_charging_stopped_compares_with_the_limit_the_car_acknowledged(
    services: Services, world: World, clock: FrozenClock
) -> None:
    from sqlalchemy import insert

    from microfleet.store.commands_store import commands

    # What the commands store holds once car-a acknowledged 'set_charge_limit 80' (and one it refused).
    with services.engine.begin() as conn:
        for n, (status, limit) in enumerate((("acknowledged", 80), ("refused", 50))):
            conn.execute(
                insert(commands),
                {
                    "command_id": f"00000000-0000-0000-0000-00000000000{n}", "vehicle_id": "car-a",
                    "action": "set_charge_limit", "params_json": json.dumps({"limit_pct": limit}),
                    "status": status, "issued_at_ms": clock.now_ms - 10_000 + n,
                    "expires_at_ms": clock.now_ms, "issued_by": "ann", "client": "test", "payload": "{}",
                    "result_at_ms": clock.now_ms - 9_000 + n,
                },
            )  # fmt: skip
    services.alerts.add_rule(AlertKind.CHARGING_STOPPED, Severity.WARNING, {}, vehicle_id="car-a")
    t0 = clock.now_ms
    send(services, "car-a", t0, charger_connected=True, charger_power_kw=3.3, soc_pct=77.0)
    send(services, "car-a", t0 + MIN_MS, charger_connected=True, charger_power_kw=0.0, soc_pct=79.0)
    clock.now_ms = t0 + 10 * MIN_MS
    evaluate(services)
    assert open_alerts(services) == []  # 79 % is within 2 % of the car's 80 %: the charge finished
    send(services, "car-a", clock.now_ms, charger_connected=True, charger_power_kw=3.3, soc_pct=60.0)
    send(services, "car-a", clock.now_ms + MIN_MS, charger_connected=True, charger_power_kw=0.0, soc_pct=61.0)
    clock.now_ms += 10 * MIN_MS
    evaluate(services)
    (alert,) = services.alerts.all_alerts(vehicle_id="car-a")
    assert "limit at 80 %" in alert.detail


def test_soc_low_has_hysteresis(services: Services, world: World, clock: FrozenClock) -> None:
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {"below_pct": 20}, vehicle_id="car-a")
    t0 = clock.now_ms
    send(services, "car-a", t0, soc_pct=15.0)
    evaluate(services)
    assert open_alerts(services) == [("soc_low", "low")]
    send(services, "car-a", t0 + MIN_MS, soc_pct=21.0)  # above 20 but within the 2 % margin
    evaluate(services)
    assert open_alerts(services) == [("soc_low", "low")]
    send(services, "car-a", t0 + 2 * MIN_MS, soc_pct=25.0)
    evaluate(services)
    assert (open_alerts(services), resolved(services)) == ([], [("soc_low", "low")])


def test_offline_tells_a_car_gone_silent_while_driving_from_a_sleeping_parked_one(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.add_rule(AlertKind.OFFLINE, Severity.WARNING, {}, fleet_id="city-share")
    services.alerts.add_rule(AlertKind.OFFLINE, Severity.WARNING, {}, vehicle_id="car-b")
    t0 = clock.now_ms
    send(services, "car-a", t0, speed_kmh=40.0, ignition_on=True, gear="D")  # silent mid-drive
    send(services, "car-b", t0, speed_kmh=0.0, ignition_on=False, gear="P")  # parked, asleep
    clock.now_ms = t0 + 16 * MIN_MS
    evaluate(services)
    assert (open_alerts(services, "car-a"), open_alerts(services, "car-b")) == ([("offline", "silent")], [])
    clock.now_ms = t0 + 24 * 60 * MIN_MS + 1
    evaluate(services)
    assert open_alerts(services, "car-b") == [("offline", "silent")]
    send(services, "car-a", clock.now_ms, speed_kmh=0.0)
    evaluate(services)
    assert resolved(services, "car-a") == [("offline", "silent")]


def test_geofence_enter_and_exit(services: Services, world: World, clock: FrozenClock) -> None:
    services.places.add(Place("p-home", "Home", PlaceKind.HOME, Circle(*HOME, 200.0)), vehicle_id="car-a")
    services.alerts.add_rule(
        AlertKind.GEOFENCE_EXIT, Severity.INFO, {"place_id": "p-home"}, vehicle_id="car-a"
    )
    services.alerts.add_rule(
        AlertKind.GEOFENCE_ENTER, Severity.INFO, {"place_id": "p-home"}, fleet_id="city-share"
    )
    t0 = clock.now_ms
    send(services, "car-a", t0, lat_deg=HOME[0], lon_deg=HOME[1])
    evaluate(services)
    assert open_alerts(services) == []
    send(services, "car-a", t0 + MIN_MS, lat_deg=AWAY[0], lon_deg=AWAY[1])
    evaluate(services)
    assert open_alerts(services) == [("geofence_exit", "place:p-home")]
    send(services, "car-a", t0 + 2 * MIN_MS, lat_deg=HOME[0], lon_deg=HOME[1])
    evaluate(services)
    assert open_alerts(services) == [("geofence_enter", "place:p-home")]
    assert resolved(services) == [("geofence_exit", "place:p-home")]


def test_aux_battery_low_and_dtc_codes(services: Services, world: World, clock: FrozenClock) -> None:
    services.alerts.add_rule(AlertKind.AUX_BATTERY_LOW, Severity.CRITICAL, {}, vehicle_id="car-a")
    services.alerts.add_rule(AlertKind.DTC, Severity.WARNING, {}, vehicle_id="car-a")
    t0 = clock.now_ms
    send(services, "car-a", t0, aux_battery_v=11.5, dtc_codes=["P0A80"])
    evaluate(services)
    assert open_alerts(services) == [("aux_battery_low", "low"), ("dtc", "code:P0A80")]
    send(services, "car-a", t0 + MIN_MS, aux_battery_v=12.4, dtc_codes=["P0A80", "U0100"])
    evaluate(services)
    assert open_alerts(services) == [("dtc", "code:P0A80"), ("dtc", "code:U0100")]
    send(services, "car-a", t0 + 2 * MIN_MS, dtc_codes=[])
    evaluate(services)
    assert open_alerts(services) == []
    assert resolved(services) == [("aux_battery_low", "low"), ("dtc", "code:P0A80"), ("dtc", "code:U0100")]


def test_external_alerts_from_a_later_model(services: Services, world: World) -> None:
    alert = services.alerts.raise_external("car-a", "battery", "soh_drop", Severity.WARNING, "Battery ageing")
    again = services.alerts.raise_external("car-a", "battery", "soh_drop", Severity.WARNING, "Battery ageing")
    assert (again.alert_id, again.occurrences, again.kind) == (alert.alert_id, 2, AlertKind.EXTERNAL)
    done = services.alerts.resolve_external("car-a", "battery", "soh_drop")
    assert done is not None and done.status is AlertStatus.RESOLVED
    assert services.alerts.resolve_external("car-a", "battery", "soh_drop") is None


# --- one open alert per rule, vehicle and condition


def test_a_condition_that_holds_on_refreshes_its_one_alert(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.subscribe(services.alerts.user_id_of("ann"), "json://127.0.0.1:9/never")
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
    t0 = clock.now_ms
    for i in range(3):
        send(services, "car-a", t0 + i * MIN_MS, soc_pct=10.0 - i)
        clock.now_ms = t0 + i * MIN_MS
        evaluate(services)
    (alert,) = services.alerts.all_alerts(vehicle_id="car-a")
    assert (alert.occurrences, alert.raised_at_ms, alert.last_seen_ms) == (3, t0, t0 + 2 * MIN_MS)
    apprise = [d for d in services.alerts.all_deliveries() if d.channel is Channel.APPRISE]
    assert len(apprise) == 1  # told once, not at every evaluation
    services.alerts.acknowledge(alert.alert_id)
    send(services, "car-a", t0 + 3 * MIN_MS, soc_pct=6.0)
    evaluate(services)
    (alert,) = services.alerts.all_alerts(vehicle_id="car-a")
    assert (alert.status, alert.occurrences) == (AlertStatus.ACKNOWLEDGED, 4)
    send(services, "car-a", t0 + 4 * MIN_MS, soc_pct=50.0)
    evaluate(services)
    send(services, "car-a", t0 + 5 * MIN_MS, soc_pct=5.0)  # a new episode: a new alert
    evaluate(services)
    assert [a.status for a in services.alerts.all_alerts(vehicle_id="car-a")] == [
        AlertStatus.RAISED,
        AlertStatus.RESOLVED,
    ]


# --- quiet hours and visibility


def test_quiet_hours_hold_a_warning_and_skip_it_if_resolved_meanwhile(
    services: Services, world: World, clock: FrozenClock
) -> None:
    # NOW_MS is 16:00 UTC = 17:00 in Paris: quiet 16:30-18:00 Paris time holds it until 17:00 UTC.
    ann = services.alerts.user_id_of("ann")
    quiet = QuietHours("16:30", "18:00", "Europe/Paris")
    services.alerts.subscribe(ann, "json://127.0.0.1:9/quiet", quiet=quiet)
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
    services.alerts.add_rule(AlertKind.AUX_BATTERY_LOW, Severity.CRITICAL, {}, vehicle_id="car-a")
    t0 = clock.now_ms
    send(services, "car-a", t0, soc_pct=10.0, aux_battery_v=11.0)
    evaluate(services)
    due = {
        d.alert_id: d.next_attempt_ms
        for d in services.alerts.all_deliveries()
        if d.channel is Channel.APPRISE
    }
    by_kind = {a.kind: a.alert_id for a in services.alerts.all_alerts()}
    assert due[by_kind[AlertKind.SOC_LOW]] == t0 + 60 * MIN_MS
    assert due[by_kind[AlertKind.AUX_BATTERY_LOW]] == t0  # critical goes through
    send(services, "car-a", t0 + MIN_MS, soc_pct=60.0, aux_battery_v=11.0)
    evaluate(services)
    clock.now_ms = t0 + 61 * MIN_MS
    services.alert_worker.dispatcher.deliver_due()
    (held,) = [
        d
        for d in services.alerts.all_deliveries()
        if d.alert_id == by_kind[AlertKind.SOC_LOW] and d.channel is Channel.APPRISE
    ]
    assert (held.status, held.last_error) == (
        DeliveryStatus.SKIPPED,
        "resolved during the subscriber's quiet hours",
    )


def test_nobody_is_told_about_a_car_they_cannot_see(
    services: Services, world: World, clock: FrozenClock
) -> None:
    bob, ann = services.alerts.user_id_of("bob"), services.alerts.user_id_of("ann")
    services.alerts.subscribe(bob, "json://127.0.0.1:9/bob")
    services.alerts.subscribe(ann, "json://127.0.0.1:9/ann")
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
    send(services, "car-a", clock.now_ms, soc_pct=10.0)
    evaluate(services)
    to = {d.subscription_id for d in services.alerts.all_deliveries() if d.channel is Channel.APPRISE}
    subs = {s.subscription_id: s.user_id for s in services.alerts.all_subscriptions()}
    assert {subs[s] for s in to} == {ann}
    (alert,) = services.alerts.all_alerts()
    with TestClient(create_app(services.settings, services)) as client:
        as_bob = bearer(world.tokens["bob"])
        assert client.get("/api/v1/alerts", headers=as_bob).json() == []
        assert client.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge", headers=as_bob).status_code == 404
        assert client.get("/api/v1/alert-deliveries", headers=as_bob).json() == []
        as_dan = bearer(world.tokens["dan"])  # a driver of car-a: sees and acknowledges, cannot resolve
        assert [a["alert_id"] for a in client.get("/api/v1/alerts", headers=as_dan).json()] == [
            alert.alert_id
        ]
        assert client.post(f"/api/v1/alerts/{alert.alert_id}/resolve", headers=as_dan).status_code == 403
        ack = client.post(f"/api/v1/alerts/{alert.alert_id}/acknowledge", headers=as_dan).json()
        assert ack["status"] == "acknowledged"


# --- delivery through Apprise to a real HTTP receiver, and a failing channel


class Receiver(http.server.BaseHTTPRequestHandler):
    got: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.got.append((self.path, json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[str, dict[str, Any]]]]]:
    got: list[tuple[str, dict[str, Any]]] = []
    handler = type("Handler", (Receiver,), {"got": got})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], got
    server.shutdown()
    server.server_close()


def test_apprise_delivers_to_a_webhook_while_a_refused_channel_is_retried_and_recorded(
    services: Services, world: World, clock: FrozenClock, receiver: tuple[int, list[Any]]
) -> None:
    port, got = receiver
    refused = free_port()  # nothing listens there: connection refused
    ann = services.alerts.user_id_of("ann")
    services.alerts.subscribe(ann, f"json://127.0.0.1:{port}/hook")
    services.alerts.subscribe(ann, f"json://127.0.0.1:{refused}/down")
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
    send(services, "car-a", clock.now_ms, soc_pct=12.0)
    evaluate(services)
    report = services.alert_worker.dispatcher.deliver_due()
    assert (report.sent, report.retrying) == (2, 1)  # the webhook and the live feed; the refused one waits
    ((path, message),) = got
    assert path == "/hook" and "Battery low: car-a" in message["title"] and "12 %" in message["message"]
    (down,) = [d for d in services.alerts.all_deliveries() if d.status is DeliveryStatus.PENDING]
    assert down.attempts == 1 and "Connection" in (down.last_error or "")
    assert down.next_attempt_ms == clock.now_ms + 30_000
    with TestClient(create_app(services.settings, services)) as client:
        mine = client.get("/api/v1/alert-deliveries", headers=bearer(world.tokens["ann"])).json()
        assert sorted(d["status"] for d in mine) == ["pending", "sent"]
        assert [d["last_error"] for d in mine if d["status"] == "pending"] == [down.last_error]
    for _ in range(MAX_ATTEMPTS - 1):  # each retry when due, until it is given up
        clock.now_ms += 3_600_000
        services.alert_worker.dispatcher.deliver_due()
    (gone,) = [d for d in services.alerts.all_deliveries() if d.subscription_id == down.subscription_id]
    assert (gone.status, gone.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)
    assert len(got) == 1  # the webhook was told once


# --- the MQTT topic, on a real Mosquitto with Microfleet's ACL


def test_every_new_alert_is_published_to_the_vehicles_mqtt_topic(
    services: Services, world: World, clock: FrozenClock
) -> None:
    import asyncio

    import aiomqtt

    from microfleet.bootstrap import build_services
    from tests.integration.mqtt_broker import started_broker

    with started_broker() as broker:
        login = broker.access(services).set_ingest_login()
        car_b = broker.access(services).issue("car-b")
        settings = services.settings.model_copy(
            update={
                "mqtt_host": "127.0.0.1",
                "mqtt_port": broker.port,
                "mqtt_topic_prefix": broker.prefix,
                "mqtt_username": login.username,
                "mqtt_password": login.password,
            }
        )
        with_broker = build_services(settings, migrate=False, clock=clock)
        try:
            with_broker.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
            send(with_broker, "car-a", clock.now_ms, soc_pct=9.0)
            topic = f"{broker.prefix}/v1/car-a/alerts"

            async def scenario() -> tuple[list[dict[str, Any]], list[str]]:
                got: list[dict[str, Any]] = []
                foreign: list[str] = []
                integration = aiomqtt.Client(
                    "127.0.0.1", broker.port, username=login.username, password=login.password,
                    identifier=f"{broker.prefix}-integration",
                )  # fmt: skip
                car = aiomqtt.Client(
                    "127.0.0.1", broker.port, username="car-b", password=car_b.password,
                    identifier=f"{broker.prefix}-car-b",
                )  # fmt: skip
                async with integration, car:
                    await integration.subscribe(topic, qos=1)
                    await car.subscribe(f"{broker.prefix}/v1/+/alerts", qos=1)  # a car is not let in

                    async def collect(client: aiomqtt.Client, into: list[Any], decode: bool) -> None:
                        async for message in client.messages:
                            payload = bytes(message.payload)  # type: ignore[arg-type]
                            into.append(json.loads(payload) if decode else str(message.topic))

                    tasks = [
                        asyncio.create_task(collect(integration, got, True)),
                        asyncio.create_task(collect(car, foreign, False)),
                    ]
                    await asyncio.to_thread(with_broker.alert_worker.run_once)
                    for _ in range(100):
                        if got:
                            break
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.3)  # time for anything the broker would wrongly deliver
                    for task in tasks:
                        task.cancel()
                return got, foreign

            got, foreign = asyncio.run(scenario())
            ((message,),) = [got]
            assert (message["vehicle_id"], message["kind"], message["severity"]) == (
                "car-a",
                "soc_low",
                "warning",
            )
            assert foreign == []
            channels = {d.channel: d.status for d in with_broker.alerts.all_deliveries()}
            assert channels == {Channel.MQTT: DeliveryStatus.SENT, Channel.LIVE: DeliveryStatus.SENT}
        finally:
            with_broker.close()


def test_the_live_feed_hears_of_each_alert_raised_acknowledged_and_resolved(
    services: Services, world: World, clock: FrozenClock
) -> None:
    services.alerts.add_rule(AlertKind.SOC_LOW, Severity.WARNING, {}, vehicle_id="car-a")
    send(services, "car-a", clock.now_ms, soc_pct=10.0)
    services.alert_worker.run_once()  # raised: through the outbox
    (alert,) = services.alerts.all_alerts()
    services.alerts.acknowledge(alert.alert_id)
    send(services, "car-a", clock.now_ms + MIN_MS, soc_pct=40.0)
    evaluate(services)  # resolved by the evaluator: announced at once
    events = [
        (e.vehicle_id, json.loads(e.payload_json))
        for e in services.live_log.after(0, 1000)
        if e.kind == "alert"
    ]
    assert [(v, p["alert_id"], p["status"]) for v, p in events] == [
        ("car-a", alert.alert_id, "raised"),
        ("car-a", alert.alert_id, "acknowledged"),
        ("car-a", alert.alert_id, "resolved"),
    ]
