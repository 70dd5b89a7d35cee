"""The batch codec: JSON arrays and NDJSON, the fast path agrees with the item-by-item path."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from microfleet.domain import telemetry_codec
from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.telemetry_codec import (
    MAX_DEPTH,
    DecodeLimits,
    decode_batch,
    decode_json_array,
    encode_record,
    json_depth,
    split_json_array,
)
from microfleet.errors import PayloadTooLargeError

LIMITS = DecodeLimits(max_records=100, max_record_bytes=2048)
TS = 1_764_000_000_000

records = st.lists(
    st.fixed_dictionaries(
        {"vehicle_id": st.just("car-1"), "ts_ms": st.integers(TS, TS + 10**6)},
        optional={
            "soc_pct": st.floats(-10, 110, allow_nan=False),
            "speed_kmh": st.floats(0, 300, allow_nan=False),
            "gear": st.sampled_from(["P", "D", "X"]),
            "locked": st.booleans(),
        },
    ),
    max_size=30,
)


@given(records)
def test_fast_path_and_slow_path_agree(items: list[dict[str, object]]) -> None:
    body = json.dumps(items).encode()
    fast = decode_json_array(body, LIMITS)
    # Appending one bad item forces the item-by-item path for the same records.
    slow = decode_json_array(json.dumps([*items, "bad"]).encode(), LIMITS)
    assert fast.records == slow.records
    assert [r.index for r in fast.rejections] == [r.index for r in slow.rejections if r.index < len(items)]
    assert len(fast.records) + len(fast.rejections) == len(items)


@given(records)
def test_ndjson_and_json_array_decode_the_same_records(items: list[dict[str, object]]) -> None:
    as_array = decode_batch(json.dumps(items).encode(), "application/json", LIMITS)
    as_lines = decode_batch("\n".join(json.dumps(i) for i in items).encode(), "application/x-ndjson", LIMITS)
    assert as_array.records == as_lines.records


def test_a_single_object_is_a_batch_of_one() -> None:
    decoded = decode_batch(b'{"vehicle_id": "car-1", "ts_ms": 1764000000000}', "application/json", LIMITS)
    assert [r.ts_ms for _, r in decoded.records] == [TS]


def test_encoding_is_canonical_and_round_trips() -> None:
    decoded = decode_batch(b'[{"soc_pct": 50, "ts_ms": 1764000000000, "vehicle_id": "car-1"}]', "", LIMITS)
    record = decoded.records[0][1]
    assert encode_record(record) == b'{"vehicle_id":"car-1","ts_ms":1764000000000,"soc_pct":50.0}'


def test_oversize_records_and_batches() -> None:
    big = {"vehicle_id": "car-1", "ts_ms": TS, "dtc_codes": ["P0A80"] * 64, "pad": "x" * 3000}
    decoded = decode_batch(json.dumps([big]).encode(), "application/json", LIMITS)
    assert decoded.rejections[0].reason is RejectionReason.OVERSIZE_PAYLOAD
    with pytest.raises(PayloadTooLargeError):
        decode_batch(
            json.dumps([{"vehicle_id": "car-1", "ts_ms": TS}] * 101).encode(), "application/json", LIMITS
        )


def _item_reason(raw: bytes) -> RejectionReason | None:
    """The reason one item alone must get, decided here without the codec; None where it may be more.

    Not UTF-8, then not JSON, then not an object; an item that might nest too deep, or that is an
    object (the validator's to judge), is left open.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return RejectionReason.INVALID_UTF8
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        return None
    try:
        item = json.loads(text)
    except ValueError:
        return RejectionReason.MALFORMED_JSON
    return None if isinstance(item, dict) else RejectionReason.NOT_AN_OBJECT


@given(st.binary(max_size=200))
@example(b"\xff\xfe")
@example(b"[1, 2")
@example(b'42\n{"a": 1\n\xc3\n\n[]')
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    for content_type in ("application/json", "application/x-ndjson"):
        decoded = decode_batch(body, content_type, LIMITS)
        indices = sorted([i for i, _ in decoded.records] + [r.index for r in decoded.rejections])
        assert indices == list(range(decoded.item_count))  # every item is either kept or refused, once
        if content_type == "application/x-ndjson":
            items = [line.strip(b" \t\r\n") for line in body.split(b"\n") if line.strip()]
        elif not body.lstrip(b" \t\r\n").startswith(b"["):
            items = [body.strip(b" \t\r\n")]  # not an array: the body is one item
        else:
            continue  # an array's items are split by the scanner, checked by the tests above
        assert decoded.item_count == len(items)
        for rejection in decoded.rejections:
            expected = _item_reason(items[rejection.index])
            if expected is not None:
                assert rejection.reason is expected, (items[rejection.index], rejection)
        for index, _ in decoded.records:
            assert _item_reason(items[index]) is None


# --- Poison items cost only themselves (issue 10) ---

GOOD = b'{"vehicle_id": "car-1", "ts_ms": 1764000000000}'
POISON = {
    b"[" * 10_000 + b"]" * 10_000: RejectionReason.TOO_DEEP,
    b'{"vehicle_id": "car-1", "ts_ms": 1764000001000, "a": ' + b"[" * 70 + b"]" * 70 + b"}": (
        RejectionReason.TOO_DEEP
    ),
    b'{"vehicle_id": "car-1", "ts_ms": 1764000001000, "gear": "\\udc00"}': RejectionReason.INVALID_UTF8,
    b'{"vehicle_id": "car-1", "ts_ms": 1764000001000, "gear": "\xff"}': RejectionReason.INVALID_UTF8,
    b'{"vehicle_id": "car-1", "ts_ms": 1764000001000, "gear": D}': RejectionReason.MALFORMED_JSON,
}


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
@pytest.mark.parametrize("poison", list(POISON), ids=[f"poison{i}" for i in range(len(POISON))])
def test_a_poison_item_is_refused_alone_with_its_reason(poison: bytes, content_type: str) -> None:
    if content_type == "application/json":
        body = b"[" + GOOD + b"," + poison + b"," + GOOD.replace(b"000}", b"002}") + b"]"
    else:
        body = GOOD + b"\n" + poison + b"\n" + GOOD.replace(b"000}", b"002}")
    decoded = decode_batch(body, content_type, LIMITS)
    assert [i for i, _ in decoded.records] == [0, 2]
    [rejection] = decoded.rejections
    assert (rejection.index, rejection.reason) == (1, POISON[poison])
    rejection.raw_text.encode("utf-8")


def test_a_record_at_the_depth_limit_is_judged_and_one_beyond_is_too_deep() -> None:
    def nested(levels: int) -> bytes:  # the record itself is level 1
        inner = b"[" * (levels - 1) + b"]" * (levels - 1)
        return b'[{"vehicle_id": "car-1", "ts_ms": 1764000000000, "a": ' + inner + b"}]"

    at_limit = decode_json_array(nested(MAX_DEPTH), LIMITS).rejections[0]
    assert at_limit.reason is RejectionReason.UNKNOWN_FIELD
    beyond = decode_json_array(nested(MAX_DEPTH + 1), LIMITS).rejections[0]
    assert beyond.reason is RejectionReason.TOO_DEEP and beyond.vehicle_id is None


def test_invalid_utf8_is_kept_with_backslash_escapes() -> None:
    decoded = decode_json_array(b'[{"gear": "\xffD"}]', LIMITS)
    [rejection] = decoded.rejections
    assert rejection.raw_text == '{"gear": "\\xffD"}'
    assert "byte 0xff at offset 10" in rejection.detail


def test_a_broken_array_keeps_every_item_complete_before_the_break() -> None:
    truncated = decode_json_array(b"[" + GOOD + b', {"vehicle_id": "car-1", "ts', LIMITS)
    assert [i for i, _ in truncated.records] == [0]
    assert [(r.index, r.reason, r.raw_text) for r in truncated.rejections] == [
        (1, RejectionReason.MALFORMED_JSON, '{"vehicle_id": "car-1", "ts')
    ]
    unclosed_string = decode_json_array(b"[" + GOOD + b', "abc, ' + GOOD + b"]", LIMITS)
    assert [i for i, _ in unclosed_string.records] == [0] and unclosed_string.item_count == 2
    # An object never closed swallows the rest of the array: only what came before it is certain.
    unclosed_object = decode_json_array(b"[" + GOOD + b', {"gear": "D", ' + GOOD + b"]", LIMITS)
    assert [i for i, _ in unclosed_object.records] == [0] and unclosed_object.item_count == 2
    trailing = decode_json_array(b"[" + GOOD + b"] tail", LIMITS)
    assert [i for i, _ in trailing.records] == [0]
    assert [(r.index, r.raw_text) for r in trailing.rejections] == [(1, "tail")]
    # A body with no complete item is refused as one item, verbatim.
    nothing = decode_json_array(b'[{"vehicle_id": "car-1", "ts_ms": 17', LIMITS)
    assert [(r.index, r.reason, r.raw_text) for r in nothing.rejections] == [
        (0, RejectionReason.MALFORMED_JSON, '[{"vehicle_id": "car-1", "ts_ms": 17')
    ]


def test_empty_arrays_and_empty_items() -> None:
    assert decode_json_array(b" [ ] ", LIMITS).item_count == 0
    holes = decode_json_array(b"[" + GOOD + b",," + GOOD.replace(b"000}", b"002}") + b",]", LIMITS)
    assert [i for i, _ in holes.records] == [0, 2]
    assert [(r.index, r.reason) for r in holes.rejections] == [
        (1, RejectionReason.MALFORMED_JSON),
        (3, RejectionReason.MALFORMED_JSON),
    ]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        # Items past the limit are never read: junk after them does not turn the 413 into a 200.
        (b"[" + b"1," * 1_000_000 + b'"never closed', "application/json"),
        (b"[" + b"{}," * 1_000_000 + b"{", "application/json"),
        (b"1\n" * 1_000_000 + b"\xff", "application/x-ndjson"),
    ],
    ids=["scalars", "objects", "ndjson"],
)
def test_too_many_items_are_refused_by_count_while_splitting(body: bytes, content_type: str) -> None:
    with pytest.raises(PayloadTooLargeError):
        decode_batch(body, content_type, LIMITS)


def test_a_clean_batch_is_decoded_in_one_msgspec_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_split(*_: object) -> object:
        raise AssertionError("a clean batch must not be taken apart")

    monkeypatch.setattr(telemetry_codec, "split_json_array", no_split)
    body = json.dumps([{"vehicle_id": "car-1", "ts_ms": TS + i} for i in range(100)]).encode()
    assert len(decode_json_array(body, LIMITS).records) == 100


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=8), st.sampled_from([(",", ":"), (" , ", " : ")]))
def test_the_scanner_splits_an_array_as_json_does(values: list[object], separators: tuple[str, str]) -> None:
    body = json.dumps(values, separators=separators, ensure_ascii=False).encode()
    items, after = split_json_array(body, 100)
    assert after == b"" and all(item.broken is None for item in items)
    assert [json.loads(item.raw) for item in items] == values
    assert [item.depth for item in items] == [_depth(v) for v in values]
    assert [json_depth(item.raw) for item in items] == [_depth(v) for v in values]
