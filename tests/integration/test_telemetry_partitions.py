"""PostgreSQL's monthly telemetry partitions: where rows land, idempotency across months, the migration
that builds them (every row kept, both ways), retention by whole months, and SQLite left alone.

Each test runs on a PostgreSQL schema of its own (``tests/integration/conftest.py``); partitions follow
the clock each test gives :class:`TelemetryPartitions`, never the wall clock.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from alembic import command
from sqlalchemy import Engine, text

from microfleet.bootstrap import Services, build_services
from microfleet.domain.derivation import CONTEXT_CHANGED_MS
from microfleet.domain.places import Circle, Place, PlaceKind
from microfleet.domain.telemetry import EARLIEST_TS_MS, MAX_FUTURE_SKEW_MS, RejectionReason
from microfleet.errors import ConfigurationError, InvalidInputError, StoreUnavailableError
from microfleet.services.derivation import HistoryDeriver
from microfleet.services.ingest import IngestReport
from microfleet.settings import Settings
from microfleet.store.engine import make_engine
from microfleet.store.history import HistoryStore
from microfleet.store.migrate import alembic_config, upgrade
from microfleet.store.partitions import (
    DEFAULT_PARTITION,
    Month,
    PartitionKeeper,
    TelemetryPartitions,
    create_month,
    is_partitioned,
)
from tests.integration.conftest import FrozenClock
from tests.integration.test_history_day import HOME, body, day_records

CAR, OTHER = "car-part-1", "car-part-2"
DEC_2025 = Month(2025, 12)
DAY_MS = 86_400_000
postgres_only = pytest.mark.parametrize("settings", ["postgres"], indirect=True)


def record(vehicle_id: str, ts_ms: int, soc_pct: float = 50.0) -> dict[str, Any]:
    return {"vehicle_id": vehicle_id, "ts_ms": ts_ms, "soc_pct": soc_pct, "speed_kmh": 0.0}


def send(services: Services, vehicle_id: str, records: list[dict[str, Any]], now_ms: int) -> IngestReport:
    return services.ingest.ingest(
        msgspec.json.encode(records),
        "application/json",
        credential_vehicle_id=vehicle_id,
        source="test",
        now_ms=now_ms,
    )


def placed(engine: Engine) -> dict[int, str]:
    """Each stored record's time → the partition that holds it."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT ts_ms, tableoid::regclass::text FROM telemetry")).all()
    return {int(ts): name.rsplit(".", 1)[-1] for ts, name in rows}


def content(engine: Engine) -> tuple[int, ...]:
    """Row count, the records' digests summed, and (PostgreSQL) every row's full text hashed and summed."""
    rows_hashed = ", sum(hashtext(t::text)::numeric)" if engine.dialect.name == "postgresql" else ""
    with engine.connect() as conn:
        found = conn.execute(text(f"SELECT count(*), sum(record_digest){rows_hashed} FROM telemetry t")).one()
    return tuple(int(v or 0) for v in found)


def store_rows(engine: Engine, times: list[int]) -> None:
    """Two cars with a record at each time, written as revision 0010's tables take them."""
    with engine.begin() as conn:
        for n, vehicle_id in enumerate((CAR, OTHER)):
            conn.execute(
                text(
                    "INSERT INTO vehicles (vehicle_id, name, device_token_sha256, created_at_ms)"
                    " VALUES (:v, :v, :token, 0)"
                ),
                {"v": vehicle_id, "token": f"{n:064d}"},
            )
            conn.execute(
                text(
                    "INSERT INTO telemetry (vehicle_id, ts_ms, soc_pct, gear, record_digest, received_at_ms)"
                    " VALUES (:v, :ts, :soc, 'D', :digest, 1)"
                ),
                [
                    {"v": vehicle_id, "ts": ts, "soc": i / 3, "digest": -(ts % 1_000_003) - n}
                    for i, ts in enumerate(times)
                ],
            )


