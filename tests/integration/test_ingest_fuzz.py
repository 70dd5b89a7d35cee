"""Fuzzing ingest through the real API, on both stores: valid records mixed with arbitrary bytes, arbitrary
JSON values and poison items (deep nesting, lone surrogates, invalid UTF-8). Every valid record is stored
exactly once, every bad item is quarantined exactly once (one row per item and reason, however often it
is sent), the answer accounts for every item, and no answer is a 5xx (issue 10)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.services.quarantine import QuarantineEntry
from tests.integration.conftest import NOW_MS
from tests.integration.world import World, bearer, build_world

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
WINDOW_MS = 10_000_000  # one example's records lie in their own window, so examples never meet
_windows = itertools.count()


@pytest.fixture
def world(services: Services) -> World:
    return build_world(services)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Bad:
    raw: bytes
    reason: str | None  # the reason it must get, where the kind of poison fixes it


VALID = None  # an item slot filled with a fresh valid record
STRUCTURE = frozenset(b'"[]{},\n')

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
# Bytes that cannot change an array's framing or an NDJSON line's end: no quote, bracket, comma or newline.
plain_bytes = st.binary(min_size=1, max_size=24).map(lambda b: bytes(c for c in b if c not in STRUCTURE))
invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc"])
record_prefix = b'{"vehicle_id": "car-a", "ts_ms": 1763990000000, '

bad_items = st.one_of(
    json_values.map(lambda v: Bad(json.dumps(v).encode(), None)),
    plain_bytes.filter(lambda b: b.strip(b" \t\r\n")).map(lambda b: Bad(b, None)),
    st.integers(65, 3000).map(lambda n: Bad(b"[" * n + b"]" * n, "too_deep")),
    st.integers(64, 3000).map(
        lambda n: Bad(record_prefix + b'"a": ' + b"[" * n + b"]" * n + b"}", "too_deep")
    ),
    st.sampled_from(
        [
            record_prefix.replace(b"car-a", b"car-a\\ud800") + b'"gear": "D"}',
            record_prefix + b'"\\udc00": 1}',
            record_prefix + b'"gear": "D\\udfff"}',
        ]
    ).map(lambda raw: Bad(raw, "invalid_utf8")),
    invalid_utf8.map(lambda b: Bad(record_prefix + b'"gear": "D' + b + b'"}', "invalid_utf8")),
)
batches = st.lists(st.one_of(st.just(VALID), bad_items), min_size=1, max_size=30)


def _new_quarantine(services: Services, after_id: int) -> list[QuarantineEntry]:
    return list(services.quarantine.list(vehicle_ids=None, after_id=after_id, limit=100_000))


@pytest.fixture
def refused_so_far() -> set[tuple[str, bytes]]:
    """(reason, item) pairs the store has quarantined in earlier examples of this test: the quarantine keeps
    one row per refused item and reason, however often it is sent again."""
    return set()


def _no_row_twice(services: Services) -> None:
    rows = services.quarantine.list(vehicle_ids=None, limit=100_000)
    keys = [(q.credential_vehicle_id, q.reason, q.raw_text) for q in rows]
    assert len(keys) == len(set(keys))


def _last_quarantine_id(services: Services) -> int:
    entries = services.quarantine.list(vehicle_ids=None, limit=100_000)
    return entries[-1].quarantine_id if entries else 0


@pytest.mark.parametrize("framing", ["array", "ndjson"])
@FUZZ
@given(slots=batches)
def test_valid_records_are_stored_once_and_bad_items_quarantined_once(
    client: TestClient,
    world: World,
    services: Services,
    refused_so_far: set[tuple[str, bytes]],
    framing: str,
    slots: list[Bad | None],
) -> None:
    start_ms = NOW_MS - 30 * 86_400_000 + next(_windows) * WINDOW_MS
    raws: list[bytes] = []
    valid_ts: list[int] = []
    for i, slot in enumerate(slots):
        if slot is VALID:
            valid_ts.append(start_ms + i * 1000)
            raws.append(json.dumps({"vehicle_id": "car-a", "ts_ms": valid_ts[-1], "soc_pct": 50.0}).encode())
        else:
            raws.append(slot.raw)
    if framing == "array":
        body, content_type = b"[" + b",".join(raws) + b"]", "application/json"
    else:
        body, content_type = b"\n".join(raws), "application/x-ndjson"
    stored_before = services.telemetry.count("car-a")
    last_id = _last_quarantine_id(services)

    response = client.post(
        "/api/v1/telemetry",
        content=body,
        headers={**bearer(world.tokens["device_a"]), "content-type": content_type},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(slots)))
    for slot, result in zip(slots, results, strict=True):
        if slot is VALID:
            assert result["status"] == "accepted", result
        else:
            assert result["status"] == "rejected", (slot, result)
            assert slot.reason in (None, result["reason"]), (slot, result)
    n_bad = len(slots) - len(valid_ts)
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (len(valid_ts), 0, n_bad)
    assert services.telemetry.count("car-a") == stored_before + len(valid_ts)
    assert [r.ts_ms for r in services.telemetry.records("car-a", start_ms, start_ms + WINDOW_MS)] == valid_ts
    refused = {
        (result["reason"], slot.raw) for slot, result in zip(slots, results, strict=True) if slot is not VALID
    }
    quarantined = _new_quarantine(services, last_id)
    assert sorted(q.reason for q in quarantined) == sorted(reason for reason, _ in refused - refused_so_far)
    refused_so_far |= refused
    _no_row_twice(services)
    for entry in quarantined:
        assert "\x00" not in entry.raw_text + entry.detail


# Arbitrary bodies: framing may break anywhere, so only the accounting is certain.
spliced = st.lists(
    st.one_of(st.just(VALID), st.binary(max_size=16), bad_items.map(lambda b: b.raw)), max_size=12
)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
@FUZZ
@given(
    parts=spliced, separator=st.sampled_from([b",", b"\n", b""]), opener=st.sampled_from([b"[", b"", b" ["])
)
def test_an_arbitrary_body_is_answered_and_accounted_for(
    client: TestClient,
    world: World,
    services: Services,
    content_type: str,
    parts: list[bytes | None],
    separator: bytes,
    opener: bytes,
) -> None:
    start_ms = NOW_MS - 30 * 86_400_000 + next(_windows) * WINDOW_MS
    pieces = [
        json.dumps({"vehicle_id": "car-a", "ts_ms": start_ms + i * 1000}).encode() if part is VALID else part
        for i, part in enumerate(parts)
    ]
    body = opener + separator.join(pieces)
    stored_before = services.telemetry.count("car-a")
    last_id = _last_quarantine_id(services)

    response = client.post(
        "/api/v1/telemetry",
        content=body,
        headers={**bearer(world.tokens["device_a"]), "content-type": content_type},
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    results = answer["results"]
    assert [r["index"] for r in results] == list(range(len(results)))
    statuses = [r["status"] for r in results]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == tuple(
        statuses.count(s) for s in ("accepted", "duplicate", "rejected")
    )
    assert services.telemetry.count("car-a") == stored_before + answer["accepted"]
    # each refused item once: what earlier examples already quarantined gets no second row
    assert len(_new_quarantine(services, last_id)) <= answer["rejected"]
    _no_row_twice(services)
