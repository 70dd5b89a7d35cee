"""The twin's OCPP 1.6J charge points and Microfleet's central system over a real WebSocket (uvicorn).

A fleet of two cars at a depot whose grid limit is below what both could draw: the chargers connect with
their own Basic-auth passwords, cars plug in, Microfleet plans (HiGHS) and sends each car's TxProfile, and
the twin's charger delivers what the profile allows. Then the deviations: a car unplugged before the plan
gave it its energy, a charger that faults and one that rejects profiles each re-plan the fleet.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.charge_points import StoredPlan, ocpp_limit
from microfleet.domain.command_wire import Action
from microfleet.domain.tariffs import parse_tariff
from microfleet.services.charge_points import Deviation
from microfleet.services.charging_worker import ChargingWorker
from microfleet.sim.charge_points import TwinChargePoint, open_link
from microfleet.store.charging_store import ChargingStore
from tests.integration.world import bearer

MODEL = "wuling-hongguang-mini-ev-gen1-14kwh"
COMMANDABLE_MODEL = "dacia-spring-45-2021"  # takes charge_start / charge_stop (domain/capabilities.py)
ADMIN = UserPrincipal(0, "admin", Role.ADMIN, None)
SITE_LIMIT_KW = 5.0


@dataclass
class Depot:
    url: str
    services: Services
    passwords: dict[str, str]
    operator_token: str
    deviations: list[Deviation] = field(default_factory=list)
    links: list[tuple[ClientConnection, asyncio.Task[None]]] = field(default_factory=list)

    def run(self, scenario: Callable[[], Awaitable[None]]) -> None:
        """Run a scenario of the twin's chargers, closing their connections after it."""

        async def closing() -> None:
            try:
                await scenario()
            finally:
                for link, task in self.links:
                    await link.close()
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await task
                self.links.clear()

        asyncio.run(closing())


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def depot(services: Services, clock: object) -> Iterator[Depot]:
    """A fleet ``f1`` with two cars at 10 % SoC, a booking soon for each, and a depot served by uvicorn."""
    clock.now_ms = _now_ms()  # type: ignore[attr-defined]  # the twin's chargers keep wall time
    admin = services.admin
    admin.add_fleet("f1", "Fleet one")
    admin.add_user("d1", Role.DRIVER, "f1")
    admin.add_user("op1", Role.OPERATOR, "f1")
    operator_token = admin.issue_token("op1", "test")
    now_ms = _now_ms()
    for vid in ("car-a", "car-b"):
        admin.add_vehicle(vid, model_id=MODEL, fleet_id="f1")
        body = json.dumps([{"vehicle_id": vid, "ts_ms": now_ms - 60_000, "soc_pct": 10.0}]).encode()
        report = services.ingest.ingest(
            body, "application/json", credential_vehicle_id=vid, source="test", now_ms=now_ms
        )
        assert report.accepted == 1
    services.bookings.create("car-a", "d1", now_ms + 3_600_000, now_ms + 3 * 3_600_000)
    services.bookings.create("car-b", "d1", now_ms + 4 * 3_600_000, now_ms + 6 * 3_600_000)
    # a car that takes remote charge commands, for the dumb charger cp-3 (offline until a test connects it)
    admin.add_vehicle("car-c", model_id=COMMANDABLE_MODEL, fleet_id="f1")
    body = json.dumps([{"vehicle_id": "car-c", "ts_ms": now_ms - 60_000, "soc_pct": 10.0}]).encode()
    services.ingest.ingest(
        body, "application/json", credential_vehicle_id="car-c", source="test", now_ms=now_ms
    )
    services.bookings.create("car-c", "d1", now_ms + 3_600_000, now_ms + 3 * 3_600_000)
    points = services.charge_points
    points.add_site_for(ADMIN, "f1", "depot", "Depot", SITE_LIMIT_KW)
    passwords = {}
    for cp in ("cp-1", "cp-2", "cp-3"):
        _, passwords[cp] = points.add_charge_point_for(
            ADMIN,
            "depot",
            cp,
            connectors=1,
            max_kw=7.4,
            min_current_a=0.0,
            phases=1,
            voltage_v=230.0,
            smart=cp != "cp-3",
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services.settings, services), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    depot = Depot(f"ws://127.0.0.1:{port}/ocpp", services, passwords, operator_token)
    points.on_deviation(depot.deviations.append)
    yield depot
    server.should_exit = True
    thread.join(timeout=10)


