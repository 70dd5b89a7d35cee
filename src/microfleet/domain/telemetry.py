"""Telemetry protocol v1: one sample of one vehicle, its signals, and why a sample is refused.

The protocol is documented for people in ``docs/telemetry.md``; this module is its executable form.
:class:`TelemetryRecord` is the single definition of every signal with its unit (in its name), type
and physical range; :data:`SIGNALS` is derived from it, and the validator, the store's columns and
the documentation are derived from that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

PROTOCOL_VERSION: Final = 1

# 2010-01-01T00:00:00Z: no small EV we serve reported telemetry before this (issue 3).
EARLIEST_TS_MS: Final = 1_262_304_000_000
# Clock skew tolerated on a device's future timestamps (issue 3: 5 minutes).
MAX_FUTURE_SKEW_MS: Final = 5 * 60 * 1000
MAX_DTC_CODES: Final = 64
TYRE_POSITIONS: Final = ("fl", "fr", "rl", "rr")
# A lifetime energy counter: 10 GWh is ~100,000 full cycles of a 100 kWh pack, beyond any car's life.
MAX_ENERGY_COUNTER_KWH: Final = 10_000_000

Gear = Literal["P", "R", "N", "D"]
VEHICLE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
VehicleId = Annotated[
    str,
    Meta(
        pattern=VEHICLE_ID_PATTERN,
        description="vehicle id: 1-64 letters, digits, '_', '.', ':' or '-'",
    ),
]
DtcCode = Annotated[str, Meta(pattern=r"^[A-Z0-9]{4,8}$")]


class RejectionReason(enum.StrEnum):
    """Why a telemetry record was refused; stored with every quarantined record."""

    MALFORMED_JSON = "malformed_json"
    INVALID_UTF8 = "invalid_utf8"
    TOO_DEEP = "too_deep"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_VEHICLE = "unknown_vehicle"
    VEHICLE_MISMATCH = "vehicle_mismatch"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    NOT_FINITE = "not_finite"
    OVERSIZE_PAYLOAD = "oversize_payload"
    CONFLICTING_DUPLICATE = "conflicting_duplicate"
    IMPLAUSIBLE_SEQUENCE = "implausible_sequence"
    UNDECODABLE_MESSAGE = "undecodable_message"


# Ranges are the physical limits of a small city EV and its sensors, wide enough for any healthy car:
# a reading outside them is a sensor or transport fault, never a real state. ``title`` is the group.
class TelemetryRecord(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, frozen=True):
    """One sample of one vehicle at one instant (protocol v1). Every signal is optional."""

    vehicle_id: VehicleId
    ts_ms: Annotated[int, Meta(ge=EARLIEST_TS_MS, description="sample time, UTC epoch milliseconds")]
    lat_deg: Annotated[float, Meta(ge=-90, le=90, title="position", description="WGS84 latitude")] | None = (
        None
    )
    lon_deg: (
        Annotated[float, Meta(ge=-180, le=180, title="position", description="WGS84 longitude")] | None
    ) = None
    heading_deg: (
        Annotated[
            float,
            Meta(ge=0, le=360, title="position", description="course over ground, 0 = north, clockwise"),
        ]
        | None
    ) = None
    gps_hdop: (
        Annotated[
            float, Meta(ge=0, le=100, title="position", description="GPS horizontal dilution of precision")
        ]
        | None
    ) = None
    altitude_m: (
        Annotated[
            float, Meta(ge=-500, le=9000, title="position", description="altitude above mean sea level")
        ]
        | None
    ) = None
    speed_kmh: Annotated[float, Meta(ge=0, le=250, title="motion", description="vehicle speed")] | None = None
    odometer_km: Annotated[float, Meta(ge=0, le=2_000_000, title="motion", description="odometer")] | None = (
        None
    )
    gear: Annotated[Gear, Meta(title="motion", description="selected gear: P, R, N or D")] | None = None
    ignition_on: Annotated[bool, Meta(title="motion", description="ignition / ready state")] | None = None
    soc_pct: (
        Annotated[
            float, Meta(ge=0, le=100, title="battery", description="state of charge as the BMS reports it")
        ]
        | None
    ) = None
    pack_voltage_v: (
        Annotated[float, Meta(ge=0, le=1000, title="battery", description="traction pack terminal voltage")]
        | None
    ) = None
    pack_current_a: (
        Annotated[
            float,
            Meta(
                ge=-1000, le=1000, title="battery", description="traction pack current, positive = discharge"
            ),
        ]
        | None
    ) = None
    pack_temp_c: (
        Annotated[float, Meta(ge=-60, le=120, title="battery", description="traction pack temperature")]
        | None
    ) = None
    cell_voltage_min_v: (
        Annotated[float, Meta(ge=0, le=5, title="battery", description="lowest cell voltage")] | None
    ) = None
    cell_voltage_max_v: (
        Annotated[float, Meta(ge=0, le=5, title="battery", description="highest cell voltage")] | None
    ) = None
    bms_soh_pct: (
        Annotated[
            float, Meta(ge=0, le=120, title="battery", description="state of health as the BMS reports it")
        ]
        | None
    ) = None
    charger_connected: (
        Annotated[bool, Meta(title="charging", description="a charging cable is plugged in")] | None
    ) = None
    charger_power_kw: (
        Annotated[float, Meta(ge=0, le=400, title="charging", description="power drawn from the charger")]
        | None
    ) = None
    charger_ac_voltage_v: (
        Annotated[
            float,
            Meta(ge=0, le=500, title="charging", description="AC supply voltage at the on-board charger"),
        ]
        | None
    ) = None
    locked: Annotated[bool, Meta(title="body", description="all doors locked")] | None = None
    doors_open: Annotated[bool, Meta(title="body", description="any door, boot or bonnet open")] | None = None
    cabin_temp_c: (
        Annotated[float, Meta(ge=-60, le=90, title="body", description="cabin air temperature")] | None
    ) = None
    ambient_temp_c: (
        Annotated[float, Meta(ge=-60, le=70, title="body", description="outside air temperature")] | None
    ) = None
    hvac_on: Annotated[bool, Meta(title="body", description="heating or air conditioning running")] | None = (
        None
    )
    hvac_power_kw: (
        Annotated[
            float,
            Meta(ge=0, le=20, title="body", description="electric power of heating and air conditioning"),
        ]
        | None
    ) = None
    tyre_pressure_kpa: (
        Annotated[
            list[Annotated[float, Meta(ge=0, le=1000)]],
            Meta(
                min_length=4,
                max_length=4,
                title="tyres",
                description="four tyre pressures: front left, front right, rear left, rear right",
            ),
        ]
        | None
    ) = None
    aux_battery_v: (
        Annotated[float, Meta(ge=0, le=30, title="12v", description="12 V auxiliary battery voltage")] | None
    ) = None
    dtc_codes: (
        Annotated[
            list[DtcCode],
            Meta(
                max_length=MAX_DTC_CODES,
                title="diagnostics",
                description="active diagnostic trouble codes (e.g. P0A80)",
            ),
        ]
        | None
    ) = None
    # Appended after dtc_codes, not beside the battery group: a minor v1 addition keeps every existing
    # field's position, so stored rows, record digests and column order stay as they were.
    energy_used_kwh: (
        Annotated[
            float,
            Meta(
                ge=0,
                le=MAX_ENERGY_COUNTER_KWH,
                title="battery",
                description="cumulative energy drawn from the pack, counted by the BMS "
                "(OVMS v3 v.b.energy.used.total)",
            ),
        ]
        | None
    ) = None
    energy_recovered_kwh: (
        Annotated[
            float,
            Meta(
                ge=0,
                le=MAX_ENERGY_COUNTER_KWH,
                title="battery",
                description="cumulative energy returned to the pack by regeneration and charging, counted "
                "by the BMS (OVMS v3 v.b.energy.recd.total)",
            ),
        ]
        | None
    ) = None

    @property
    def key(self) -> tuple[str, int]:
        """The identity of a sample in the store: ``(vehicle_id, ts_ms)``."""
        return (self.vehicle_id, self.ts_ms)


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """One optional signal of protocol v1: name (unit in the name), kind, group and physical range."""

    name: str
    kind: Literal["float", "bool", "gear", "tyres", "codes"]
    group: str
    description: str
    min_value: float | None
    max_value: float | None


def _signal_specs() -> tuple[SignalSpec, ...]:
    info = msgspec.inspect.type_info(TelemetryRecord)
    assert isinstance(info, msgspec.inspect.StructType)
    specs = []
    for field in info.fields[2:]:
        inner = field.type.types[0] if isinstance(field.type, msgspec.inspect.UnionType) else field.type
        group, description = "", ""
        lo: float | None = None
        hi: float | None = None
        kind: Literal["float", "bool", "gear", "tyres", "codes"]
        if isinstance(inner, msgspec.inspect.Metadata):
            group = (inner.extra_json_schema or {}).get("title", "")
            raw = inner.type
        else:
            raw = inner
        if isinstance(raw, msgspec.inspect.FloatType):
            kind, lo, hi = "float", raw.ge, raw.le
        elif isinstance(raw, msgspec.inspect.BoolType):
            kind = "bool"
        elif isinstance(raw, msgspec.inspect.LiteralType):
            kind = "gear"
        elif isinstance(raw, msgspec.inspect.ListType) and isinstance(raw.item_type, msgspec.inspect.StrType):
            kind = "codes"
        else:
            kind = "tyres"
            item = raw.item_type  # type: ignore[attr-defined]
            lo, hi = item.ge, item.le
        if isinstance(inner, msgspec.inspect.Metadata):
            description = (inner.extra_json_schema or {}).get("description", "")
        specs.append(SignalSpec(field.name, kind, group, description, lo, hi))
    return tuple(specs)


SIGNALS: Final[tuple[SignalSpec, ...]] = _signal_specs()
SIGNAL_NAMES: Final[tuple[str, ...]] = tuple(s.name for s in SIGNALS)
