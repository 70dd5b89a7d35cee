"""Late records re-derive a window, not the rest of the car's history, and give what a rederive gives.

Equivalence: records of several synthetic days arriving shuffled, duplicated and in chunks, derived as
they land (by the ingest report or by the derivation queue), leave exactly the stored history that
``rederive`` from scratch leaves, on SQLite and PostgreSQL. Bound: one late record on a long history
loads a window of about a day, whatever the history's length.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from microfleet.bootstrap import Services
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.services.derivation import DerivationQueue, HistoryDeriver, RecomputeReport
from microfleet.store.history import HistoryStore
from tests.integration.test_history_day import DAY0_MS, body, day_records
from tests.integration.test_history_store import with_bms_counters

CAR = "car-late"
DAY_MS = 86_400_000
FOREVER = (0, 2**62, 1_000_000)


def days(n: int, offset_a: float = 0.0) -> list[TelemetryRecord]:
    """``n`` synthetic days in a row (each ends asleep at midday; the next starts after an offline gap),
    the odometer going on from one day to the next."""
    return [
        msgspec.structs.replace(r, odometer_km=r.odometer_km + 24 * k) if r.odometer_km is not None else r
        for k in range(n)
        for r in day_records(CAR, DAY0_MS + k * DAY_MS, offset_a)
    ]


@pytest.fixture
def car(services: Services) -> tuple[Services, HistoryStore, HistoryDeriver]:
    services.admin.add_vehicle(CAR, name="Late records test car", model_id=None)
    store = HistoryStore(services.engine, usable_kwh_of_model=lambda _m: 13.8)
    return services, store, HistoryDeriver(store)


def land(services: Services, records: list[Any]) -> Any:
    return services.ingest.ingest(
        body(records),
        "application/json",
        credential_vehicle_id=CAR,
        source="test",
        now_ms=DAY0_MS + 400 * DAY_MS,
    )


def snapshot(store: HistoryStore) -> tuple[list[Any], ...]:
    return (
        store.drives(CAR, *FOREVER),
        store.charges(CAR, *FOREVER),
        store.states(CAR, *FOREVER),
        store.drains(CAR, *FOREVER),
        store.excluded(CAR, 1_000_000),
    )


def shuffled_chunks(records: list[TelemetryRecord], seed: int, chunks: int) -> list[list[TelemetryRecord]]:
    """Late, duplicated and out of order: the records in ``chunks`` batches in time order, less 40 runs
    of 1-20 records that arrive later (each on its own, 1-10 batches after it was due, shuffled, with
    re-sent records), and each batch shuffled."""
    rng = np.random.default_rng(seed)
    n = len(records)
    held = np.zeros(n, dtype=bool)
    runs = []
    for start in rng.choice(n - 20, 40, replace=False):
        run = np.arange(start, start + rng.integers(1, 21))
        run = run[~held[run]]
        held[run] = True
        if run.size:
            runs.append(run)
    on_time = np.array_split(np.flatnonzero(~held), chunks)
    due = np.searchsorted([int(part[-1]) for part in on_time], [int(run[0]) for run in runs])
    late: dict[int, list[np.ndarray]] = {}
    for run, k in zip(runs, due, strict=True):
        late.setdefault(min(int(k) + int(rng.integers(1, 11)), chunks - 1), []).append(run)
    out = []
    for k, part in enumerate(on_time):
        out.append([records[i] for i in rng.permutation(part)])
        for run in late.get(k, []):
            resent = rng.choice(n, 5)
            out.append([records[i] for i in rng.permutation(np.concatenate([run, resent]))])
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_records_in_any_order_derived_as_they_land_give_the_history_of_a_rederive(
    car: tuple[Services, HistoryStore, HistoryDeriver], seed: int
) -> None:
    services, store, deriver = car
    records = with_bms_counters(days(4, offset_a=0.3)) if seed == 2 else days(4)
    reports: list[RecomputeReport] = []
    for chunk in shuffled_chunks(records, seed, 30):
        reports += deriver.ingest_landed(land(services, chunk))
    landed = snapshot(store)
    assert any(r.to_ms is not None for r in reports)  # some windows did stop before the newest record
    deriver.rederive(CAR)
    assert snapshot(store) == landed
    assert len(landed[0]) == 8 and len(landed[1]) == 4


def with_gps_jumps(
    records: list[TelemetryRecord], seed: int, share: float, *, moving_only: bool = True
) -> list[TelemetryRecord]:
    """Records whose fix jumps ~30 km away at random (``share`` of them, of the moving records only
    unless told otherwise); the rest are as they were."""
    rng = np.random.default_rng(seed)
    return [
        msgspec.structs.replace(r, lat_deg=r.lat_deg + float(rng.normal(0.0, 0.3)))
        if r.lat_deg is not None and (not moving_only or (r.speed_kmh or 0.0) > 0) and rng.random() < share
        else r
        for r in records
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_records_with_jumping_fixes_in_any_order_give_the_excluded_records_of_a_rederive(
    car: tuple[Services, HistoryStore, HistoryDeriver], seed: int
) -> None:
    """A late fix changes which later fixes are jumps: the excluded records the queue keeps (written
    as a difference each round) are those a rederive from scratch finds."""
    services, store, deriver = car
    queue = DerivationQueue(deriver, services.telemetry, interval_s=5)
    for chunk in shuffled_chunks(with_gps_jumps(days(3), seed, 0.3), seed, 30):
        land(services, chunk)
        queue.run_pending()
    landed = snapshot(store)
    deriver.rederive(CAR)
    assert snapshot(store) == landed
    assert len(landed[4]) > 100  # many fixes did jump


def test_fixes_that_jump_right_after_a_resume_point_give_the_excluded_records_of_a_rederive(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    queue = DerivationQueue(deriver, services.telemetry, interval_s=5)
    for chunk in shuffled_chunks(with_gps_jumps(days(3), 4, 0.3, moving_only=False), 4, 30):
        land(services, chunk)
        queue.run_pending()
    landed = snapshot(store)
    deriver.rederive(CAR)
    assert snapshot(store) == landed


def test_the_derivation_queue_knowing_only_the_earliest_new_record_gives_the_history_of_a_rederive(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    queue = DerivationQueue(deriver, services.telemetry, interval_s=5)
    reports: list[RecomputeReport] = []
    for chunk in shuffled_chunks(days(4), 3, 30):
        land(services, chunk)
        reports += queue.run_pending()
    landed = snapshot(store)
    deriver.rederive(CAR)
    assert snapshot(store) == landed
    assert len(landed[0]) == 8


def test_a_late_record_on_a_long_history_re_derives_a_bounded_window(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    history = days(16)
    per_day = len(history) // 16
    late = history[10 * per_day + 600]  # a record of day 10's drive home
    for k in range(16):
        day = history[k * per_day : (k + 1) * per_day]
        deriver.ingest_landed(land(services, [r for r in day if r != late]))
    before = snapshot(store)
    (report,) = deriver.ingest_landed(land(services, [late]))
    assert report.to_ms is not None and report.from_ms is not None
    assert report.from_ms <= late.ts_ms < report.to_ms
    assert report.records < per_day  # a window of under a day, not the six days after it
    after = snapshot(store)
    changed = [(a, b) for a, b in zip(before[0], after[0], strict=True) if a != b]
    assert [b.record_count - a.record_count for a, b in changed] == [1]
    deriver.rederive(CAR)
    assert snapshot(store) == after
    again = deriver.records_landed(CAR, [late.ts_ms])  # idempotent: the same window changes nothing
    assert again is not None and again.to_ms == report.to_ms
    assert snapshot(store) == after


def test_a_queue_round_with_a_late_record_and_new_live_ones_derives_the_window_and_the_tail(
    car: tuple[Services, HistoryStore, HistoryDeriver],
) -> None:
    services, store, deriver = car
    history = days(8)
    per_day = len(history) // 8
    late = history[3 * per_day + 100]  # a record of day 3's night
    land(services, [r for r in history[: 7 * per_day] if r != late])
    deriver.rederive(CAR)
    queue = DerivationQueue(deriver, services.telemetry, interval_s=5)
    queue.run_pending()
    land(services, [late, *history[7 * per_day :]])  # the stale mark only says: from the late record on
    (report,) = queue.run_pending()
    assert report.records < 2.5 * per_day  # day 3's window and the new day 7, not days 3 to 7
    landed = snapshot(store)
    deriver.rederive(CAR)
    assert snapshot(store) == landed
