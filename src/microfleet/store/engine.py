"""Open the store: a SQLAlchemy engine for SQLite (WAL) or PostgreSQL, from settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError

from microfleet.errors import ConfigurationError, StoreUnavailableError

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (API, dashboard) run while ingest writes; NORMAL sync is durable at each WAL checkpoint
    # and is what the SQLite docs recommend with WAL (https://www.sqlite.org/pragma.html#pragma_synchronous).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _unavailable(context: ExceptionContext) -> None:
    """Turn a lost or refused database connection into :class:`StoreUnavailableError` (503, retry).

    A broken connection, a refused connect, a database shutting down or a lock held too long are
    ``OperationalError``s (PEP 249); errors of the statement itself (constraints, bad SQL) pass unchanged.
    """
    if context.is_disconnect or isinstance(context.sqlalchemy_exception, OperationalError | InterfaceError):
        raise StoreUnavailableError(
            "the database is unreachable or busy; retry in a few seconds"
        ) from context.original_exception


_URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
_WHERE = "MICROFLEET_DATABASE_URL (or --database-url)"
DEFAULT_SQLITE_FOLDER = Path("var")  # the default store's folder, created when missing; no other is


def make_engine(database_url: str, schema: str | None = None) -> Engine:
    """Create the engine for ``database_url``; ``schema`` selects a PostgreSQL schema (one per test run).

    A URL that is not a store Microfleet can use is a :class:`ConfigurationError`, and so is a SQLite file
    in a folder that does not exist (a typo would otherwise make a new, empty store): only the default
    ``var/`` folder is created.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigurationError(
            f"{_WHERE} {database_url!r} is not a database URL; use {_URL_FORMS}"
        ) from None
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            folder = Path(url.database).parent
            if folder == DEFAULT_SQLITE_FOLDER:
                folder.mkdir(exist_ok=True)
            elif not folder.is_dir():
                raise ConfigurationError(
                    f"the folder {str(folder)!r} of the SQLite store {url.database!r} does not exist; "
                    f"create it, or fix {_WHERE}"
                )
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _unavailable)
        return engine
    if url.get_backend_name() == "postgresql":
        connect_args: dict[str, Any] = {}
        if schema is not None:
            if not _SCHEMA_NAME.match(schema):
                raise ConfigurationError(f"database_schema {schema!r} is not a plain lower-case SQL name")
            connect_args["options"] = f"-csearch_path={schema}"
        engine = create_engine(
            url, connect_args=connect_args, pool_size=8, max_overflow=8, pool_pre_ping=True
        )
        event.listen(engine, "handle_error", _unavailable)
        return engine
    raise ConfigurationError(
        f"{_WHERE} names a {url.get_backend_name()!r} database; Microfleet stores in {_URL_FORMS}"
    )
