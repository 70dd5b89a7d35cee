"""The twin's OCPP 1.6J charge points: real WebSocket clients of a central system, as a depot charger is.

A :class:`TwinChargePoint` boots, reports its connectors' status, starts and stops transactions when a car
plugs in or leaves, sends MeterValues of the power it delivers, answers GetConfiguration, and takes
SetChargingProfile. Its ``behaviour`` is what a real charger may do with a profile: follow it (``follow``),
accept it but deliver full power anyway (``ignore``, a faulty firmware), or reject it (``reject``). The
power it delivers is the profile's limit at that moment (TxProfile of the transaction over the connector's
TxDefaultProfile, OCPP 1.6 §3.13.2), capped by the car's own maximum.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ocpp.routing import on  # type: ignore[import-untyped]
from ocpp.v16 import ChargePoint as OcppChargePoint  # type: ignore[import-untyped]
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (  # type: ignore[import-untyped]
    Action,
    ChargePointErrorCode,
    ChargePointStatus,
    ChargingProfileStatus,
    ConfigurationStatus,
    Measurand,
    Reason,
    UnitOfMeasure,
)
from websockets.asyncio.client import ClientConnection, connect

Behaviour = Literal["follow", "ignore", "reject"]


@dataclass(slots=True)
class Profile:
    """A received charging profile, reduced to what the twin follows."""

    purpose: str
    transaction_id: int | None
    start_ms: int
    unit: str
    periods: list[tuple[int, float]]  # (start second, limit) in ``unit``
    duration_s: int | None

    def limit_at(self, now_ms: int) -> float | None:
        """The limit at ``now_ms`` in the profile's unit; None before its start or after its duration."""
        elapsed_s = (now_ms - self.start_ms) / 1000
        if elapsed_s < 0 or (self.duration_s is not None and elapsed_s >= self.duration_s):
            return None
        limit = None
        for start_s, value in self.periods:
            if start_s <= elapsed_s:
                limit = value
        return limit


