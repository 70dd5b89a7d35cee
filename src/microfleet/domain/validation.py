"""The telemetry validator: decides, per record, accepted or rejected with a reason a person can read.

Pure: the caller supplies the clock (``now_ms``) and what it knows of vehicles. Decoding JSON happens in
:mod:`microfleet.domain.telemetry_codec`; this module judges a decoded item.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from microfleet.domain.telemetry import (
    EARLIEST_TS_MS,
    MAX_FUTURE_SKEW_MS,
    RejectionReason,
    TelemetryRecord,
)


def storable_text(text: str) -> str:
    r"""``text`` as any text column holds it: valid UTF-8 without NUL.

    A lone surrogate becomes its Python escape (``\udc00``) and NUL becomes ``\x00``; text that is
    already storable (nearly all) is returned as is.
    """
    if "\x00" not in text:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused record: where it was in its batch, why, and the verbatim text kept in quarantine.

    Its texts are always storable (:func:`storable_text`): a record's lone surrogate or NUL, in its
    id, its text or a field name quoted in the detail, reaches the quarantine escaped, never as is.
    """

    index: int
    reason: RejectionReason
    detail: str
    raw_text: str
    vehicle_id: str | None = None
    ts_ms: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", storable_text(self.detail))
        object.__setattr__(self, "raw_text", storable_text(self.raw_text))
        if self.vehicle_id is not None:
            object.__setattr__(self, "vehicle_id", storable_text(self.vehicle_id))


@dataclass(frozen=True, slots=True)
class VehicleScope:
    """What the caller may write: the device's own vehicle, nothing else."""

    vehicle_id: str


_FIELD_AT = re.compile(r"`\$(?:\[\d+\])?\.?([A-Za-z_][A-Za-z0-9_]*)?")


def _field_of(message: str) -> str:
    """Name the field a msgspec message points at (``$.soc_pct`` → ``soc_pct``)."""
    at = message.rsplit(" - at ", 1)
    if len(at) == 2:
        match = _FIELD_AT.match(at[1])
        if match and match.group(1):
            return match.group(1)
    quoted = re.search(r"field `([^`]+)`", message)
    return quoted.group(1) if quoted else ""


def reason_for_type_error(message: str) -> RejectionReason:
    """Map a msgspec validation message to the rejection reason it means."""
    if "missing required field" in message:
        return RejectionReason.MISSING_FIELD
    if "unknown field" in message:
        return RejectionReason.UNKNOWN_FIELD
    field = _field_of(message)
    if field == "ts_ms" and ">=" in message:
        return RejectionReason.TIMESTAMP_TOO_OLD
    if re.search(r"Expected `[^`]+` (<=|>=|<|>) ", message) or "length" in message:
        return RejectionReason.OUT_OF_RANGE
    return RejectionReason.WRONG_TYPE


def find_non_finite(item: Any, path: str = "$") -> str | None:
    """Return the path of the first NaN or infinite number inside a decoded JSON value, if any."""
    if isinstance(item, float) and not math.isfinite(item):
        return path
    if isinstance(item, dict):
        for key, value in item.items():
            found = find_non_finite(value, f"{path}.{key}")
            if found:
                return found
    elif isinstance(item, list):
        for i, value in enumerate(item):
            found = find_non_finite(value, f"{path}[{i}]")
            if found:
                return found
    return None


def find_lone_surrogate(item: Any, path: str = "$") -> str | None:
    r"""Return the path of the first string (or key) holding a lone UTF-16 surrogate, if any.

    JSON's ``\udc00`` escape decodes to such a code point; no UTF-8 text can hold it.
    """
    if isinstance(item, str):
        return path if _SURROGATE.search(item) else None
    if isinstance(item, dict):
        for key, value in item.items():
            if _SURROGATE.search(key):
                return f"{path} (a field name)"
            found = find_lone_surrogate(value, f"{path}.{key}")
            if found:
                return found
    elif isinstance(item, list):
        for i, value in enumerate(item):
            found = find_lone_surrogate(value, f"{path}[{i}]")
            if found:
                return found
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _identity(item: Any) -> tuple[str | None, int | None]:
    if not isinstance(item, dict):
        return None, None
    vehicle_id = item.get("vehicle_id")
    ts_ms = item.get("ts_ms")
    return (
        vehicle_id if isinstance(vehicle_id, str) else None,
        ts_ms if isinstance(ts_ms, int) and not isinstance(ts_ms, bool) else None,
    )