async def _until(check: Callable[[], Awaitable[bool] | bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def _connect(
    depot: Depot, cp: str, behaviour: str = "follow", *, boot: bool = True
) -> tuple[TwinChargePoint, asyncio.Task[None]]:
    link = await open_link(f"{depot.url}/{cp}", cp, depot.passwords[cp])
    twin = TwinChargePoint(cp, link, max_kw=7.4, phases=1, behaviour=behaviour)  # type: ignore[arg-type]
    task = asyncio.create_task(twin.start())
    depot.links.append((link, task))
    if boot:
        await twin.boot()
    return twin, task


def _kinds(depot: Depot) -> list[str]:
    """The kinds of deviation the chargers reported so far."""
    return [d.kind for d in depot.deviations]


def _targets(depot: Depot) -> list[str]:
    """The cars the latest plan steers, by id."""
    plan = _plan(depot)
    return [] if plan is None else sorted(t["vehicle_id"] for t in plan.plan["targets"])


def _plan(depot: Depot) -> StoredPlan | None:
    return depot.services.charging.latest("f1")


def _planned_kw(plan: StoredPlan, vehicle_id: str, now_ms: int) -> float:
    slot = (now_ms - plan.plan["start_ms"]) // (plan.plan["slot_s"] * 1000)
    car = next(c for c in plan.plan["cars"] if c["vehicle_id"] == vehicle_id)
    return float(car["power_kw"][slot])


async def _two_cars_plugged(
    depot: Depot, behaviour: str = "follow", *, wait: bool = True
) -> tuple[TwinChargePoint, TwinChargePoint]:
    cp1, _ = await _connect(depot, "cp-1", behaviour)
    cp2, _ = await _connect(depot, "cp-2")
    await cp1.plug_in(1, "car-a", car_max_kw=6.6)
    await cp2.plug_in(1, "car-b", car_max_kw=6.6)
    if not wait:
        return cp1, cp2

    def both_planned() -> bool:
        plan = _plan(depot)
        return plan is not None and {t["vehicle_id"] for t in plan.plan["targets"]} == {"car-a", "car-b"}

    await _until(both_planned, "a plan with both cars plugged in")
    return cp1, cp2


def test_twin_chargers_receive_and_follow_the_plan(depot: Depot) -> None:
    async def scenario() -> None:
        cp1, cp2 = await _two_cars_plugged(depot)
        await _until(lambda: "TxProfile" in cp1.connectors[1].profiles, "car-a's TxProfile")
        await _until(lambda: "TxProfile" in cp2.connectors[1].profiles, "car-b's TxProfile")
        plan = _plan(depot)
        assert plan is not None
        now_ms = _now_ms()
        delivered = {}
        for twin, vid in ((cp1, "car-a"), (cp2, "car-b")):
            profile = twin.connectors[1].profiles["TxProfile"]
            assert profile.transaction_id == twin.connectors[1].transaction_id
            assert profile.unit == "W"  # the twin allows Power, read by GetConfiguration
            delivered[vid] = await twin.meter(1, 60.0)
            want = min(ocpp_limit(_planned_kw(plan, vid, now_ms) * 1000) / 1000, 6.6)
            assert math.isclose(delivered[vid], want, abs_tol=1e-6), (vid, delivered[vid], want)
        # car-a's booking in an hour needs energy now: the plan charges it, and the site's limit holds
        assert delivered["car-a"] > 1.0
        assert sum(delivered.values()) <= SITE_LIMIT_KW + 1e-6
        # the metered power reached the store
        open_tx = depot.services.charge_points.open_transactions(["cp-1", "cp-2"])
        assert {t.vehicle_id: round(t.power_kw or 0.0, 3) for t in open_tx} == {
            k: round(v, 3) for k, v in delivered.items()
        }
        # the operator's view over HTTP: per car per slot kW, SoC at each booking, the plan's figures
        http = depot.url.replace("ws://", "http://").removesuffix("/ocpp")
        async with httpx.AsyncClient(base_url=http, headers=bearer(depot.operator_token)) as client:
            view = (await client.get("/api/v1/fleets/f1/charging-plan")).json()
        assert view["plan_id"] == plan.plan_id and view["slot_s"] == 900
        assert {c["vehicle_id"]: len(c["power_kw"]) for c in view["cars"]} == {
            "car-a": 96,
            "car-b": 96,
            "car-c": 96,
        }
        booking_a = next(b for b in view["bookings"] if b["vehicle_id"] == "car-a")
        assert booking_a["shortfall_kwh"] == 0 and booking_a["expected_soc_pct"] > 10.0
        assert view["cost"] > 0 and 0 < view["peak_kw"] <= SITE_LIMIT_KW + 1e-6 and view["losses_kwh"] > 0
        assert next(c for c in view["cars"] if c["vehicle_id"] == "car-a")["explanation"]
        points = {p.charge_point_id: p for p in depot.services.charge_points.charge_points_for(ADMIN, "f1")}
        assert points["cp-1"].config["ChargingScheduleAllowedChargingRateUnit"] == "Current,Power"
        assert points["cp-1"].vendor == "Microfleet"

    depot.run(scenario)


def test_a_surprise_departure_replans_the_fleet(depot: Depot) -> None:
    async def scenario() -> None:
        cp1, cp2 = await _two_cars_plugged(depot)
        await _until(lambda: "TxProfile" in cp2.connectors[1].profiles, "car-b's TxProfile")
        before = _plan(depot)
        assert before is not None and _planned_kw(before, "car-a", _now_ms()) > 0
        sent_to_b = len(cp2.profiles_received)
        await cp1.unplug(1)  # car-a leaves while the plan still had energy for it

        # the stop is a deviation, and the fleet is planned without car-a (the plan may carry the trigger
        # of a round that was already running and read the stop, so the plan's content is what is checked)
        await _until(lambda: "departure" in _kinds(depot), "the departure as a deviation")
        await _until(lambda: _targets(depot) == ["car-b"], "a plan without car-a")
        after = _plan(depot)
        assert after is not None and after.plan_id > before.plan_id
        # a profile that reached cp-1 after car-a left is refused by it, which is no fault of cp-1's
        assert after.plan["uncontrolled"] == [] and not depot.services.charge_points.rejecting
        assert all(
            kw == 0 for kw in next(c for c in after.plan["cars"] if c["vehicle_id"] == "car-a")["power_kw"]
        )
        await _until(lambda: len(cp2.profiles_received) > sent_to_b, "car-b's new profile")

    depot.run(scenario)


def test_a_charger_fault_replans_the_fleet(depot: Depot) -> None:
    async def scenario() -> None:
        _, cp2 = await _two_cars_plugged(depot)
        await cp2.fault(1)

        await _until(lambda: "fault" in _kinds(depot), "the fault as a deviation")
        await _until(lambda: _targets(depot) == ["car-a"], "a plan without the faulted charger")
        plan = _plan(depot)
        assert plan is not None
        car_b = next(c for c in plan.plan["cars"] if c["vehicle_id"] == "car-b")
        assert all(kw == 0 for kw in car_b["power_kw"])
        await cp2.recover(1)  # the fault clears: car-b is planned at cp-2 again, at once

        await _until(lambda: "recovered" in _kinds(depot), "the recovery as a deviation")
        await _until(lambda: _targets(depot) == ["car-a", "car-b"], "a plan with cp-2 again")

    depot.run(scenario)


def test_a_rejected_profile_replans_with_that_charger_uncontrolled(depot: Depot) -> None:
    async def scenario() -> None:
        cp1, _ = await _two_cars_plugged(depot, behaviour="reject", wait=False)

        await _until(lambda: "rejected" in _kinds(depot), "the rejection as a deviation")

        def uncontrolled() -> bool:
            plan = _plan(depot)
            return plan is not None and plan.plan["uncontrolled"] == ["cp-1"]

        await _until(uncontrolled, "a plan with cp-1 uncontrolled")
        plan = _plan(depot)
        assert plan is not None
        assert cp1.profiles_received and not cp1.connectors[1].profiles
        # the site's limit less cp-1's full power leaves nothing for car-b: the plan knows it
        assert plan.plan["peak_kw_by_site"]["depot"] <= 0.001 + 1e-9

    depot.run(scenario)


def test_a_charger_without_its_password_cannot_connect(depot: Depot) -> None:
    async def scenario() -> None:
        for password in ("wrong", depot.passwords["cp-2"]):  # a wrong one, and another charger's
            with pytest.raises(InvalidStatus) as refused:
                await open_link(f"{depot.url}/cp-1", "cp-1", password)
            assert refused.value.response.status_code == 403

    depot.run(scenario)


def test_a_car_on_a_dumb_charger_is_started_or_stopped_by_remote_command(depot: Depot) -> None:
    async def scenario() -> None:
        cp3, _ = await _connect(depot, "cp-3")
        await cp3.plug_in(1, "car-c", car_max_kw=7.4)
        services = depot.services

        def commanded() -> bool:
            commands, _ = services.commands.list_for_vehicle(ADMIN, "car-c")
            return bool(commands)

        await _until(commanded, "a charge command for car-c")
        plan = _plan(depot)
        assert plan is not None
        target = next(t for t in plan.plan["targets"] if t["vehicle_id"] == "car-c")
        assert target["charge_point_id"] == "cp-3" and not target["smart"]
        commands, _ = services.commands.list_for_vehicle(ADMIN, "car-c")
        assert len(commands) == 1
        want = Action.CHARGE_START if _planned_kw(plan, "car-c", _now_ms()) > 0 else Action.CHARGE_STOP
        assert (commands[0].action, commands[0].issued_by) == (want, "user:charging-planner")
        assert not cp3.profiles_received  # a dumb charger is sent no profile
        # the same plan in the same slot sends nothing new (the idempotency key names the run)
        services.charging.command_dumb_chargers(plan, services.commands)
        assert len(services.commands.list_for_vehicle(ADMIN, "car-c")[0]) == 1

    depot.run(scenario)


def test_a_plan_is_kept_while_its_inputs_do_not_change(services: Services, clock: object) -> None:
    """No server: the service alone. The same snapshot keeps the plan; a new booking makes a new one."""
    clock.now_ms = _now_ms()  # type: ignore[attr-defined]
    services.admin.add_fleet("f2", "Fleet two")
    services.admin.add_user("d2", Role.DRIVER, "f2")
    services.admin.add_vehicle("car-z", model_id=MODEL, fleet_id="f2")
    now_ms = _now_ms()
    body = json.dumps([{"vehicle_id": "car-z", "ts_ms": now_ms - 60_000, "soc_pct": 50.0}]).encode()
    services.ingest.ingest(body, "application/json", credential_vehicle_id="car-z", source="t", now_ms=now_ms)
    services.charge_points.add_site_for(ADMIN, "f2", "depot-2", "Depot two", 11.0)
    first = services.charging.replan("f2", "periodic")
    assert services.charging.replan("f2", "periodic").plan_id == first.plan_id
    services.bookings.create("car-z", "d2", now_ms + 7_200_000, now_ms + 9_000_000)
    second = services.charging.replan("f2", "booking")
    assert second.plan_id != first.plan_id and second.inputs_sha256 != first.inputs_sha256
    assert [b["vehicle_id"] for b in second.plan["bookings"]] == ["car-z"]
    booking = second.plan["bookings"][0]
    # not plugged in: its 50 % of 12.8 kWh is what it has at the booking, which needs 2 kWh an hour
    assert booking["expected_soc_pct"] == pytest.approx(50.0, abs=0.1)
    assert booking["shortfall_kwh"] == pytest.approx(0.0)


def test_a_new_booking_replans_at_the_next_poll_not_the_next_round(services: Services, clock: object) -> None:
    clock.now_ms = _now_ms()  # type: ignore[attr-defined]
    services.admin.add_fleet("f3", "Fleet three")
    services.admin.add_user("d3", Role.DRIVER, "f3")
    services.admin.add_vehicle("car-y", model_id=MODEL, fleet_id="f3")
    now_ms = _now_ms()
    body = json.dumps([{"vehicle_id": "car-y", "ts_ms": now_ms - 60_000, "soc_pct": 40.0}]).encode()
    services.ingest.ingest(body, "application/json", credential_vehicle_id="car-y", source="t", now_ms=now_ms)
    services.charge_points.add_site_for(ADMIN, "f3", "depot-3", "Depot three", 11.0)
    worker = ChargingWorker(
        services.charging, services.charge_points, ChargingStore(services.engine), interval_s=900, poll_s=0.05
    )

    async def scenario() -> None:
        worker.start(None)
        try:
            await asyncio.sleep(0.3)  # the worker's first look: nothing planned yet, nothing changed
            assert services.charging.latest("f3") is None
            services.bookings.create("car-y", "d3", now_ms + 7_200_000, now_ms + 9_000_000)

            def replanned() -> bool:
                plan = services.charging.latest("f3")
                return plan is not None and "booking or price" in plan.trigger.split(", ")

            await _until(replanned, "a re-plan after the new booking")
        finally:
            await worker.stop()

    asyncio.run(scenario())


def test_two_trips_in_one_slot_are_planned_as_one_needing_both(services: Services, clock: object) -> None:
    clock.now_ms = _now_ms()  # type: ignore[attr-defined]
    services.admin.add_fleet("f4", "Fleet four")
    services.admin.add_user("d4", Role.DRIVER, "f4")
    services.admin.add_vehicle("car-x", model_id=MODEL, fleet_id="f4")
    now_ms = _now_ms()
    body = json.dumps([{"vehicle_id": "car-x", "ts_ms": now_ms - 60_000, "soc_pct": 40.0}]).encode()
    services.ingest.ingest(body, "application/json", credential_vehicle_id="car-x", source="t", now_ms=now_ms)
    services.charge_points.add_site_for(ADMIN, "f4", "depot-4", "Depot four", 11.0)
    slot_ms = 900_000
    slot = (now_ms + 7_200_000) // slot_ms * slot_ms  # a slot two hours ahead
    services.bookings.create("car-x", "d4", slot + 60_000, slot + 360_000)  # 5 min
    services.bookings.create("car-x", "d4", slot + 420_000, slot + 840_000)  # 7 min, same slot
    plan = services.charging.replan("f4", "test")
    assert len(plan.plan["bookings"]) == 1
    need = plan.plan["bookings"][0]["need_kwh"]
    assert need == pytest.approx(2.0 * (5 + 7) / 60, abs=1e-3)  # 2 kWh per booked hour, both trips


def test_a_charger_that_reconnects_without_booting_is_read_and_steered(depot: Depot) -> None:
    async def scenario() -> None:
        cp1, _ = await _connect(
            depot, "cp-1", boot=False
        )  # as after Microfleet's restart: no BootNotification
        await cp1.plug_in(1, "car-a", car_max_kw=6.6)
        await _until(lambda: "TxProfile" in cp1.connectors[1].profiles, "car-a's TxProfile")
        assert cp1.connectors[1].profiles["TxProfile"].unit == "W"  # its configuration was read first

    depot.run(scenario)


def test_a_car_the_plan_does_not_know_takes_its_share_of_the_site_first(depot: Depot) -> None:
    async def scenario() -> None:
        cp3, _ = await _connect(depot, "cp-3")  # dumb: an unknown car on it draws its full 7.4 kW
        await cp3.plug_in(1, "STRANGER-01", car_max_kw=7.4)
        cp1, _ = await _connect(depot, "cp-1")
        await cp1.plug_in(1, "car-a", car_max_kw=6.6)

        def planned() -> bool:
            plan = _plan(depot)
            return plan is not None and [t["vehicle_id"] for t in plan.plan["targets"]] == ["car-a"]

        await _until(planned, "a plan with car-a plugged in")
        plan = _plan(depot)
        assert plan is not None
        # 5 kW less the stranger's 7.4 kW leaves nothing: car-a waits, and its booking is short
        assert plan.plan["peak_kw_by_site"]["depot"] <= 0.001 + 1e-9
        booking = next(b for b in plan.plan["bookings"] if b["vehicle_id"] == "car-a")
        assert booking["shortfall_kwh"] > 0

    depot.run(scenario)


def test_the_plans_clock_times_are_in_the_fleets_tariff_zone(services: Services, clock: object) -> None:
    """The explanations' "charges 01:00–03:30" is the clock the fleet's time-of-use bands are written in."""
    clock.now_ms = _now_ms()  # type: ignore[attr-defined]
    services.admin.add_fleet("f5", "Fleet five")
    services.admin.add_vehicle("car-w", model_id=MODEL, fleet_id="f5")
    services.charge_points.add_site_for(ADMIN, "f5", "depot-5", "Depot five", 11.0)
    snapshot, _ = services.charging.snapshot("f5")
    # no tariff of its own: the built-in default, Shanghai's, at UTC+8 all year
    assert snapshot.utc_offset_s == 8 * 3600
    services.tariffs.add(
        parse_tariff(
            {
                "tariff_id": "f5-flat-new-york",
                "kind": "time_of_use",
                "currency": "USD",
                "timezone": "America/New_York",
                "bands": [{"start": "00:00", "end": "24:00", "price_per_kwh": 0.2}],
            }
        ),
        fleet_id="f5",
    )
    snapshot, _ = services.charging.snapshot("f5")
    start = datetime.fromtimestamp(snapshot.start_ms / 1000, tz=ZoneInfo("America/New_York"))
    assert snapshot.utc_offset_s == start.utcoffset().total_seconds()  # type: ignore[union-attr]
    assert snapshot.utc_offset_s in (-5 * 3600, -4 * 3600)
