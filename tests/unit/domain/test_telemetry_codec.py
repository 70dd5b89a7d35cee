"""The batch codec: JSON arrays and NDJSON, the fast path agrees with the item-by-item path."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.telemetry import RejectionReason
from microfleet.domain.telemetry_codec import (
    DecodeLimits,
    decode_batch,
    decode_json_array,
    encode_record,
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


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    for content_type in ("application/json", "application/x-ndjson"):
        decoded = decode_batch(body, content_type, LIMITS)
        assert all(r.reason in RejectionReason for r in decoded.rejections)