@pytest.fixture
def cars(services: Services) -> Services:
    services.admin.add_vehicle(CAR)
    services.admin.add_vehicle(OTHER)
    return services


@postgres_only
def test_rows_land_in_their_months_partition_across_a_month_boundary(cars: Services) -> None:
    clock = FrozenClock(DEC_2025.start_ms + 60_000)  # a minute into December: November's last ms is past
    partitions = TelemetryPartitions(cars.engine, clock)
    assert partitions.ensure_ahead(1) == [DEC_2025, Month(2026, 1)]
    assert partitions.ensure_ahead(1) == []  # idempotent
    create_november = TelemetryPartitions(cars.engine, FrozenClock(Month(2025, 11).start_ms))
    assert create_november.ensure_ahead(0) == [Month(2025, 11)]
    times = [DEC_2025.start_ms - 1, DEC_2025.start_ms, DEC_2025.start_ms + 1, Month(2025, 11).start_ms]
    report = send(cars, CAR, [record(CAR, ts) for ts in times], clock())
    assert report.accepted == 4
    assert placed(cars.engine) == {
        times[0]: "telemetry_y2025m11",
        times[1]: "telemetry_y2025m12",
        times[2]: "telemetry_y2025m12",
        times[3]: "telemetry_y2025m11",
    }
    assert cars.telemetry.count(CAR) == 4
    assert [r.ts_ms for r in cars.telemetry.records(CAR, 0, 2**62)] == sorted(times)


@postgres_only
def test_far_past_and_far_future_records_wait_in_default_then_move_into_their_month(
    cars: Services,
) -> None:
    far_future = FrozenClock(Month(2099, 6).start_ms + 3_600_000)
    latest = far_future() + MAX_FUTURE_SKEW_MS  # the newest time validation accepts
    times = [EARLIEST_TS_MS, latest]
    assert send(cars, CAR, [record(CAR, ts) for ts in times], far_future()).accepted == 2
    assert placed(cars.engine) == {EARLIEST_TS_MS: DEFAULT_PARTITION, latest: DEFAULT_PARTITION}
    before = content(cars.engine)
    # Creating June 2099 now that DEFAULT holds one of its rows: the row moves into the new partition.
    assert TelemetryPartitions(cars.engine, far_future).ensure_ahead(0) == [Month(2099, 6)]
    assert placed(cars.engine) == {EARLIEST_TS_MS: DEFAULT_PARTITION, latest: "telemetry_y2099m06"}
    assert content(cars.engine) == before
    again = send(cars, CAR, [record(CAR, ts) for ts in times], far_future())
    assert (again.accepted, again.duplicate, again.rejected) == (0, 2, 0)
    with cars.engine.begin() as conn:
        assert not create_month(conn, Month(2099, 6))  # already there: nothing done
    # What still waits in DEFAULT gets months of its own on request (ensure --from-default).
    assert TelemetryPartitions(cars.engine, far_future).split_default() == [Month(2010, 1)]
    assert placed(cars.engine) == {EARLIEST_TS_MS: "telemetry_y2010m01", latest: "telemetry_y2099m06"}
    assert content(cars.engine) == before
    assert TelemetryPartitions(cars.engine, far_future).split_default() == []


