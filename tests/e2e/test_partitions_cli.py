"""``microfleet db partitions`` as a person runs it: list, ensure, drop on PostgreSQL; a clear no on SQLite.

The PostgreSQL store is a database of this module's own, a schema per test (``MICROFLEET_DATABASE_SCHEMA``);
months are the wall clock's, as the command's are.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from microfleet.store.engine import make_engine
from microfleet.store.partitions import Month, create_month
from tests.e2e.command import microfleet

POSTGRES = os.environ.get("MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    name = f"microfleet_e2e_parts_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES.rpartition('/')[0].replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def schema(monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("MICROFLEET_DATABASE_SCHEMA", name)
    return name


def old_months_with_rows(database_url: str, schema: str, months: list[Month], in_default: Month) -> None:
    """Partitions for past months, each with two records of one car (as a store running for months has),
    and two records of ``in_default``, which has no partition."""
    engine = make_engine(database_url, schema)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO vehicles (vehicle_id, name, device_token_sha256, created_at_ms)"
                    f" VALUES ('car-1', 'car-1', '{'0' * 64}', 0)"
                )
            )
            for month in [*months, in_default]:
                if month != in_default:
                    create_month(conn, month)
                conn.execute(
                    text(
                        "INSERT INTO telemetry (vehicle_id, ts_ms, soc_pct, record_digest, received_at_ms)"
                        " VALUES ('car-1', :ts, 50, 1, 1)"
                    ),
                    [{"ts": month.start_ms}, {"ts": month.end_ms - 1}],
                )
    finally:
        engine.dispose()


def test_partitions_are_listed_created_ahead_and_old_months_dropped(database_url: str, schema: str) -> None:
    now = Month.of_ms(time.time_ns() // 1_000_000)
    store = ("--database-url", database_url)
    listed = microfleet("db", "partitions", *store)
    assert listed.returncode == 0, listed
    for name in (now.table_name, now.plus(3).table_name, "telemetry_default"):
        assert name in listed.stdout
    assert str(now) in listed.stdout and "any other" in listed.stdout

    ensured = microfleet("db", "partitions", "ensure", "--months", "5", *store)
    assert ensured.returncode == 0, ensured
    assert f"created {now.plus(4)}, {now.plus(5)}; months through {now.plus(5)} exist" in ensured.stdout
    again = microfleet("db", "partitions", "ensure", "--months", "5", *store)
    assert f"nothing to create: months through {now.plus(5)} exist" in again.stdout

    old_months_with_rows(database_url, schema, [now.plus(-3), now.plus(-2)], in_default=now.plus(-12))
    split = microfleet("db", "partitions", "ensure", "--from-default", *store)
    assert split.returncode == 0, split
    assert f"moved out of DEFAULT into their own months: {now.plus(-12)}" in split.stdout
    too_new = microfleet("db", "partitions", "drop", "--before", str(now.plus(1)), "--yes", *store)
    assert too_new.returncode == 2
    assert "error (invalid_input)" in too_new.stdout and "the current month" in too_new.stdout
    not_confirmed = microfleet("db", "partitions", "drop", "--before", str(now), *store)
    assert not_confirmed.returncode == 1  # no answer to the question: nothing dropped
    assert f"{now.plus(-12)}, {now.plus(-3)}, {now.plus(-2)}" in not_confirmed.stdout
    assert now.plus(-3).table_name in microfleet("db", "partitions", *store).stdout

    dropped = microfleet("db", "partitions", "drop", "--before", str(now), "--yes", *store)
    assert dropped.returncode == 0, dropped
    assert (
        f"dropped 3 month(s) ({now.plus(-12)}, {now.plus(-3)}, {now.plus(-2)}): 6 records" in dropped.stdout
    )
    after = microfleet("db", "partitions", *store).stdout
    assert now.plus(-3).table_name not in after and now.table_name in after


def test_a_bad_month_is_one_sentence(database_url: str, schema: str) -> None:
    ran = microfleet("db", "partitions", "drop", "--before", "2026-13", "--database-url", database_url)
    assert ran.returncode == 2
    assert "error (invalid_input): '2026-13' is not a month; write it YYYY-MM" in ran.stdout


def test_on_sqlite_each_command_says_partitions_are_a_postgresql_feature(tmp_path: Path) -> None:
    for args in (
        ("db", "partitions"),
        ("db", "partitions", "ensure", "--months", "2"),
        ("db", "partitions", "drop", "--before", "2020-01", "--yes"),
    ):
        ran = microfleet(*args, db=tmp_path / "m.db")
        assert ran.returncode == 2, (args, ran)
        assert "telemetry partitions are a PostgreSQL feature" in ran.stdout, args
        assert "Traceback" not in ran.stdout + ran.stderr
