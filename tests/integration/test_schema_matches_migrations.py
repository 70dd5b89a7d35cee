"""The tables Microfleet declares are the tables its Alembic migrations build, on SQLite and PostgreSQL.

Code reads and writes through the SQLAlchemy declarations (``store/schema.py``, the history tables in
``store/history.py``, ``places`` in ``store/places_store.py``); a store is built by the migrations. A column,
type, nullability, index, unique or foreign key that differs between the two is a bug only one of the
stores shows, so a fresh migrated store is compared with the declarations: Alembic's autogenerate
comparison for what it covers, and the inspector for primary keys and CHECK constraints, which it skips.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Boolean, CheckConstraint, Engine, Float, String, inspect

import microfleet.store.history
import microfleet.store.places_store  # declares ``places`` on the shared metadata
from microfleet.domain.vehicle_state import BOOL_COLUMNS, FLOAT_COLUMNS
from microfleet.errors import ConfigurationError
from microfleet.settings import Settings
from microfleet.store.engine import make_engine
from microfleet.store.migrate import upgrade
from microfleet.store.partitions import is_partition_name
from microfleet.store.schema import metadata, telemetry


@pytest.fixture
def migrated(settings: Settings) -> Iterator[Engine]:
    """A fresh store of each kind, built by every migration up to head."""
    engine = make_engine(settings.database_url, settings.database_schema)
    upgrade(engine, settings.database_schema)
    yield engine
    engine.dispose()


def test_every_declared_table_is_migrated_and_no_other(migrated: Engine) -> None:
    names = inspect(migrated).get_table_names()  # PostgreSQL lists telemetry's partitions as tables too
    migrated_tables = {name for name in names if not is_partition_name(name)} - {"alembic_version"}
    assert migrated_tables == set(metadata.tables)
    assert {"history_drives", "history_charges", "history_drains", "places"} <= migrated_tables


def test_columns_types_nullability_indexes_and_keys_match(migrated: Engine) -> None:
    with migrated.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_name": lambda name, type_, _parent: (
                    not (type_ == "table" and is_partition_name(name))
                ),
            },
        )
        differences = compare_metadata(context, metadata)
    assert differences == [], "declarations and migrations differ:\n" + "\n".join(map(str, differences))


def test_primary_keys_and_check_constraints_match(migrated: Engine) -> None:
    inspector = inspect(migrated)
    for table in metadata.sorted_tables:
        declared_pk = [c.name for c in table.primary_key.columns]
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == declared_pk, table.name
        declared_checks = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
        migrated_checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert migrated_checks == declared_checks, table.name


def test_derivation_reads_telemetry_columns_of_its_kinds() -> None:
    """What ``load_window`` selects (from ``TelemetryColumns``) exists in ``telemetry`` with that type."""
    for name in FLOAT_COLUMNS:
        assert isinstance(telemetry.c[name].type, Float), name
    for name in BOOL_COLUMNS:
        assert isinstance(telemetry.c[name].type, Boolean), name
    assert isinstance(telemetry.c["gear"].type, String)


def test_a_field_type_without_a_column_type_fails_loudly() -> None:
    @dataclasses.dataclass
    class Odd:
        vehicle_id: str
        start_ts_ms: int
        soc_pct: float | None
        route: tuple[tuple[float, float], ...]

    columns_of: Any = microfleet.store.history._columns_of
    kept = columns_of(Odd, ("vehicle_id", "start_ts_ms", "route"))
    assert [(c.name, type(c.type), c.nullable) for c in kept] == [("soc_pct", Float, True)]
    with pytest.raises(ConfigurationError, match=r"Odd: field route"):
        columns_of(Odd, ("vehicle_id", "start_ts_ms"))
