"""Bring the store's schema up to date with Alembic (``microfleet db upgrade``)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from microfleet.errors import StoreUnavailableError


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration that runs the packaged migrations on ``engine``."""
    config = Config()
    config.set_main_option("script_location", "microfleet.store:migrations")
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, schema: str | None = None, revision: str = "head") -> None:
    """Create ``schema`` if needed (PostgreSQL) and apply every migration up to ``revision``.

    On PostgreSQL it then creates the telemetry partitions of the current month and the months ahead
    that are missing (``store/partitions.py``).
    """
    if schema is not None and engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    command.upgrade(alembic_config(engine), revision)
    if engine.dialect.name == "postgresql":  # every process that opens the store has the months ahead
        from microfleet.store.partitions import TelemetryPartitions

        partitions = TelemetryPartitions(engine)
        if partitions.supported():
            try:
                partitions.ensure_ahead()
            except StoreUnavailableError:  # telemetry busy: DEFAULT takes any record meanwhile
                logging.getLogger(__name__).warning(
                    "telemetry was too busy to create its months ahead; the next start or the server's "
                    "keeper tries again (microfleet db partitions ensure does it now)"
                )


def current_revision(engine: Engine) -> str | None:
    """The revision the store is at, or None for an empty store."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class StoreProbe:
    """Whether the store answers, and at which schema revision (the readiness probe's port)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def schema_revision(self) -> str | None:
        """The schema revision (None: never migrated); :class:`StoreUnavailableError` if unreachable."""
        return current_revision(self._engine)
