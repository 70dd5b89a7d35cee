"""The OsmAnd / Traccar Client protocol: a phone in the car reports its position over HTTP.

Two request forms, read as Traccar's ``OsmAndProtocolDecoder`` reads them (traccar/traccar, commit
9e5c458a, ``src/main/java/org/traccar/protocol/OsmAndProtocolDecoder.java``; docs/protocols.md):

* a query string (``GET /osmand?id=KEY&lat=..&lon=..&timestamp=..``, or the same as a form body), and
* the JSON body of the background-geolocation plugin newer Traccar Client versions use
  (``{"device_id": KEY, "location": {"timestamp": ISO, "coords": {...}, "battery": {...}}}``).

:func:`decode_query` and :func:`decode_json` turn a request into an :class:`OsmAndFix`: the tracker key
it was sent with, its time, the protocol-v1 signals in v1 units, and what Traccar keeps as attributes but
protocol v1 has no field for (``extras``: the phone's own battery, GPS accuracy, cell towers...), which is
not stored. :func:`to_batch` makes it a record of the vehicle the key belongs to, judged by the v1
validator. Pure: no I/O, no clock (the caller passes the receive time for a fix without one).

Where Microfleet differs from Traccar on purpose: the ``id`` is a per-vehicle secret key Microfleet issues,
never a guessable device id; a negative speed or heading means "not measured" in both forms (Traccar: JSON
only); a fix the phone marks ``valid=false`` keeps no position; ``yyyy-MM-dd HH:mm:ss`` is UTC (Traccar:
the server's own time zone); a value Traccar would throw on is refused with a reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode

import msgspec

from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.telemetry_codec import MAX_DEPTH, DecodedBatch, json_depth
from microfleet.domain.validation import Rejection, check_item

SpeedUnit = Literal["kn", "kmh", "mps", "mph"]
# km/h per unit. Knot: 1852 m/h exactly (international nautical mile); mph: 1609.344 m/h exactly. Traccar
# rounds these (UnitsConverter: 0.539957 kn per km/h, 1.94384 kn per m/s), 3 parts per million apart.
KMH_PER_UNIT: Final[dict[SpeedUnit, float]] = {"kn": 1.852, "kmh": 1.0, "mps": 3.6, "mph": 1.609344}
KMH_PER_MPS: Final = 3.6  # JSON coords.speed is m/s whatever the query unit
# Traccar: an integer timestamp below Java's Integer.MAX_VALUE is seconds, from it up milliseconds.
SECONDS_BELOW: Final = 2_147_483_647
REDACTED_KEY: Final = "<redacted>"
KEY_NAMES: Final = ("id", "deviceid")
POSITION_SIGNALS: Final = ("lat_deg", "lon_deg", "heading_deg", "speed_kmh", "altitude_m", "gps_hdop")

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d{1,19}")


class Refused(ValueError):
    """A value Traccar's decoder would throw on: the fix is refused with this reason and detail."""

    def __init__(self, reason: RejectionReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class OsmAndFix:
    """One position report as decoded, before it is any vehicle's record."""

    key: str | None  # the tracker key sent as id / deviceid / device_id; None if the request had none
    ts_ms: int | None  # None: the phone sent no time, the receive time stands in (as in Traccar)
    signals: dict[str, Any] = field(default_factory=dict)  # protocol-v1 fields, v1 units
    extras: dict[str, Any] = field(default_factory=dict)  # Traccar's attributes v1 has no field for
    raw_text: str = ""  # the request as received, the key redacted: kept in quarantine if refused
    refused: tuple[RejectionReason, str] | None = None  # why it cannot be stored, if it cannot


def _number(name: str, value: str) -> float:
    # Java's Double.parseDouble trims blanks; Python's float() would also take "nan", "1_0" or "infinity".
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        raise Refused(RejectionReason.WRONG_TYPE, f"{name} {value!r} is not a decimal number")
    number = float(text)
    if not math.isfinite(number):
        raise Refused(RejectionReason.NOT_FINITE, f"{name} {value!r} is out of any float's range")
    return number


def _flag(value: str) -> bool:
    return value.strip().lower() == "true"  # Java Boolean.parseBoolean: anything else is false


def parse_timestamp(value: str) -> int:
    """UTC epoch ms of a query ``timestamp``: epoch s or ms, ISO-8601 with an offset, or a UTC date-time."""
    text = value.strip()
    if _INTEGER.fullmatch(text):
        number = int(text)
        return number * 1000 if number < SECONDS_BELOW else number
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                raise Refused(
                    RejectionReason.WRONG_TYPE,
                    f"timestamp {value!r} has no UTC offset (add Z or +hh:mm)",
                )
        else:
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        if isinstance(exc, Refused):
            raise
        raise Refused(
            RejectionReason.WRONG_TYPE,
            f"timestamp {value!r} is not epoch seconds or ms, ISO-8601 or 'yyyy-MM-dd HH:mm:ss'",
        ) from None
    # Whole milliseconds, floored, as Java's Instant.toEpochMilli.
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class QueryField:
    """One query parameter Traccar reads by name: where it goes and how its text becomes a value."""

    names: tuple[str, ...]
    target: str  # a protocol-v1 field, or the name of an extra (not stored)
    parse: Callable[[str, str, SpeedUnit], Any]
    stored: bool = True


def _num(name: str, value: str, _unit: SpeedUnit) -> float:
    return _number(name, value)


def _known_or_none(name: str, value: str, _unit: SpeedUnit) -> float | None:
    number = _number(name, value)
    return number if number >= 0 else None  # Android's "no bearing" and similar: not measured


def _speed(name: str, value: str, unit: SpeedUnit) -> float | None:
    number = _number(name, value)
    return number * KMH_PER_UNIT[unit] if number >= 0 else None


def _text(_name: str, value: str, _unit: SpeedUnit) -> str:
    return value


def _bool(_name: str, value: str, _unit: SpeedUnit) -> bool:
    return _flag(value)


# Traccar's named parameters (decodeQuery's switch). ``location`` (lat,lon), ``timestamp``, ``valid`` and the
# key are read apart; any other name is an attribute (a number, true/false, or text), kept in extras.
QUERY_FIELDS: Final[tuple[QueryField, ...]] = (
    QueryField(("lat",), "lat_deg", _num),
    QueryField(("lon",), "lon_deg", _num),
    QueryField(("speed",), "speed_kmh", _speed),
    QueryField(("bearing", "heading"), "heading_deg", _known_or_none),
    QueryField(("altitude",), "altitude_m", _num),
    QueryField(("hdop",), "gps_hdop", _num),
    # Traccar keeps ``ignition`` as an attribute (Position.KEY_IGNITION); it is v1's ignition_on.
    QueryField(("ignition",), "ignition_on", _bool),
    QueryField(("accuracy",), "accuracy_m", _num, stored=False),
    # The phone's own battery, not the car's traction pack: never soc_pct.
    QueryField(("batt",), "phone_battery_pct", _num, stored=False),
    QueryField(("charge",), "phone_charging", _bool, stored=False),
    QueryField(("driverUniqueId",), "driver_unique_id", _text, stored=False),
    QueryField(("notificationToken",), "notification_token", _text, stored=False),
)
_BY_NAME: Final = {name: f for f in QUERY_FIELDS for name in f.names}
_REPEATABLE: Final = frozenset({"cell", "wifi"})  # Traccar adds each to the fix's network


def _attribute(value: str) -> Any:
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    return {"true": True, "false": False}.get(value, value)


def query_text(pairs: list[tuple[str, str]]) -> str:
    """The query as kept in quarantine: as received, with the tracker key redacted."""
    return urlencode([(k, REDACTED_KEY if k in KEY_NAMES else v) for k, v in pairs], safe=",:<>")


def decode_query(query: str, *, speed_unit: SpeedUnit = "kn") -> OsmAndFix:
    """Decode a query string (``id=..&lat=..``) as Traccar does; ``speed`` is in ``speed_unit``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    key: str | None = None
    ts_ms: int | None = None
    valid = True
    signals: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    try:
        for name, value in pairs:  # later repeats win, as in Traccar
            spec = _BY_NAME.get(name)
            if name in KEY_NAMES:
                key = value
            elif name == "timestamp":
                ts_ms = parse_timestamp(value)
            elif name == "valid":
                valid = _flag(value) or value.strip() == "1"
            elif name == "location":
                parts = value.split(",")
                if len(parts) < 2:
                    raise Refused(RejectionReason.WRONG_TYPE, f"location {value!r} is not 'lat,lon'")
                signals["lat_deg"] = _number("location latitude", parts[0])
                signals["lon_deg"] = _number("location longitude", parts[1])
            elif name in _REPEATABLE:
                extras.setdefault(name, []).append(value)
            elif spec is not None:
                parsed = spec.parse(name, value, speed_unit)
                (signals if spec.stored else extras)[spec.target] = parsed
            else:
                extras[name] = _attribute(value)
    except Refused as refusal:
        return OsmAndFix(key, ts_ms, {}, extras, query_text(pairs), (refusal.reason, refusal.detail))
    if not valid:  # the phone says this fix is not a position: keep the rest of the report, not it
        extras["valid"] = False
        for name in POSITION_SIGNALS:
            signals.pop(name, None)
    signals = {k: v for k, v in signals.items() if v is not None}
    return OsmAndFix(key, ts_ms, signals, extras, query_text(pairs))


def _json_number(where: str, value: Any, *, required: bool = False) -> float | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is None:
            raise Refused(RejectionReason.MISSING_FIELD, f"{where} is missing")
        raise Refused(RejectionReason.WRONG_TYPE, f"{where} is {value!r}, not a number")
    return float(value)


def _json_object(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refused(RejectionReason.WRONG_TYPE, f"{where} is not a JSON object")
    return value


def _json_location(location: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    stamp = location.get("timestamp")
    if not isinstance(stamp, str):
        raise Refused(RejectionReason.MISSING_FIELD, "location.timestamp (ISO-8601 text) is missing")
    if "T" not in stamp:  # Traccar reads it as ISO-8601 only
        raise Refused(RejectionReason.WRONG_TYPE, f"location.timestamp {stamp!r} is not ISO-8601")
    ts_ms = parse_timestamp(stamp)
    signals: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    if "coords" in location:
        coords = _json_object("location.coords", location["coords"])
        signals["lat_deg"] = _json_number("coords.latitude", coords.get("latitude"), required=True)
        signals["lon_deg"] = _json_number("coords.longitude", coords.get("longitude"), required=True)
        speed_mps = _json_number("coords.speed", coords.get("speed"))
        heading = _json_number("coords.heading", coords.get("heading"))
        accuracy = _json_number("coords.accuracy", coords.get("accuracy"))
        # -1 is the plugin's "not measured" for speed, heading and accuracy.
        if speed_mps is not None and speed_mps >= 0:
            signals["speed_kmh"] = speed_mps * KMH_PER_MPS
        if heading is not None and heading >= 0:
            signals["heading_deg"] = heading
        if accuracy is not None and accuracy >= 0:
            extras["accuracy_m"] = accuracy
        altitude = _json_number("coords.altitude", coords.get("altitude"))
        if altitude is not None:
            signals["altitude_m"] = altitude
    for name, extra in (("event", "event"), ("is_moving", "motion"), ("mock", "mock"), ("alarm", "alarm")):
        if name in location:
            extras[extra] = location[name]
    if "odometer" in location:  # metres the phone has counted since the plugin started: not the car's
        extras["phone_odometer_m"] = location["odometer"]
    if "activity" in location:
        extras["activity"] = _json_object("location.activity", location["activity"]).get("type")
    if "battery" in location:
        battery = _json_object("location.battery", location["battery"])
        level = _json_number("battery.level", battery.get("level"))
        if level is not None and level >= 0:
            extras["phone_battery_pct"] = int(level * 100)  # truncated, as Traccar's (int) cast
        if battery.get("is_charging") is True:
            extras["phone_charging"] = True
    if "extras" in location:
        for name, value in _json_object("location.extras", location["extras"]).items():
            if name == "alarm" and "alarm" in location:
                continue
            if isinstance(value, bool | int | float | str):
                extras[name] = value
    return ts_ms, signals, extras


def decode_json(body: bytes) -> OsmAndFix:
    """Decode the JSON form (``device_id`` and one ``location``); a body that is not JSON is refused."""
    raw_text = body.decode("utf-8", "backslashreplace")
    depth = json_depth(body)
    if depth > MAX_DEPTH:  # refused before parsing: deep nesting would exhaust the parser's recursion
        detail = f"the body nests {depth} levels deep; at most {MAX_DEPTH} are read"
        return OsmAndFix(None, None, raw_text=raw_text, refused=(RejectionReason.TOO_DEEP, detail))
    try:
        root = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        return OsmAndFix(None, None, raw_text=raw_text, refused=(RejectionReason.MALFORMED_JSON, str(exc)))
    key = root.get("device_id") if isinstance(root, dict) else None
    if not isinstance(key, str):
        key = None
    else:
        raw_text = raw_text.replace(key, REDACTED_KEY) if key else raw_text
    try:
        if not isinstance(root, dict):
            raise Refused(RejectionReason.NOT_AN_OBJECT, "the body is not a JSON object")
        if "location" not in root:
            raise Refused(RejectionReason.MISSING_FIELD, "location is missing")
        ts_ms, signals, extras = _json_location(_json_object("location", root["location"]))
    except Refused as refusal:
        return OsmAndFix(key, None, raw_text=raw_text, refused=(refusal.reason, refusal.detail))
    return OsmAndFix(key, ts_ms, signals, extras, raw_text)


def to_batch(fix: OsmAndFix, vehicle_id: str, *, received_at_ms: int) -> DecodedBatch:
    """The fix as one protocol-v1 record of ``vehicle_id`` (the key's vehicle), or its refusal.

    A fix without a time is stamped ``received_at_ms``. A fix refused by the v1 validator keeps its v1
    form as quarantine text, so ``quarantine replay`` can store it after a fix; one this decoder refused
    keeps the request (key redacted).
    """
    ts_ms = fix.ts_ms if fix.ts_ms is not None else received_at_ms
    if fix.refused is not None:
        reason, detail = fix.refused
        rejection = Rejection(0, reason, f"osmand: {detail}", fix.raw_text, vehicle_id, fix.ts_ms)
        return DecodedBatch([], [rejection], 1)
    item = {"vehicle_id": vehicle_id, "ts_ms": ts_ms, **fix.signals}
    outcome = check_item(item, 0, msgspec.json.encode(item).decode())
    if isinstance(outcome, Rejection):
        return DecodedBatch([], [outcome], 1)
    return DecodedBatch([(0, outcome)], [], 1)
