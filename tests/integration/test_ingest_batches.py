"""Several vehicles' batches committed in one transaction (``IngestService.ingest_batches``), on both stores.

The scale-out worker stores a fetch's batches of many cars this way. Each batch must get exactly the verdicts
it gets alone: a poisoned batch costs only its bad records, every good record of every batch is stored once,
rejections are quarantined with their reasons and their own source, and the live feed's events and the stale
marks of history are written in the same transaction.
"""

from __future__ import annotations

import json

import pytest

from microfleet.bootstrap import Services
from microfleet.services.ingest import BatchInput, IngestReport
from tests.integration.conftest import NOW_MS
from tests.integration.test_poison_batches import POISON

START_MS = NOW_MS - 3_600_000
NDJSON = "application/x-ndjson"


@pytest.fixture(autouse=True)
def cars(services: Services) -> None:
    for vehicle_id in ("car-a", "car-b", "car-c", "car-x", "car-y"):
        services.admin.add_vehicle(vehicle_id, name=vehicle_id)


def lines(vehicle_id: str, first: int, n: int, soc_pct: float = 50.0) -> list[bytes]:
    return [
        json.dumps({"vehicle_id": vehicle_id, "ts_ms": START_MS + i * 1000, "soc_pct": soc_pct}).encode()
        for i in range(first, first + n)
    ]


def poisoned(vehicle_id: str) -> tuple[bytes, dict[int, str]]:
    """50 good records of ``vehicle_id`` with every poison item among them, and their expected reasons."""
    items = lines(vehicle_id, 0, 50)
    reasons: dict[int, str] = {}
    for k, case in enumerate(sorted(POISON)):
        poison, reason = POISON[case]
        at = 3 + 7 * k
        items.insert(at, poison.replace(b'"car-a"', json.dumps(vehicle_id).encode()))
        reasons[at] = reason
    at = len(items)
    items.append(json.dumps({"vehicle_id": "car-elsewhere", "ts_ms": START_MS}).encode())
    reasons[at] = "vehicle_mismatch"
    return b"\n".join(items), reasons


def verdicts(report: IngestReport) -> list[tuple[int, str, str | None]]:
    return [(r.index, r.status, r.reason) for r in report.results]


def test_one_poisoned_batch_in_a_multi_vehicle_commit_costs_only_its_bad_records(services: Services) -> None:
    bad_body, reasons = poisoned("car-b")
    batches = [
        BatchInput(b"\n".join(lines("car-a", 0, 40)), NDJSON, "car-a", "mqtt a", NOW_MS),
        BatchInput(bad_body, NDJSON, "car-b", "mqtt b", NOW_MS),
        BatchInput(b"\n".join(lines("car-c", 0, 60)), NDJSON, "car-c", "mqtt c", NOW_MS),
    ]
    a, b, c = services.ingest.ingest_batches(batches)
    assert (a.accepted, a.duplicate, a.rejected) == (40, 0, 0)
    assert (c.accepted, c.duplicate, c.rejected) == (60, 0, 0)
    assert (b.accepted, b.rejected) == (50, len(reasons))
    assert {r.index: r.reason for r in b.results if r.status == "rejected"} == reasons
    assert [services.telemetry.count(v) for v in ("car-a", "car-b", "car-c")] == [40, 50, 60]
    kept = services.quarantine.list(vehicle_ids=None)
    assert sorted(q.reason for q in kept) == sorted(reasons.values())
    assert {(q.source, q.credential_vehicle_id) for q in kept} == {("mqtt b", "car-b")}
    # The same transaction wrote the latest state, the stale marks and one live event per car.
    assert [services.telemetry.latest_state(v)["record_count"] for v in ("car-a", "car-b", "car-c")] == [
        40,
        50,
        60,
    ]
    assert services.telemetry.claim_stale(10) == {"car-a": START_MS, "car-b": START_MS, "car-c": START_MS}
    events = services.live_log.after(0, 1_000)
    assert sorted(e.vehicle_id for e in events) == ["car-a", "car-b", "car-c"]
    # Sent again, every good record is a duplicate and the bad ones are refused again (quarantined once).
    again = services.ingest.ingest_batches(batches)
    assert [(r.accepted, r.duplicate, r.rejected) for r in again] == [
        (0, 40, 0),
        (0, 50, len(reasons)),
        (0, 60, 0),
    ]
    assert len(services.quarantine.list(vehicle_ids=None)) == len(reasons)


def test_each_batch_gets_the_verdicts_it_gets_when_committed_alone(services: Services) -> None:
    """Overlapping batches of one car in one call: later copies are duplicates, changed ones conflicts."""

    def bodies(vehicle_id: str) -> list[bytes]:
        changed = lines(vehicle_id, 0, 30)
        changed[12] = lines(vehicle_id, 12, 1, soc_pct=51.0)[0]
        return [
            b"\n".join(lines(vehicle_id, 0, 20)),
            b"\n".join(changed),  # 0-19 again (12 changed), 20-29 new
            b"\n".join(lines(vehicle_id, 25, 10)),  # 25-29 again, 30-34 new
        ]

    together = services.ingest.ingest_batches(
        [BatchInput(body, NDJSON, "car-x", "mqtt", NOW_MS) for body in bodies("car-x")]
    )
    alone = [
        services.ingest.ingest(body, NDJSON, credential_vehicle_id="car-y", source="mqtt", now_ms=NOW_MS)
        for body in bodies("car-y")
    ]
    assert [verdicts(r) for r in together] == [verdicts(r) for r in alone]
    assert [(r.accepted, r.duplicate, r.rejected) for r in together] == [(20, 0, 0), (10, 19, 1), (5, 5, 0)]
    assert services.telemetry.count("car-x") == services.telemetry.count("car-y") == 35
    reasons = sorted(q.reason for q in services.quarantine.list(vehicle_ids=None))
    assert reasons == ["conflicting_duplicate", "conflicting_duplicate"]


def test_records_stored_before_are_duplicates_or_conflicts_in_a_multi_vehicle_commit(
    services: Services,
) -> None:
    services.ingest.ingest(
        b"\n".join(lines("car-a", 0, 10)), NDJSON, credential_vehicle_id="car-a", source="http", now_ms=NOW_MS
    )
    resent = lines("car-a", 5, 10)
    resent[0] = lines("car-a", 5, 1, soc_pct=42.0)[0]  # ts 5 stored with another value: a conflict
    a, b = services.ingest.ingest_batches(
        [
            BatchInput(b"\n".join(resent), NDJSON, "car-a", "mqtt", NOW_MS),
            BatchInput(b"\n".join(lines("car-b", 0, 10)), NDJSON, "car-b", "mqtt", NOW_MS),
        ]
    )
    assert (a.accepted, a.duplicate, a.rejected) == (5, 4, 1)
    assert a.results[0].reason == "conflicting_duplicate"
    assert (b.accepted, b.duplicate, b.rejected) == (10, 0, 0)
    assert services.telemetry.count("car-a") == 15
    assert services.telemetry.latest_state("car-a")["record_count"] == 15
