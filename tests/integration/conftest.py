"""Real stores for integration tests: a SQLite file per test, and a PostgreSQL database per run with a
schema per test. Every integration test that takes ``services`` runs on both.

``settings`` names an empty store. ``services`` opens it already migrated: Alembic migrates one store of
each kind per run (through :func:`build_services`, as every process does), and each test's store starts as
a copy of it — the SQLite file copied, or for PostgreSQL the statements Alembic sent, recorded and replayed
into the test's schema in one transaction — which costs a tenth of migrating again. Tests that take
``settings`` and build services themselves still migrate with Alembic.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings
from microfleet.store.migrate import current_revision

POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own for this test run, dropped at the end."""
    name = f"microfleet_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store Alembic migrated to the latest revision, closed (its WAL folded in) for copying."""
    path = tmp_path_factory.mktemp("template") / "microfleet.db"
    build_services(Settings(database_url=f"sqlite:///{path}")).close()
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def migration_sql(postgres_database: str) -> bytes:
    """Every statement Alembic sent to migrate an empty PostgreSQL schema to the latest revision, in order.

    Alembic's own reads (does ``alembic_version`` exist?) are left out: in an empty schema their answers
    are always the same, and so is what it does next. Its writes take no parameters (DDL, and the
    revision as a literal) and name no schema (the connection's search_path does), so they replay as one
    script into any schema; replayed once here, they must leave that schema at the same revision.
    """
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            assert not parameters, (statement, parameters)
            sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        migrated = build_services(
            Settings(database_url=postgres_database, database_schema="migrated_by_alembic")
        )
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    head = current_revision(migrated.engine)
    migrated.close()
    assert sent.pop(0) == 'CREATE SCHEMA IF NOT EXISTS "migrated_by_alembic"'
    assert not any("migrated_by_alembic" in statement for statement in sent), "a statement names the schema"
    script = ";\n".join(sent).encode()
    replayed = Settings(database_url=postgres_database, database_schema="migrated_by_replay")
    _replay(replayed, script)
    check = build_services(replayed, migrate=False)
    assert head is not None and current_revision(check.engine) == head
    check.close()
    return script


def _replay(settings: Settings, script: bytes) -> None:
    """Create ``settings``' schema and run ``script`` in it, in one transaction."""
    url = make_url(settings.database_url).set(drivername="postgresql")
    with (
        psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn,
        conn.transaction(),
    ):
        conn.execute(f'CREATE SCHEMA "{settings.database_schema}"')
        conn.execute(f'SET LOCAL search_path TO "{settings.database_schema}"')
        conn.execute(script)


def _copy_migrated_store(request: pytest.FixtureRequest, settings: Settings) -> None:
    """Make ``settings``' empty store a copy of the migrated one of its kind."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), url.database)
        return
    _replay(settings, request.getfixturevalue("migration_sql"))


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a fresh store of each kind."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "microfleet.db"
        return Settings(database_url=f"sqlite:///{path}")
    database_url = request.getfixturevalue("postgres_database")
    return Settings(database_url=database_url, database_schema=f"t_{uuid.uuid4().hex[:12]}")


class FrozenClock:
    """A clock tests set by hand (UTC epoch ms); the store and pipeline read it like the wall clock."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


NOW_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW_MS)


@pytest.fixture
def services(request: pytest.FixtureRequest, settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    _copy_migrated_store(request, settings)
    built = build_services(settings, migrate=False, clock=clock)
    yield built
    built.close()
