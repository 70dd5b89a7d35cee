"""Real stores for integration tests: a SQLite file per test, and a PostgreSQL database per run with a
schema per test. Every integration test that takes ``services`` runs on both."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from microfleet.bootstrap import Services, build_services
from microfleet.settings import Settings

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
def services(settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    yield built
    built.close()
