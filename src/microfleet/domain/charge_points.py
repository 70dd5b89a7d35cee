"""Charging sites, OCPP charge points, their transactions and stored plans: pure types and rules.

A site is a fleet's depot behind one grid connection (``power_limit_kw``); a charge point is one OCPP 1.6J
charger there, known by its OCPP identity and authenticated by its own Basic-auth password (OCPP 1.6
security profile 1). A smart charge point follows ``SetChargingProfile``; a dumb one only delivers power,
and the car is told to start, stop or limit its charge by a remote command instead.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

from microfleet.errors import InvalidInputError

# OCPP 1.6 JSON schema of SetChargingProfile: ``limit`` is a decimal with ``multipleOf: 0.1`` (the ocpp
# library validates it). Source: OCPP 1.6 edition 2, SetChargingProfile.json, chargingSchedulePeriod.limit.
LIMIT_STEP: Final = 0.1

# The OCPP identity is the last path segment of the charger's URL (OCPP-J 1.6 §3.1.1): printable, no '/'.
# Microfleet keeps it to letters, digits and -_.: as an id, like vehicle ids, and at most 64 characters.
POINT_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
_ID = re.compile(POINT_ID_PATTERN)

# IEC 61851-1 mode 3: the control pilot cannot ask for less than 6 A (duty cycle 10 %).
IEC_61851_MIN_CURRENT_A: Final = 6.0


class PointStatus(enum.StrEnum):
    """A connector's status as OCPP 1.6 StatusNotification reports it, plus ``offline`` (never seen)."""

    OFFLINE = "Offline"
    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EVSE = "SuspendedEVSE"
    SUSPENDED_EV = "SuspendedEV"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


@dataclass(frozen=True, slots=True)
class ChargingSite:
    """A fleet's depot: its chargers share one grid connection of ``power_limit_kw``."""

    site_id: str
    fleet_id: str
    name: str
    power_limit_kw: float


@dataclass(frozen=True, slots=True)
class ChargePoint:
    """One OCPP charge point at a site; ``config`` is what GetConfiguration answered (key -> value)."""

    charge_point_id: str
    site_id: str
    connectors: int
    max_kw: float
    min_current_a: float
    phases: int
    voltage_v: float
    smart: bool
    status: PointStatus = PointStatus.OFFLINE
    status_at_ms: int | None = None
    last_seen_ms: int | None = None
    vendor: str | None = None
    model: str | None = None
    config: dict[str, str] = field(default_factory=dict)

    @property
    def min_kw(self) -> float:
        """The least power the charger can deliver when on (its minimum current on every phase)."""
        return self.min_current_a * self.phases * self.voltage_v / 1000.0

    @property
    def amps_per_kw(self) -> float:
        """Amperes per phase for one kW at this charger's voltage and phases."""
        return 1000.0 / (self.phases * self.voltage_v)


@dataclass(frozen=True, slots=True)
class ChargingTransaction:
    """A charging transaction a charge point started (StartTransaction) and maybe stopped."""

    transaction_id: int
    charge_point_id: str
    connector_id: int
    id_tag: str
    vehicle_id: str | None
    start_ms: int
    meter_start_wh: int
    stop_ms: int | None = None
    meter_stop_wh: int | None = None
    stop_reason: str | None = None
    power_kw: float | None = None
    energy_wh: float | None = None


@dataclass(frozen=True, slots=True)
class StoredPlan:
    """A charging plan as stored: its figures and the plan's JSON (slots, kW per car, SoC at bookings)."""

    plan_id: int
    fleet_id: str
    created_at_ms: int
    inputs_sha256: str
    trigger: str
    status: str
    cost: float
    peak_kw: float
    carbon_kg: float | None
    losses_kwh: float
    gap: float | None
    plan: dict[str, Any]


def check_point_id(value: str, name: str = "charge_point_id") -> str:
    """An OCPP identity or site id Microfleet accepts; :class:`InvalidInputError` otherwise."""
    if not _ID.match(value):
        raise InvalidInputError(f"{name} {value!r}: 1-64 letters, digits or -_.: (starting with one)")
    return value


def check_charge_point(
    connectors: int, max_kw: float, min_current_a: float, phases: int, voltage_v: float
) -> None:
    """Refuse a charger that cannot charge: no connector, 0 kW, or a minimum current above its maximum."""
    if not 1 <= connectors <= 10:
        raise InvalidInputError(f"connectors {connectors}: a charge point has 1 to 10")
    if not (math.isfinite(max_kw) and 0 < max_kw <= 400):
        raise InvalidInputError(f"max_kw {max_kw}: above 0 and at most 400 kW")
    if phases not in (1, 3):
        raise InvalidInputError(f"phases {phases}: 1 or 3")
    if not (math.isfinite(voltage_v) and 100 <= voltage_v <= 1000):
        raise InvalidInputError(f"voltage_v {voltage_v}: 100 to 1000 V")
    if not (math.isfinite(min_current_a) and min_current_a >= 0):
        raise InvalidInputError(f"min_current_a {min_current_a}: 0 A or more")
    if min_current_a * phases * voltage_v / 1000.0 > max_kw:
        raise InvalidInputError(
            f"min_current_a {min_current_a} A on {phases} phase(s) at {voltage_v} V is above max_kw {max_kw}"
        )


def check_site_limit(power_limit_kw: float) -> float:
    """A site's grid limit in kW: finite and above 0."""
    if not (math.isfinite(power_limit_kw) and power_limit_kw > 0):
        raise InvalidInputError(f"power_limit_kw {power_limit_kw}: above 0 kW")
    return power_limit_kw


def ocpp_limit(value: float) -> float:
    """A profile limit rounded DOWN to OCPP's 0.1 step (never above what the plan allows), never negative."""
    steps = math.floor(max(value, 0.0) / LIMIT_STEP + 1e-9)
    return round(steps * LIMIT_STEP, 1)