@dataclass(slots=True)
class Connector:
    """One connector: the car on it, its transaction, and the energy delivered so far."""

    status: str = ChargePointStatus.available
    id_tag: str | None = None
    car_max_kw: float = 0.0
    transaction_id: int | None = None
    energy_wh: float = 0.0
    power_kw: float = 0.0
    profiles: dict[str, Profile] = field(default_factory=dict)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _ms(iso: str) -> int:
    return round(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class TwinChargePoint(OcppChargePoint):  # type: ignore[misc]  # the ocpp library is untyped
    """A simulated OCPP 1.6J charger with ``connectors`` connectors of ``max_kw`` each."""

    def __init__(
        self,
        charge_point_id: str,
        link: ClientConnection,
        *,
        connectors: int = 1,
        max_kw: float = 11.0,
        phases: int = 3,
        voltage_v: float = 230.0,
        behaviour: Behaviour = "follow",
        rate_unit: str = "Current,Power",
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        super().__init__(charge_point_id, link, response_timeout=10)
        self.max_kw = max_kw
        self.phases = phases
        self.voltage_v = voltage_v
        self.behaviour: Behaviour = behaviour
        self.rate_unit = rate_unit
        self.clock = clock
        self.connectors = {i: Connector() for i in range(1, connectors + 1)}
        self.profiles_received: list[dict[str, Any]] = []

    # --- what the central system asks ---------------------------------------------------------------

    @on(Action.get_configuration)  # type: ignore[untyped-decorator]
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        """Answer the smart-charging keys the twin knows."""
        known = {
            "ChargeProfileMaxStackLevel": "3",
            "ChargingScheduleAllowedChargingRateUnit": self.rate_unit,
            "ChargingScheduleMaxPeriods": "96",
            "MaxChargingProfilesInstalled": "8",
            "HeartbeatInterval": "60",
            "MeterValueSampleInterval": "60",
            "NumberOfConnectors": str(len(self.connectors)),
        }
        asked = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": known[k]} for k in asked if k in known],
            unknown_key=[k for k in asked if k not in known] or None,
        )

    @on(Action.change_configuration)  # type: ignore[untyped-decorator]
    def on_change_configuration(self, **_: Any) -> Any:
        """Refuse changes: the twin is read-only."""
        return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)

    @on(Action.set_charging_profile)  # type: ignore[untyped-decorator]
    def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        """Keep a profile (or reject it, as the behaviour says)."""
        self.profiles_received.append({"connector_id": connector_id, **cs_charging_profiles})
        connector = self.connectors.get(connector_id)
        if self.behaviour == "reject" or connector is None:
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        schedule = cs_charging_profiles["charging_schedule"]
        purpose = cs_charging_profiles["charging_profile_purpose"]
        tx = cs_charging_profiles.get("transaction_id")
        if purpose == "TxProfile" and (tx is None or tx != connector.transaction_id):
            # OCPP 1.6 §5.16.3: a TxProfile for no or another transaction is rejected.
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        connector.profiles[purpose] = Profile(
            purpose=purpose,
            transaction_id=tx,
            start_ms=_ms(schedule["start_schedule"]) if schedule.get("start_schedule") else self.clock(),
            unit=schedule["charging_rate_unit"],
            periods=[
                (int(p["start_period"]), float(p["limit"])) for p in schedule["charging_schedule_period"]
            ],
            duration_s=schedule.get("duration"),
        )
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    # --- what the twin's charger does ---------------------------------------------------------------

    def limit_kw(self, connector_id: int, now_ms: int) -> float:
        """The power this charger lets the connector draw now (what it would follow), in kW."""
        connector = self.connectors[connector_id]
        limit_kw = self.max_kw
        if self.behaviour != "follow":
            return limit_kw
        for purpose in ("TxProfile", "TxDefaultProfile"):  # TxProfile overrules TxDefaultProfile
            profile = connector.profiles.get(purpose)
            if profile is None:
                continue
            limit = profile.limit_at(now_ms)
            if limit is None:
                continue
            per_kw = 1000.0 if profile.unit == "W" else 1000.0 / (self.phases * self.voltage_v)
            return min(limit_kw, limit / per_kw)
        return limit_kw

    async def boot(self) -> None:
        """BootNotification, then every connector's status."""
        await self.call(call.BootNotification(charge_point_model="TwinAC", charge_point_vendor="Microfleet"))
        for connector_id, connector in self.connectors.items():
            await self._status(connector_id, connector.status)

    async def plug_in(self, connector_id: int, id_tag: str, car_max_kw: float) -> int:
        """A car arrives: Preparing, StartTransaction, Charging; returns the transaction id."""
        connector = self.connectors[connector_id]
        connector.id_tag, connector.car_max_kw = id_tag, car_max_kw
        await self._status(connector_id, ChargePointStatus.preparing)
        answer = await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=round(connector.energy_wh),
                timestamp=_iso(self.clock()),
            )
        )
        connector.transaction_id = answer.transaction_id
        await self._status(connector_id, ChargePointStatus.charging)
        return int(answer.transaction_id)

    async def unplug(self, connector_id: int, reason: str = Reason.ev_disconnected) -> None:
        """A car leaves: StopTransaction, then Available; its TxProfile ends with the transaction."""
        connector = self.connectors[connector_id]
        if connector.transaction_id is None:
            return
        await self.call(
            call.StopTransaction(
                meter_stop=round(connector.energy_wh),
                timestamp=_iso(self.clock()),
                transaction_id=connector.transaction_id,
                reason=reason,
                id_tag=connector.id_tag,
            )
        )
        connector.transaction_id, connector.id_tag, connector.power_kw = None, None, 0.0
        connector.profiles.pop("TxProfile", None)
        await self._status(connector_id, ChargePointStatus.available)

    async def fault(self, connector_id: int) -> None:
        """The connector faults (e.g. a ground failure): it stops delivering and says Faulted."""
        self.connectors[connector_id].power_kw = 0.0
        await self._status(connector_id, ChargePointStatus.faulted, ChargePointErrorCode.ground_failure)

    async def recover(self, connector_id: int) -> None:
        """The fault is cleared: Charging again if a car is still on it, else Available."""
        connector = self.connectors[connector_id]
        status = (
            ChargePointStatus.charging
            if connector.transaction_id is not None
            else ChargePointStatus.available
        )
        await self._status(connector_id, status)

    async def meter(self, connector_id: int, dt_s: float) -> float:
        """Deliver ``dt_s`` seconds of power at the current limit and send MeterValues; returns the kW."""
        connector = self.connectors[connector_id]
        if connector.transaction_id is None or connector.status == ChargePointStatus.faulted:
            return 0.0
        connector.power_kw = min(connector.car_max_kw, self.limit_kw(connector_id, self.clock()))
        connector.energy_wh += connector.power_kw * 1000 * dt_s / 3600
        await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=connector.transaction_id,
                meter_value=[
                    {
                        "timestamp": _iso(self.clock()),
                        "sampled_value": [
                            {
                                "value": f"{connector.power_kw * 1000:.1f}",
                                "measurand": Measurand.power_active_import,
                                "unit": UnitOfMeasure.w,
                            },
                            {
                                "value": f"{connector.energy_wh:.1f}",
                                "measurand": Measurand.energy_active_import_register,
                                "unit": UnitOfMeasure.wh,
                            },
                        ],
                    }
                ],
            )
        )
        return connector.power_kw

    async def _status(
        self, connector_id: int, status: str, error: str = ChargePointErrorCode.no_error
    ) -> None:
        self.connectors[connector_id].status = status
        await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=error, status=status, timestamp=_iso(self.clock())
            )
        )


async def open_link(url: str, charge_point_id: str, password: str) -> ClientConnection:
    """Connect to a central system at ``url`` (ending in the charger's id) with Basic auth and ``ocpp1.6``."""
    token = base64.b64encode(f"{charge_point_id}:{password}".encode()).decode()
    return await connect(
        url,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
        open_timeout=10,
    )


async def run_charge_point(point: TwinChargePoint) -> asyncio.Task[None]:
    """Start the charger's receive loop as a task (it must run to get answers to its own calls)."""
    return asyncio.create_task(point.start())
