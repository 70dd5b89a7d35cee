"""Decode a telemetry request body (JSON array or NDJSON) into records and per-item rejections.

The fast path decodes a clean batch straight into :class:`TelemetryRecord` structs with msgspec
(about a microsecond a record); only a batch that fails it is taken apart item by item, so one bad
record costs its own batch a slower decode but never refuses its neighbours.

Taking a JSON array apart does not parse it: a small scanner (:func:`split_json_array`) skips strings
and tracks bracket depth to find the top-level items, counting them as it goes (too many is a 413
before anything is decoded), and each item is then judged alone: not UTF-8, nested deeper than
:data:`MAX_DEPTH`, not JSON, or whatever the validator finds. A broken item costs only itself; a body
whose framing breaks (an array never closed, text after it) keeps every item complete before the break.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Final

import msgspec

from microfleet.domain.telemetry import RejectionReason, TelemetryRecord
from microfleet.domain.validation import Rejection, check_item, check_record
from microfleet.errors import PayloadTooLargeError

_BATCH = msgspec.json.Decoder(list[TelemetryRecord])
_ONE = msgspec.json.Decoder(TelemetryRecord)
_ENCODER = msgspec.json.Encoder()
# A record is one object holding arrays of numbers or strings (depth 2); a little room for what the
# validator should see and name (an unknown field holding an object), and far below any recursion limit.
MAX_DEPTH: Final = 64
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


# Everything up to the next bracket, comma or unclosed quote: plain bytes and whole JSON strings (with
# their escapes), skipped at C speed so the Python loop sees only structure.
_FILLER = re.compile(rb'[^"\[\]{},]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"\[\]{},]*)*', re.DOTALL)
_OPEN, _CLOSE_ARRAY, _CLOSE_OBJECT, _COMMA, _QUOTE = frozenset(b"[{"), ord("]"), ord("}"), ord(","), ord('"')
_BLANK = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class ArrayItem:
    """One top-level item of a JSON array body, verbatim, with how deep it nests."""

    raw: bytes
    depth: int  # 0 for a scalar, 1 for a flat object or array
    broken: str | None = None  # why the array's framing ends inside this item, if it does


def json_depth(raw: bytes) -> int:
    """How deep brackets nest in ``raw`` (outside strings), counted without parsing it."""
    depth = deepest = 0
    pos, size = 0, len(raw)
    while True:
        pos = _FILLER.match(raw, pos).end()  # type: ignore[union-attr]  # the pattern matches empty
        if pos >= size or raw[pos] == _QUOTE:
            return deepest
        if raw[pos] in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif depth and raw[pos] != _COMMA:
            depth -= 1
        pos += 1


def split_json_array(body: bytes, max_items: int) -> tuple[list[ArrayItem], bytes]:
    """Split a JSON array body into its top-level items (and any text after the array), unparsed.

    Raises :class:`PayloadTooLargeError` as soon as item ``max_items + 1`` begins. An item whose framing
    is broken (the array ends inside it, unclosed) is returned with ``broken`` saying so.
    """
    items: list[ArrayItem] = []
    size = len(body)
    pos = len(body) - len(body.lstrip(_BLANK)) + 1  # just after the opening bracket
    start, depth, deepest = pos, 0, 0  # depth inside the current item
    while True:
        pos = _FILLER.match(body, pos).end()  # type: ignore[union-attr]  # the pattern matches empty
        if pos >= size or body[pos] == _QUOTE:  # the body ends inside the array (or inside a string)
            why = "the array is never closed" if pos >= size else "a string is never closed"
            raw = body[start:].strip(_BLANK)
            if raw or items:
                items.append(ArrayItem(raw, deepest, why))
            return items, b""
        char = body[pos]
        if char in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif depth == 0 and char in (_COMMA, _CLOSE_ARRAY):
            raw = body[start:pos].strip(_BLANK)
            if char == _COMMA or raw or items:  # "[]" holds no item; "[1,]" an empty one
                if len(items) >= max_items:
                    raise PayloadTooLargeError(f"more than {max_items} records in one request")
                items.append(ArrayItem(raw, deepest))
            if char == _CLOSE_ARRAY:
                return items, body[pos + 1 :].strip(_BLANK)
            start, deepest = pos + 1, 0
        elif depth and char in (_CLOSE_ARRAY, _CLOSE_OBJECT):
            depth -= 1
        # A "}" at the item's own level closes nothing: it stays in the item, which is then not JSON.
        pos += 1


def _judge_raw(
    raw: bytes, depth: int, index: int, what: str, limits: DecodeLimits
) -> TelemetryRecord | Rejection:
    """Judge one item alone, from its verbatim bytes: encoding, depth, JSON, then the validator."""
    if len(raw) <= limits.max_record_bytes:
        try:
            return check_record(_ONE.decode(raw), index, raw.decode())
        except (msgspec.MsgspecError, ValueError, RecursionError):
            pass  # the slow path below names the reason
    try:
        raw_text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(
            index,
            RejectionReason.INVALID_UTF8,
            f"{what} is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} ({exc.reason}); "
            "the quarantine keeps its text with each invalid byte written as \\xNN",
            raw.decode("utf-8", errors="backslashreplace"),
        )
    if depth > MAX_DEPTH:
        return Rejection(
            index,
            RejectionReason.TOO_DEEP,
            f"{what} nests {depth} levels deep; at most {MAX_DEPTH} are accepted",
            raw_text,
        )
    try:
        item = _lenient_json(raw_text)
    except (ValueError, RecursionError) as exc:
        return Rejection(index, RejectionReason.MALFORMED_JSON, f"{what} is not JSON: {exc}", raw_text)
    return _judge(item, index, raw_text, limits)


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


def decode_json_array(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    """Decode a JSON array of records (a single JSON object is taken as a batch of one)."""
    # A record holds no object and none of its strings may hold a brace, so a clean batch has exactly
    # one "{" a record: more than the limit, and the fast path would only decode a batch to refuse it.
    if body.count(b"{") <= limits.max_records:
        try:
            records = _BATCH.decode(body)
        except (msgspec.MsgspecError, ValueError, RecursionError):
            pass
        else:
            # The fast path still enforces the per-record rules a type cannot express; the only one
            # today (cell min ≤ max) needs both cell voltages, which most cars do not send.
            if all(r.cell_voltage_min_v is None for r in records):
                return DecodedBatch(list(enumerate(records)), [], len(records))
            return _collect([_check_decoded(r, i) for i, r in enumerate(records)])
    if not body.lstrip(_BLANK).startswith(b"["):
        return _collect([_judge_raw(body.strip(_BLANK), json_depth(body), 0, "the body", limits)])
    items, after = split_json_array(body, limits.max_records)
    if not items or items[0].broken:  # nothing complete to keep: the body is refused as one item
        return _collect([_judge_raw(body, json_depth(body), 0, "the body", limits)])
    outcomes: list[TelemetryRecord | Rejection] = []
    for index, item in enumerate(items):
        what = f"record {index}"
        if item.broken:
            outcomes.append(
                Rejection(
                    index,
                    RejectionReason.MALFORMED_JSON,
                    f"{what} is not JSON: {item.broken} (the body ends inside it)",
                    item.raw.decode("utf-8", errors="backslashreplace"),
                )
            )
        else:
            outcomes.append(_judge_raw(item.raw, item.depth, index, what, limits))
    if after:
        index = len(items)
        outcomes.append(
            Rejection(
                index,
                RejectionReason.MALFORMED_JSON,
                f"record {index} is not JSON: text after the end of the array",
                after.decode("utf-8", errors="backslashreplace"),
            )
        )
    return _collect(outcomes)


def _ndjson_lines(body: bytes, max_records: int) -> list[bytes]:
    """The non-blank lines of an NDJSON body; more than ``max_records`` is a 413, found while counting."""
    if body.count(b"\n") < max_records:  # the usual case: it cannot hold too many lines
        return [line for line in body.split(b"\n") if line.strip()]
    lines: list[bytes] = []
    for match in re.finditer(rb"[^\n]+", body):
        line = match.group()
        if line.strip():
            if len(lines) >= max_records:
                raise PayloadTooLargeError(f"more than {max_records} records in one request")
            lines.append(line)
    return lines


def decode_ndjson(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    """Decode newline-delimited JSON: one record per non-empty line, each line kept verbatim on refusal."""
    outcomes: list[TelemetryRecord | Rejection] = []
    for index, line in enumerate(_ndjson_lines(body, limits.max_records)):
        raw = line.strip(_BLANK)
        if len(raw) <= limits.max_record_bytes:
            try:
                outcomes.append(check_record(_ONE.decode(raw), index, raw.decode()))
                continue
            except (msgspec.MsgspecError, ValueError, RecursionError):
                pass
        outcomes.append(_judge_raw(raw, json_depth(raw), index, f"line {index + 1}", limits))
    return _collect(outcomes)


def decode_batch(body: bytes, content_type: str, limits: DecodeLimits) -> DecodedBatch:
    """Decode a request body by its media type: NDJSON types line by line, anything else as JSON."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in NDJSON_TYPES:
        return decode_ndjson(body, limits)
    return decode_json_array(body, limits)
