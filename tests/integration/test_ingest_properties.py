"""Property tests of the ingest path against real stores: whatever arrives, nothing accepted is lost
or double-counted, and every record sent is accounted for."""

from __future__ import annotations

import itertools
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microfleet.bootstrap import Services
from tests.integration.conftest import NOW_MS

_vehicle_numbers = itertools.count()

signals = st.fixed_dictionaries(
    {},
    optional={
        "soc_pct": st.floats(-5, 105, allow_nan=False),
        "speed_kmh": st.floats(0, 260, allow_nan=False),
        "locked": st.booleans(),
        "gear": st.sampled_from(["P", "D", "R", "N", "?"]),
    },
)
junk = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3), st.none())


@st.composite
def batches(draw: st.DrawFn) -> list[object]:
    """A device's batches: real records, re-sends, conflicting re-sends, junk, shuffled."""
    n = draw(st.integers(1, 60))
    offsets = draw(st.lists(st.integers(-3_600_000, 400_000), min_size=n, max_size=n))
    items: list[object] = [{"vehicle_id": "VEHICLE", "ts_ms": NOW_MS + o, **draw(signals)} for o in offsets]
    items += draw(st.lists(st.sampled_from(items), max_size=20))  # identical re-sends
    items += [
        dict(item, soc_pct=draw(st.floats(0, 100)))
        for item in draw(st.lists(st.sampled_from(items), max_size=5))
    ]  # conflicting re-sends
    items += draw(st.lists(junk, max_size=5))
    random.Random(draw(st.integers())).shuffle(items)
    return items


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=batches(), chunk=st.integers(1, 40))
def test_every_record_is_accounted_for_and_stored_once(
    services: Services, data: list[object], chunk: int
) -> None:
    vehicle_id = f"prop-{next(_vehicle_numbers)}"
    services.admin.add_vehicle(vehicle_id)
    items = [dict(i, vehicle_id=vehicle_id) if isinstance(i, dict) else i for i in data]
    sent = accepted = duplicate = rejected = 0
    accepted_records: dict[int, dict[str, object]] = {}
    refused: set[tuple[str | None, str]] = set()  # the same item refused for the same reason is one row
    for start in range(0, len(items), chunk):
        body = items[start : start + chunk]
        report = services.ingest.ingest(
            json.dumps(body).encode(),
            "application/json",
            credential_vehicle_id=vehicle_id,
            source="test",
            now_ms=NOW_MS,
        )
        sent += len(body)
        accepted += report.accepted
        duplicate += report.duplicate
        rejected += report.rejected
        for result in report.results:
            if result.status == "accepted":
                assert result.ts_ms not in accepted_records  # never accepted twice
                accepted_records[result.ts_ms] = body[result.index]  # type: ignore[assignment,index]
            elif result.status == "rejected":
                refused.add((result.reason, json.dumps(body[result.index], sort_keys=True)))
    assert accepted + duplicate + rejected == sent
    stored = list(services.telemetry.records(vehicle_id, 0, 2**62))
    assert services.telemetry.count(vehicle_id) == accepted == len(stored)
    for record in stored:  # what is stored is what was accepted, value for value
        original = accepted_records[record.ts_ms]
        assert record.soc_pct == original.get("soc_pct") and record.gear == original.get("gear")
    quarantined = [q for q in services.quarantine.list(vehicle_ids=[vehicle_id], limit=10_000)]
    assert len(quarantined) == len(refused)  # every refused item once, however often it was sent


def test_a_full_size_batch_is_stored_whole(services: Services) -> None:
    services.admin.add_vehicle("big-batch")
    n = services.settings.ingest_max_batch_records
    body = [{"vehicle_id": "big-batch", "ts_ms": NOW_MS - 1000 * i, "speed_kmh": i % 90} for i in range(n)]
    report = services.ingest.ingest(
        json.dumps(body).encode(),
        "application/json",
        credential_vehicle_id="big-batch",
        source="t",
        now_ms=NOW_MS,
    )
    assert report.accepted == n
    assert services.telemetry.count("big-batch") == n


@given(
    st.lists(
        st.tuples(
            st.integers(0, 50), st.one_of(st.none(), st.floats(0, 100)), st.one_of(st.none(), st.booleans())
        ),
        min_size=1,
        max_size=30,
    )
)
def test_newest_signals_are_the_newest_non_missing_values(
    rows: list[tuple[int, float | None, bool | None]],
) -> None:
    from microfleet.domain.telemetry import TelemetryRecord
    from microfleet.store.telemetry_store import newest_signals

    by_ts = {ts: (soc, locked) for ts, soc, locked in rows}  # one record per timestamp, as stored
    records = [TelemetryRecord("car", NOW_MS + ts, soc_pct=soc, locked=lk) for ts, (soc, lk) in by_ts.items()]
    newest = newest_signals(records)
    for name, position in (("soc_pct", 0), ("locked", 1)):
        carried = sorted((ts, v[position]) for ts, v in by_ts.items() if v[position] is not None)
        if carried:
            assert newest[name] == (NOW_MS + carried[-1][0], carried[-1][1])
        else:
            assert name not in newest
