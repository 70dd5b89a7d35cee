"""Decode a telemetry request body (JSON array or NDJSON) into records and per-item rejections.

The fast path decodes a clean batch straight into :class:`TelemetryRecord` structs with msgspec
(about a microsecond a record); only a batch that fails it is taken apart item by item, so one bad
record costs its own batch a slower decode but never refuses its neighbours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from microfleet.domain.telemetry import RejectionReason, TelemetryRecord
from microfleet.domain.validation import Rejection, check_item, check_record
from microfleet.errors import PayloadTooLargeError

_BATCH = msgspec.json.Decoder(list[TelemetryRecord])
_ONE = msgspec.json.Decoder(TelemetryRecord)
_ENCODER = msgspec.json.Encoder()
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """How much one request may carry."""

    max_records: int
    max_record_bytes: int


@dataclass(slots=True)
class DecodedBatch:
    """Records that are well-formed on their own, in batch order, and the items refused."""

    records: list[tuple[int, TelemetryRecord]]
    rejections: list[Rejection]
    item_count: int


def encode_record(record: TelemetryRecord) -> bytes:
    """Canonical JSON of a record (fields in protocol order, absent signals omitted)."""
    return _ENCODER.encode(record)


def _lenient_json(text: str) -> Any:
    # The standard library accepts NaN and Infinity, so such records get the precise NOT_FINITE reason.
    return json.loads(text)


def _judge(item: Any, index: int, raw_text: str, limits: DecodeLimits) -> TelemetryRecord | Rejection:
    if len(raw_text) > limits.max_record_bytes:
        vehicle_id = item.get("vehicle_id") if isinstance(item, dict) else None
        return Rejection(
            index,
            RejectionReason.OVERSIZE_PAYLOAD,
            f"record {index} is {len(raw_text)} bytes; at most {limits.max_record_bytes} are accepted",
            raw_text,
            vehicle_id if isinstance(vehicle_id, str) else None,
        )
    return check_item(item, index, raw_text)


def _collect(outcomes: list[TelemetryRecord | Rejection]) -> DecodedBatch:
    batch = DecodedBatch([], [], len(outcomes))
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Rejection):
            batch.rejections.append(outcome)
        else:
            batch.records.append((index, outcome))
    return batch


def _check_decoded(record: TelemetryRecord, index: int) -> TelemetryRecord | Rejection:
    outcome = check_record(record, index, "")
    if isinstance(outcome, Rejection):  # rare: keep the record's text for quarantine
        return replace(outcome, raw_text=encode_record(record).decode())
    return outcome


def _whole_body_rejection(body: bytes, detail: str) -> DecodedBatch:
    raw_text = body.decode("utf-8", errors="replace")
    return DecodedBatch([], [Rejection(0, RejectionReason.MALFORMED_JSON, detail, raw_text)], 1)


def decode_json_array(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    """Decode a JSON array of records (a single JSON object is taken as a batch of one)."""
    try:
        records = _BATCH.decode(body)
    except msgspec.MsgspecError:
        pass
    else:
        if len(records) > limits.max_records:
            raise PayloadTooLargeError(f"{len(records)} records in one request; at most {limits.max_records}")
        # The fast path still enforces the per-record rules a type cannot express; the only one today
        # (cell min ≤ max) needs both cell voltages, which most cars do not send.
        if all(r.cell_voltage_min_v is None for r in records):
            return DecodedBatch(list(enumerate(records)), [], len(records))
        return _collect([_check_decoded(r, i) for i, r in enumerate(records)])
    try:
        parsed = _lenient_json(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return _whole_body_rejection(body, f"the body is not valid UTF-8 JSON: {exc}")
    items = parsed if isinstance(parsed, list) else [parsed]
    if len(items) > limits.max_records:
        raise PayloadTooLargeError(f"{len(items)} records in one request; at most {limits.max_records}")
    outcomes: list[TelemetryRecord | Rejection] = []
    for index, item in enumerate(items):
        raw_text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        outcomes.append(_judge(item, index, raw_text, limits))
    return _collect(outcomes)


def decode_ndjson(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    """Decode newline-delimited JSON: one record per non-empty line, each line kept verbatim on refusal."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > limits.max_records:
        raise PayloadTooLargeError(f"{len(lines)} records in one request; at most {limits.max_records}")
    outcomes: list[TelemetryRecord | Rejection] = []
    for index, line in enumerate(lines):
        raw_text = line.decode("utf-8", errors="replace").strip()
        if len(line) <= limits.max_record_bytes:
            try:
                outcomes.append(check_record(_ONE.decode(line), index, raw_text))
                continue
            except msgspec.MsgspecError:
                pass
        try:
            item = _lenient_json(raw_text)
        except ValueError as exc:
            outcomes.append(
                Rejection(
                    index, RejectionReason.MALFORMED_JSON, f"line {index + 1} is not JSON: {exc}", raw_text
                )
            )
            continue
        outcomes.append(_judge(item, index, raw_text, limits))
    return _collect(outcomes)


def decode_batch(body: bytes, content_type: str, limits: DecodeLimits) -> DecodedBatch:
    """Decode a request body by its media type: NDJSON types line by line, anything else as JSON."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in NDJSON_TYPES:
        return decode_ndjson(body, limits)
    return decode_json_array(body, limits)