@postgres_only
def test_a_resent_batch_is_duplicate_and_a_changed_one_conflicts_in_every_partition(cars: Services) -> None:
    clock = FrozenClock(DEC_2025.start_ms + 60_000)
    TelemetryPartitions(cars.engine, FrozenClock(Month(2025, 11).start_ms)).ensure_ahead(1)
    times = [Month(2025, 11).start_ms + 5_000, DEC_2025.start_ms - 5_000, DEC_2025.start_ms, EARLIEST_TS_MS]
    assert send(cars, CAR, [record(CAR, ts) for ts in times], clock()).accepted == 4
    assert set(placed(cars.engine).values()) == {
        "telemetry_y2025m11",
        "telemetry_y2025m12",
        DEFAULT_PARTITION,
    }
    same = send(cars, CAR, [record(CAR, ts) for ts in times], clock())
    assert (same.accepted, same.duplicate, same.rejected) == (0, 4, 0)
    changed = send(cars, CAR, [record(CAR, ts, soc_pct=51.0) for ts in times], clock())
    assert (changed.accepted, changed.duplicate, changed.rejected) == (0, 0, 4)
    assert {r.reason for r in changed.results} == {RejectionReason.CONFLICTING_DUPLICATE.value}
    assert {r.soc_pct for r in cars.telemetry.records(CAR, 0, 2**62)} == {50.0}
    # The same times for another car are new records, in the same partitions.
    assert send(cars, OTHER, [record(OTHER, ts) for ts in times], clock()).accepted == 4
    assert cars.telemetry.count() == 8


