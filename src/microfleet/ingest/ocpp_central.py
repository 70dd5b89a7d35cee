"""Microfleet as an OCPP 1.6J central system: chargers connect over WebSocket, are heard and are steered.

The API serves ``/ocpp/{charge_point_id}`` (``api/routes/ocpp.py``): subprotocol ``ocpp1.6`` and HTTP Basic
auth with the charger's own password (OCPP 1.6 security profile 1; docs/charging.md). Each connection is a
:class:`CentralSession` (the ``ocpp`` library's ``ChargePoint``, here on the central system's side): it
answers BootNotification, Heartbeat, StatusNotification, Start/StopTransaction and MeterValues through
:class:`~microfleet.services.charge_points.ChargePointService`, reads the charger's configuration keys
after it boots, and applies a plan with SetChargingProfile.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ocpp.routing import after, on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint as OcppChargePoint  # type: ignore[import-untyped]
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    Action,
    AuthorizationStatus,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    RegistrationStatus,
)

from microfleet.domain.charge_points import ChargePoint, PointStatus, StoredPlan, ocpp_limit
from microfleet.services.charge_points import ChargePointService

log = logging.getLogger(__name__)

# The configuration keys read after a boot. Source: OCPP 1.6 edition 2, §9.1 core and §9.4 smart charging
# profile keys (ChargeProfileMaxStackLevel, ChargingScheduleAllowedChargingRateUnit, ...).
CONFIG_KEYS: Final = (
    "ChargeProfileMaxStackLevel",
    "ChargingScheduleAllowedChargingRateUnit",
    "ChargingScheduleMaxPeriods",
    "MaxChargingProfilesInstalled",
    "HeartbeatInterval",
    "MeterValueSampleInterval",
    "NumberOfConnectors",
)

# Microfleet's profiles are one per purpose and connector, replaced by id: a stack level of 1 lies above a
# charger's own default (0) where ChargeProfileMaxStackLevel allows it (OCPP 1.6 §3.13.2 stacking).
STACK_LEVEL: Final = 1


class TextLink(Protocol):
    """A WebSocket carrying OCPP-J text frames (``recv``/``send``: what the ``ocpp`` library calls)."""

    async def recv(self) -> str:
        """The next text frame."""
        ...

    async def send(self, message: str) -> None:
        """Send a text frame."""
        ...


@dataclass(frozen=True, slots=True)
class ProfileOrder:
    """A schedule for one connector: ``kw[i]`` from ``start_ms + i * slot_s``; ``transaction_id`` or None.

    With a transaction it is a TxProfile of that transaction, else the connector's TxDefaultProfile.
    """

    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    start_ms: int
    slot_s: int
    kw: Sequence[float]


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


class CentralSession(OcppChargePoint):  # type: ignore[misc]  # the ocpp library is untyped
    """One connected charger, seen from the central system."""

    def __init__(
        self,
        point: ChargePoint,
        link: TextLink,
        service: ChargePointService,
        *,
        heartbeat_s: int,
        planned_until: Callable[[str, int], int | None],
        response_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(point.charge_point_id, link, response_timeout=response_timeout_s)
        self.point = point
        self._service = service
        self._heartbeat_s = heartbeat_s
        self._planned_until = planned_until
        self.config: dict[str, str] = {}
        self.configured = asyncio.Event()
        self.stopped: set[int] = set()  # transactions this charger has stopped while connected
        self._tasks: set[asyncio.Task[Any]] = set()

    @on(Action.boot_notification)  # type: ignore[untyped-decorator]
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        """Accept the charger and note its vendor and model."""
        await asyncio.to_thread(self._service.booted, self.id, charge_point_vendor, charge_point_model)
        return call_result.BootNotification(
            current_time=_now_iso(), interval=self._heartbeat_s, status=RegistrationStatus.accepted
        )

    @after(Action.boot_notification)  # type: ignore[untyped-decorator]
    async def after_boot(self, **_: Any) -> None:
        """Read the configuration keys once the boot is answered."""
        task = asyncio.create_task(self.read_configuration())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def read_configuration(self) -> dict[str, str]:
        """Ask the charger for its smart-charging keys (GetConfiguration) and keep the answer."""
        try:
            answer = await self.call(call.GetConfiguration(key=list(CONFIG_KEYS)))
        except TimeoutError:
            log.warning("charge point %s did not answer GetConfiguration", self.id)
            return self.config
        if answer is not None:
            self.config = {
                str(k["key"]): str(k.get("value", "")) for k in (answer.configuration_key or []) if "key" in k
            }
            await asyncio.to_thread(self._service.configured, self.id, dict(self.config))
        self.configured.set()
        return self.config

    @on(Action.heartbeat)  # type: ignore[untyped-decorator]
    async def on_heartbeat(self, **_: Any) -> Any:
        """Note that the charger is alive."""
        await asyncio.to_thread(self._service.heartbeat, self.id)
        return call_result.Heartbeat(current_time=_now_iso())

    @on(Action.status_notification)  # type: ignore[untyped-decorator]
    async def on_status(self, connector_id: int, error_code: str, status: str, **extra: Any) -> Any:
        """Note a connector's status."""
        detail = f"connector {connector_id}: {status} ({error_code})"
        if extra.get("info"):
            detail += f": {str(extra['info'])[:200]}"
        await asyncio.to_thread(self._service.status, self.id, PointStatus(status), detail)
        return call_result.StatusNotification()

    @on(Action.start_transaction)  # type: ignore[untyped-decorator]
    async def on_start(self, connector_id: int, id_tag: str, meter_start: int, **_: Any) -> Any:
        """Open a transaction."""
        transaction_id = await asyncio.to_thread(
            self._service.started, self.id, connector_id, id_tag, meter_start
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)  # type: ignore[untyped-decorator]
    async def on_stop(self, meter_stop: int, transaction_id: int, **extra: Any) -> Any:
        """Close a transaction; before the plan gave it its energy, a departure."""
        until_ms = self._planned_until(self.id, transaction_id)
        now_ms = self._service.now_ms()
        early = until_ms is not None and now_ms < until_ms
        reason = str(extra.get("reason") or "Local")
        self.stopped.add(transaction_id)
        await asyncio.to_thread(
            lambda: self._service.stopped(self.id, transaction_id, meter_stop, reason, early=early)
        )
        return call_result.StopTransaction()

    @on(Action.meter_values)  # type: ignore[untyped-decorator]
    async def on_meter(self, connector_id: int, meter_value: list[dict[str, Any]], **extra: Any) -> Any:
        """Keep the transaction's power and energy."""
        transaction_id = extra.get("transaction_id")
        if transaction_id is not None and meter_value:
            power_kw, energy_wh = _read_meter(meter_value[-1])
            await asyncio.to_thread(self._service.metered, self.id, transaction_id, power_kw, energy_wh)
        return call_result.MeterValues()

    async def set_profile(self, order: ProfileOrder) -> str:
        """Send SetChargingProfile for ``order``; returns the charger's status (Accepted, Rejected, ...)."""
        if not self.configured.is_set():  # e.g. a charger that reconnected without booting again
            await self.read_configuration()
        per_kw, unit = self._unit()
        periods: list[dict[str, Any]] = []
        for i, kw in enumerate(order.kw):
            limit = ocpp_limit(kw * per_kw)
            if not periods or periods[-1]["limit"] != limit:
                periods.append({"start_period": i * order.slot_s, "limit": limit})
        duration_s = len(order.kw) * order.slot_s
        max_periods = int(self.config.get("ChargingScheduleMaxPeriods", "0") or 0)
        if 0 < max_periods < len(periods):  # the charger keeps fewer: the schedule ends where they end
            duration_s = periods[max_periods]["start_period"]
            periods = periods[:max_periods]
        purpose = (
            ChargingProfilePurposeType.tx_profile
            if order.transaction_id is not None
            else ChargingProfilePurposeType.tx_default_profile
        )
        stack_level = min(STACK_LEVEL, int(self.config.get("ChargeProfileMaxStackLevel", STACK_LEVEL) or 0))
        profile: dict[str, Any] = {
            # One id per connector and purpose, so a new plan replaces the last one (OCPP 1.6 §3.13.2).
            "charging_profile_id": order.connector_id * 10 + (1 if order.transaction_id is not None else 2),
            "stack_level": stack_level,
            "charging_profile_purpose": purpose,
            "charging_profile_kind": ChargingProfileKindType.absolute,
            "charging_schedule": {
                "duration": duration_s,
                "start_schedule": _iso(order.start_ms),
                "charging_rate_unit": unit,
                "charging_schedule_period": periods,
            },
        }
        if order.transaction_id is not None:
            profile["transaction_id"] = order.transaction_id
        answer = await self.call(
            call.SetChargingProfile(connector_id=order.connector_id, cs_charging_profiles=profile)
        )
        status = "CallError" if answer is None else str(answer.status)
        accepted = status == ChargingProfileStatus.accepted
        if not accepted and order.transaction_id in self.stopped:
            return (
                "TransactionStopped"  # the car left while the profile was on its way: no fault of the charger
            )
        await asyncio.to_thread(
            self._service.profile_answered, self.id, accepted, f"SetChargingProfile answered {status}"
        )
        return status

    def _unit(self) -> tuple[float, ChargingRateUnitType]:
        """Limits in W where the charger takes power, else in A per phase (OCPP 1.6 §9.4)."""
        allowed = self.config.get("ChargingScheduleAllowedChargingRateUnit", "Current")
        if "Power" in allowed:
            return 1000.0, ChargingRateUnitType.watts
        return self.point.amps_per_kw, ChargingRateUnitType.amps


