"""Real stores for integration tests: a SQLite file per test, and a PostgreSQL database per run with a
schema per test. Every integration test that takes ``services`` runs on both.

``settings`` alone names an empty store. With ``services`` the store opens already migrated, without
running Alembic per test: Alembic migrates one store of each kind per run (through :func:`build_services`,
as every process does) and each test's store starts from it. A SQLite test gets a copy of that file. A
PostgreSQL test gets a schema no other test is using: new, with the statements Alembic sent replayed into
it in one transaction, or one an earlier test used, emptied afterwards (every row deleted, every sequence
restarted) and kept only if its tables, columns, indexes and constraints are still Alembic's. Tests that take
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


def _plain(database_url: str) -> str:
    """The URL psycopg takes for SQLAlchemy's ``postgresql+psycopg://`` one."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _replay(database_url: str, schema: str, script: bytes) -> None:
    """Create ``schema`` and run ``script`` in it, in one transaction."""
    with psycopg.connect(_plain(database_url), autocommit=True) as conn, conn.transaction():
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET LOCAL search_path TO "{schema}"')
        conn.execute(script)


# What a schema is made of, with its own name taken out: columns, indexes, constraints, sequences.
_SHAPE = """
SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '
       || coalesce(character_maximum_length::text, '') || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = %(schema)s
UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = %(schema)s
UNION ALL SELECT c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s
UNION ALL SELECT sequencename || ' ' || start_value FROM pg_sequences WHERE schemaname = %(schema)s
"""

# The schema's tables, each after every table whose foreign keys point at it (rows are deleted in this order).
_CHILDREN_FIRST = """
WITH RECURSIVE tables AS (
    SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname <> 'alembic_version'
), depth(oid, depth) AS (
    SELECT oid, 0 FROM tables
    UNION ALL
    SELECT k.conrelid, depth.depth + 1 FROM depth
      JOIN pg_constraint k ON k.contype = 'f' AND k.confrelid = depth.oid AND k.conrelid <> depth.oid
     WHERE depth.depth < 100  -- keys in a cycle: the deletes fail and the schema is not reused
)
SELECT tables.relname FROM tables JOIN depth USING (oid)
 GROUP BY tables.relname ORDER BY max(depth.depth) DESC, tables.relname
"""

_RESTART_SEQUENCES = """
SELECT setval(format('%%I.%%I', schemaname, sequencename)::regclass, start_value, false)
  FROM pg_sequences WHERE schemaname = %(schema)s
"""


def _shape(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    with conn.transaction():
        conn.execute(f'SET LOCAL search_path TO "{schema}"')  # defaults then name their sequences unqualified
        rows = conn.execute(_SHAPE, {"schema": schema}).fetchall()
    return sorted(str(row[0]).replace(f"{schema}.", "") for row in rows)


class MigratedSchemas:
    """Migrated PostgreSQL schemas no test is using, for the tests that take ``services``."""

    def __init__(self, database_url: str, script: bytes, shape: list[str]) -> None:
        self._database_url = database_url
        self._script = script
        self._shape = shape
        self._free: list[str] = []
        self._taken: set[str] = set()

    def take(self) -> str:
        """A migrated, empty schema: one given back, or a new one."""
        schema = self._free.pop() if self._free else self.migrate(f"t_{uuid.uuid4().hex[:12]}")
        self._taken.add(schema)
        return schema

    def migrate(self, schema: str) -> str:
        """Create ``schema`` migrated (the statements Alembic sent, replayed)."""
        _replay(self._database_url, schema, self._script)
        return schema

    def was_taken(self, schema: str) -> bool:
        return schema in self._taken

    def give_back(self, schema: str) -> None:
        """Empty ``schema`` for the next test, unless a test changed its shape or it cannot be emptied."""
        self._taken.discard(schema)
        options = "-c lock_timeout=5s"  # a connection a test left open in a transaction: give up, not wait
        try:
            with psycopg.connect(_plain(self._database_url), autocommit=True, options=options) as conn:
                if _shape(conn, schema) != self._shape:
                    return
                with conn.transaction():
                    for (table,) in conn.execute(_CHILDREN_FIRST, {"schema": schema}).fetchall():
                        conn.execute(f'DELETE FROM "{schema}"."{table}"')
                    conn.execute(_RESTART_SEQUENCES, {"schema": schema})
        except psycopg.Error:
            return
        self._free.append(schema)


@pytest.fixture(scope="session")
def migrated_schemas(postgres_database: str) -> MigratedSchemas:
    """Alembic migrates one schema; what it sent, replayed into another, must give the same schema.

    Alembic's own reads (does ``alembic_version`` exist?) are left out: in an empty schema their answers
    are always the same, and so is what it does next. Its writes take no parameters (DDL, and the
    revision as a literal) and name no schema (the connection's search_path does), so they replay as one
    script into any schema.
    """
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            assert not parameters, (statement, parameters)
            sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        migrated = build_services(Settings(database_url=postgres_database, database_schema="by_alembic"))
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    head = current_revision(migrated.engine)
    migrated.close()
    assert sent.pop(0) == 'CREATE SCHEMA IF NOT EXISTS "by_alembic"'
    assert not any("by_alembic" in statement for statement in sent), "a statement names the schema"
    script = ";\n".join(sent).encode()
    _replay(postgres_database, "by_replay", script)
    replayed = build_services(
        Settings(database_url=postgres_database, database_schema="by_replay"), migrate=False
    )
    assert head is not None and current_revision(replayed.engine) == head
    replayed.close()
    with psycopg.connect(_plain(postgres_database), autocommit=True) as conn:
        shape = _shape(conn, "by_alembic")
        assert _shape(conn, "by_replay") == shape
    return MigratedSchemas(postgres_database, script, shape)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for a fresh store of each kind: empty, or with ``services`` migrated and empty."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("store") / "microfleet.db"
        return Settings(database_url=f"sqlite:///{path}")
    database_url = request.getfixturevalue("postgres_database")
    if "services" in request.fixturenames:
        schema = request.getfixturevalue("migrated_schemas").take()
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
    return Settings(database_url=database_url, database_schema=schema)


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
    """The services over ``settings``' store, which starts migrated (see the module's docstring)."""
    postgres = (
        settings.database_schema is not None
        and make_url(settings.database_url).get_backend_name() == "postgresql"
    )
    if postgres:
        schemas: MigratedSchemas = request.getfixturevalue("migrated_schemas")
        if not schemas.was_taken(settings.database_schema):  # services asked for by name: an empty schema
            schemas.migrate(settings.database_schema)
    else:
        database = make_url(settings.database_url).database
        assert database is not None
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), database)
    built = build_services(settings, migrate=False, clock=clock)
    yield built
    built.close()
    if postgres:
        schemas.give_back(settings.database_schema)