def test_migration_moves_every_row_into_its_month_and_back(settings: Settings) -> None:
    """A store with rows at 0010 is migrated to partitions and back: the same rows, every time."""
    engine = make_engine(settings.database_url, settings.database_schema)
    try:
        upgrade(engine, settings.database_schema, "0010_energy_source")
        times = [EARLIEST_TS_MS, *(Month(2025, m).start_ms + 7 for m in (1, 2, 10))]
        store_rows(engine, [*times, Month(2025, 10).end_ms - 1, Month(2025, 11).start_ms + 3_600_000])
        before = content(engine)
        assert before[0] == 2 * 6
        upgrade(engine, settings.database_schema)
        with engine.connect() as conn:
            assert is_partitioned(conn) == (engine.dialect.name == "postgresql")
        assert content(engine) == before
        if engine.dialect.name == "postgresql":
            where = placed(engine)
            assert where[EARLIEST_TS_MS] == "telemetry_y2010m01"
            assert where[Month(2025, 10).end_ms - 1] == "telemetry_y2025m10"
            assert DEFAULT_PARTITION not in where.values()  # every month holding rows got its partition
            names = {p.name for p in TelemetryPartitions(engine).partitions()}
            now = Month.of_ms(time.time_ns() // 1_000_000)
            assert {now.plus(i).table_name for i in range(4)} <= names  # the months ahead, by wall clock
        command.downgrade(alembic_config(engine), "0010_energy_source")
        with engine.connect() as conn:
            assert not is_partitioned(conn)
        assert content(engine) == before
        upgrade(engine, settings.database_schema)
        assert content(engine) == before
    finally:
        engine.dispose()


@postgres_only
def test_drop_before_removes_exactly_the_older_months_and_keeps_derived_history(cars: Services) -> None:
    TelemetryPartitions(cars.engine, FrozenClock(Month(2025, 10).start_ms)).ensure_ahead(2)
    clock = FrozenClock(DEC_2025.start_ms + 86_400_000)
    partitions = TelemetryPartitions(cars.engine, clock)
    months = [Month(2025, 10), Month(2025, 11), DEC_2025]
    for vehicle_id in (CAR, OTHER):
        times = [EARLIEST_TS_MS] + [m.start_ms + i * 60_000 for m in months for i in range(3)]
        assert send(cars, vehicle_id, [record(vehicle_id, ts) for ts in times], clock()).accepted == 10
    cars.deriver.rederive(CAR)
    with cars.engine.connect() as conn:
        states = conn.execute(text("SELECT count(*) FROM history_states")).scalar_one()
    assert states > 0

    with pytest.raises(InvalidInputError, match="current month"):
        partitions.drop_before(Month(2026, 1))
    assert cars.telemetry.count() == 20  # refused: nothing dropped
    assert [p.name for p in partitions.to_drop_before(DEC_2025)] == [
        "telemetry_y2025m10",
        "telemetry_y2025m11",
    ]

    dropped = partitions.drop_before(DEC_2025)
    assert dropped.months == (Month(2025, 10), Month(2025, 11))
    assert dropped.rows == 2 * 7  # two cars: three records in each old month, one in DEFAULT
    assert set(placed(cars.engine).values()) == {"telemetry_y2025m12"}
    assert {p.name for p in partitions.partitions()} >= {"telemetry_y2025m12", DEFAULT_PARTITION}
    assert not {p.name for p in partitions.partitions()} & {"telemetry_y2025m10", "telemetry_y2025m11"}
    for vehicle_id in (CAR, OTHER):
        assert cars.telemetry.count(vehicle_id) == 3
        state = cars.telemetry.latest_state(vehicle_id)
        assert state is not None and state["record_count"] == 3  # counts what is stored
    with cars.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM history_states")).scalar_one() == states
    assert partitions.drop_before(DEC_2025).rows == 0  # nothing older is left


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_sqlite_says_partitions_are_a_postgresql_feature(settings: Settings) -> None:
    services = build_services(settings)
    try:
        partitions = TelemetryPartitions(services.engine)
        assert not partitions.supported()
        for call in (
            partitions.partitions,
            partitions.ensure_ahead,
            lambda: partitions.drop_before(DEC_2025),
        ):
            with pytest.raises(ConfigurationError, match="PostgreSQL feature"):
                call()
    finally:
        services.close()


@postgres_only
def test_the_keeper_creates_the_months_ahead_in_the_background(cars: Services) -> None:
    clock = FrozenClock(Month(2098, 3).start_ms)
    keeper = PartitionKeeper(TelemetryPartitions(cars.engine, clock), interval_s=0.05)
    wanted = {Month(2098, m).table_name for m in (3, 4, 5, 6)}
    keeper.start()
    try:
        names: set[str] = set()
        for _ in range(400):  # waiting for the thread, not timing it
            names = {p.name for p in TelemetryPartitions(cars.engine).partitions()}
            if wanted <= names:
                break
            time.sleep(0.05)
        assert wanted <= names
    finally:
        keeper.stop()


def test_a_month_is_written_yyyy_mm() -> None:
    assert Month.parse("2026-01") == Month(2026, 1)
    assert str(Month(2026, 1).plus(-1)) == "2025-12" and Month(2025, 12).plus(1) == Month(2026, 1)
    assert Month(2026, 2).end_ms - Month(2026, 2).start_ms == 28 * 86_400_000
    assert Month.of_ms(Month(2026, 3).start_ms - 1) == Month(2026, 2)
    for bad in ("2026-13", "26-01", "2026-1", "january", ""):
        with pytest.raises(InvalidInputError, match="YYYY-MM"):
            Month.parse(bad)


@postgres_only
def test_a_long_query_in_the_way_makes_creating_a_month_give_up_not_stall_ingest(cars: Services) -> None:
    clock = FrozenClock(Month(2097, 1).start_ms)
    partitions = TelemetryPartitions(cars.engine, clock, lock_timeout_s=0.5)
    with cars.engine.connect() as reader:  # a report still reading telemetry, its transaction open
        reader.execute(text("SELECT count(*) FROM telemetry"))
        with pytest.raises(StoreUnavailableError):
            partitions.ensure_ahead(0)
    assert partitions.ensure_ahead(0) == [Month(2097, 1)]  # the reader gone: created
    assert send(cars, CAR, [record(CAR, clock())], clock()).accepted == 1
    assert placed(cars.engine) == {clock(): "telemetry_y2097m01"}


def _derived(services: Services, vehicle_id: str) -> tuple[list[Any], list[Any]]:
    forever = (0, 2**62, 1_000_000)
    store = HistoryStore(services.engine)
    return store.drives(vehicle_id, *forever), store.charges(vehicle_id, *forever)


@postgres_only
def test_a_whole_re_derivation_after_a_drop_keeps_the_dropped_months_derived_history(cars: Services) -> None:
    """Six days across a month boundary (three in October, three in November), derived; October dropped.
    A rederive, and a place added (which re-derives the car from scratch), derive November again from its
    first resume point and keep October's drives and charges as they were; a late record for October is
    stored but changes none of them, and November's records still derive."""
    partitions, deriver, records, late, before = _six_days_derived(cars)
    assert [len(rows) for rows in before] == [12, 6]
    in_october = [d for d in before[0] if d.start_ts_ms < Month(2025, 11).start_ms]
    assert len(in_october) == 6

    partitions.drop_before(Month(2025, 11))
    assert cars.telemetry.count(CAR) == len(records) // 2
    again = deriver.rederive(CAR)
    assert again.from_ms is not None and again.from_ms >= Month(2025, 11).start_ms  # the kept months only
    assert _derived(cars, CAR) == before

    home = Place("home", "Home", PlaceKind.HOME, Circle(*HOME, 300.0))
    cars.places.add(home, vehicle_id=CAR)  # the car's whole history is derived again (its stale mark)
    deriver.records_landed(CAR, [CONTEXT_CHANGED_MS])
    drives, charges = _derived(cars, CAR)
    assert drives[:6] == in_october  # no raw records left to name them from: kept as they were
    assert [d.start_place_id for d in drives[6:]] == ["home", None, "home", None, "home", None]
    assert charges == before[1]

    assert send_records(cars, [late]).accepted == 1  # stored, in DEFAULT
    assert placed(cars.engine)[late.ts_ms] == DEFAULT_PARTITION
    landed = deriver.records_landed(CAR, [late.ts_ms])
    assert landed is not None and landed.from_ms is not None and landed.from_ms >= Month(2025, 11).start_ms
    assert _derived(cars, CAR) == (drives, charges)
    deriver.rederive(CAR)
    assert _derived(cars, CAR) == (drives, charges)


@postgres_only
def test_a_late_record_for_a_dropped_month_changes_no_derived_row_of_it(cars: Services) -> None:
    """Before any rederive: the late record's resume point lies in the dropped stretch; the car is derived
    from the first resume point after it, and every drive and charge stays as it was."""
    partitions, deriver, _, late, before = _six_days_derived(cars)
    partitions.drop_before(Month(2025, 11))
    assert send_records(cars, [late]).accepted == 1
    landed = deriver.records_landed(CAR, [late.ts_ms])
    assert landed is not None and landed.from_ms is not None and landed.from_ms >= Month(2025, 11).start_ms
    assert _derived(cars, CAR) == before
    deriver.rederive(CAR)
    assert _derived(cars, CAR) == before


def _six_days_derived(
    cars: Services,
) -> tuple[TelemetryPartitions, HistoryDeriver, list[Any], Any, tuple[list[Any], list[Any]]]:
    """Six days from October 29th, 2025 (three in October, three in November) less one record of October
    30th's drive (held back), derived: the partitions (clock in December), the deriver, the records, the
    held-back record and the derived drives and charges."""
    oct_29 = Month(2025, 11).start_ms - 3 * DAY_MS
    TelemetryPartitions(cars.engine, FrozenClock(Month(2025, 10).start_ms)).ensure_ahead(2)
    partitions = TelemetryPartitions(cars.engine, FrozenClock(DEC_2025.start_ms + DAY_MS))
    deriver = HistoryDeriver(HistoryStore(cars.engine, usable_kwh_of_model=lambda _m: 13.8))
    records = [
        msgspec.structs.replace(r, odometer_km=r.odometer_km + 24 * k) if r.odometer_km is not None else r
        for k in range(6)
        for r in day_records(CAR, oct_29 + k * DAY_MS)
    ]
    late = records[len(records) // 6 + 500]
    assert send_records(cars, [r for r in records if r != late]).accepted == len(records) - 1
    deriver.rederive(CAR)
    return partitions, deriver, records, late, _derived(cars, CAR)


def send_records(services: Services, records: list[Any]) -> IngestReport:
    return services.ingest.ingest(
        body(records),
        "application/json",
        credential_vehicle_id=CAR,
        source="test",
        now_ms=DEC_2025.start_ms + DAY_MS,
    )