def check_item(item: Any, index: int, raw_text: str) -> TelemetryRecord | Rejection:
    """Judge one decoded JSON item on its own: shape, types, units and physical ranges."""
    vehicle_id, ts_ms = _identity(item)

    def reject(reason: RejectionReason, detail: str) -> Rejection:
        return Rejection(index, reason, detail, raw_text, vehicle_id, ts_ms)

    if not isinstance(item, dict):
        return reject(
            RejectionReason.NOT_AN_OBJECT, f"record {index} is a JSON {type(item).__name__}, not an object"
        )
    bad_text = find_lone_surrogate(item)
    if bad_text:
        return reject(
            RejectionReason.INVALID_UTF8,
            f"record {index}: {bad_text} holds a lone UTF-16 surrogate escape, which no UTF-8 text can hold",
        )
    bad_path = find_non_finite(item)
    if bad_path:
        return reject(RejectionReason.NOT_FINITE, f"record {index}: {bad_path} is NaN or infinite")
    try:
        record = msgspec.convert(item, TelemetryRecord)
    except msgspec.ValidationError as exc:
        message = str(exc)
        return reject(reason_for_type_error(message), f"record {index}: {message}")
    return check_record(record, index, raw_text)


def check_record(record: TelemetryRecord, index: int, raw_text: str) -> TelemetryRecord | Rejection:
    """Judge the cross-field rules that a type alone cannot express.

    The batch codec skips this call when no record carries ``cell_voltage_min_v``: keep that shortcut in
    step when a rule is added here.
    """
    if (
        record.cell_voltage_min_v is not None
        and record.cell_voltage_max_v is not None
        and record.cell_voltage_min_v > record.cell_voltage_max_v
    ):
        return Rejection(
            index,
            RejectionReason.OUT_OF_RANGE,
            f"record {index}: cell_voltage_min_v {record.cell_voltage_min_v} exceeds "
            f"cell_voltage_max_v {record.cell_voltage_max_v}",
            raw_text,
            record.vehicle_id,
            record.ts_ms,
        )
    return record


def check_context(
    record: TelemetryRecord, index: int, raw_text: str, *, now_ms: int, scope: VehicleScope
) -> TelemetryRecord | Rejection:
    """Judge a well-formed record against the clock and the caller's vehicle."""

    def reject(reason: RejectionReason, detail: str) -> Rejection:
        return Rejection(index, reason, detail, raw_text, record.vehicle_id, record.ts_ms)

    if record.vehicle_id != scope.vehicle_id:
        # The same answer whether or not that id is registered: a credential cannot probe which ids exist.
        return reject(
            RejectionReason.VEHICLE_MISMATCH,
            f"record {index}: this credential writes only vehicle {scope.vehicle_id!r}, "
            f"not {record.vehicle_id!r}",
        )
    if record.ts_ms > now_ms + MAX_FUTURE_SKEW_MS:
        ahead_s = (record.ts_ms - now_ms) / 1000
        return reject(
            RejectionReason.TIMESTAMP_IN_FUTURE,
            f"record {index}: ts_ms is {ahead_s:.0f} s ahead of the server clock "
            f"(at most {MAX_FUTURE_SKEW_MS // 1000} s allowed)",
        )
    if record.ts_ms < EARLIEST_TS_MS:  # also guarded by the type; kept for records built in code
        return reject(RejectionReason.TIMESTAMP_TOO_OLD, f"record {index}: ts_ms is before 2010-01-01")
    return record