def _read_meter(value: dict[str, Any]) -> tuple[float | None, float | None]:
    """Power (kW) and the energy register (Wh) of one MeterValue, in W/kW and Wh/kWh as labelled."""
    power_kw: float | None = None
    energy_wh: float | None = None
    for sampled in value.get("sampled_value", []):
        measurand = sampled.get("measurand", "Energy.Active.Import.Register")
        unit = sampled.get("unit", "Wh")
        try:
            number = float(sampled["value"])
        except (KeyError, TypeError, ValueError):
            continue
        if measurand == "Power.Active.Import":
            power_kw = number if unit == "kW" else number / 1000.0
        elif measurand == "Energy.Active.Import.Register":
            energy_wh = number * 1000.0 if unit == "kWh" else number
    return power_kw, energy_wh


class OcppCentral:
    """Every connected charger of this process, and the plan's orders sent to them."""

    def __init__(self, service: ChargePointService, *, heartbeat_s: int = 60) -> None:
        self._service = service
        self._heartbeat_s = heartbeat_s
        self._sessions: dict[str, CentralSession] = {}
        self._planned_until: dict[tuple[str, int], int] = {}

    def connected(self) -> list[str]:
        """The identities of the chargers connected now."""
        return sorted(self._sessions)

    def session(self, charge_point_id: str) -> CentralSession | None:
        """A connected charger's session."""
        return self._sessions.get(charge_point_id)

    async def serve(self, point: ChargePoint, link: TextLink) -> None:
        """Run one charger's connection until it closes (a reconnect replaces an older session)."""
        session = CentralSession(
            point,
            link,
            self._service,
            heartbeat_s=self._heartbeat_s,
            planned_until=lambda cp, tx: self._planned_until.get((cp, tx)),
        )
        self._sessions[point.charge_point_id] = session
        try:
            await session.start()
        finally:
            if self._sessions.get(point.charge_point_id) is session:
                del self._sessions[point.charge_point_id]

    async def apply(self, orders: Sequence[ProfileOrder]) -> dict[tuple[str, int], str]:
        """Send each order to its charger, if connected; returns each one's status ("Offline" if not).

        Chargers are sent to at once, each one's orders in turn (OCPP-J allows one call at a time).
        """
        by_point: dict[str, list[ProfileOrder]] = {}
        for order in orders:
            by_point.setdefault(order.charge_point_id, []).append(order)
        answers = await asyncio.gather(*(self._send(cp, its) for cp, its in by_point.items()))
        return {key: status for answer in answers for key, status in answer.items()}

    async def _send(self, charge_point_id: str, orders: Sequence[ProfileOrder]) -> dict[tuple[str, int], str]:
        results: dict[tuple[str, int], str] = {}
        for order in orders:
            key = (order.charge_point_id, order.connector_id)
            session = self._sessions.get(charge_point_id)
            if session is None:
                results[key] = "Offline"
                continue
            if order.transaction_id is not None:
                last = max((i for i, kw in enumerate(order.kw) if kw > 0), default=-1)
                tx_key = (order.charge_point_id, order.transaction_id)
                if last >= 0:
                    self._planned_until[tx_key] = order.start_ms + (last + 1) * order.slot_s * 1000
                else:
                    self._planned_until.pop(tx_key, None)
            try:
                results[key] = await session.set_profile(order)
            except TimeoutError:
                results[key] = "Timeout"
        return results

    async def apply_plan(self, plan: StoredPlan, points: Sequence[ChargePoint]) -> dict[str, str]:
        """Send a fleet's plan to its smart chargers: a TxProfile per planned car, TxDefaultProfile else.

        A free connector of a smart charger gets a TxDefaultProfile at the charger's minimum power: a car
        that arrives unplanned charges gently and its arrival re-plans the fleet within seconds. A dumb
        charger gets none (its car is commanded instead); one that rejects profiles is still sent them, so
        that it is steered again as soon as it accepts.
        """
        body = plan.plan
        kw_by_car = {c["vehicle_id"]: c["power_kw"] for c in body.get("cars", [])}
        start_ms, slot_s = int(body["start_ms"]), int(body["slot_s"])
        smart = {p.charge_point_id: p for p in points if p.smart}
        orders: list[ProfileOrder] = []
        taken: set[tuple[str, int]] = set()
        for target in body.get("targets", []):
            point = smart.get(target["charge_point_id"])
            if point is None or target["vehicle_id"] not in kw_by_car:
                continue
            taken.add((point.charge_point_id, target["connector_id"]))
            orders.append(
                ProfileOrder(
                    point.charge_point_id,
                    target["connector_id"],
                    target["transaction_id"],
                    start_ms,
                    slot_s,
                    kw_by_car[target["vehicle_id"]],
                )
            )
        for point in smart.values():
            for connector_id in range(1, point.connectors + 1):
                if (point.charge_point_id, connector_id) not in taken:
                    n = len(next(iter(kw_by_car.values()), [0.0]))
                    orders.append(
                        ProfileOrder(
                            point.charge_point_id, connector_id, None, start_ms, slot_s, [point.min_kw] * n
                        )
                    )
        answers = await self.apply(orders)
        return {f"{cp}/{connector}": status for (cp, connector), status in answers.items()}
