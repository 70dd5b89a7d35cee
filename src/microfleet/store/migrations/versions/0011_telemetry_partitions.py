"""PostgreSQL telemetry partitioned by month

On PostgreSQL ``telemetry`` becomes ``PARTITION BY RANGE (ts_ms)``: a partition per UTC month that holds
rows, the current month and ``MONTHS_AHEAD`` after it, and a DEFAULT partition for any other month; every
row is copied across. Same columns, primary key and foreign key as before. SQLite is left as it is.

Revision ID: 0011_telemetry_partitions
Revises: 0010_energy_source
"""

from collections.abc import Sequence

from alembic import op

from microfleet.store.partitions import (
    DEFAULT_PARTITION,
    MONTHS_AHEAD,
    Month,
    create_month,
    months_held,
    wall_clock_ms,
)

revision: str = "0011_telemetry_partitions"
down_revision: str | None = "0010_energy_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "telemetry_unpartitioned"
_KEYS = (
    "ALTER TABLE telemetry ADD CONSTRAINT pk_telemetry PRIMARY KEY (vehicle_id, ts_ms)",
    "ALTER TABLE telemetry ADD CONSTRAINT fk_telemetry_vehicle_id_vehicles "
    "FOREIGN KEY (vehicle_id) REFERENCES vehicles (vehicle_id)",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE telemetry RENAME TO {_OLD}")
    op.execute(f"ALTER TABLE {_OLD} RENAME CONSTRAINT pk_telemetry TO pk_{_OLD}")
    op.execute(f"CREATE TABLE telemetry (LIKE {_OLD} INCLUDING DEFAULTS) PARTITION BY RANGE (ts_ms)")
    now = Month.of_ms(wall_clock_ms())
    for month in sorted({*months_held(bind, _OLD), *(now.plus(i) for i in range(MONTHS_AHEAD + 1))}):
        create_month(bind, month)
    op.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF telemetry DEFAULT")
    op.execute(f"INSERT INTO telemetry SELECT * FROM {_OLD}")  # LIKE kept the column order
    op.execute(f"DROP TABLE {_OLD}")
    for statement in _KEYS:  # after the copy: one index build and one key check, not one per row
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE {_OLD} (LIKE telemetry INCLUDING DEFAULTS)")
    op.execute(f"INSERT INTO {_OLD} SELECT * FROM telemetry")
    op.execute("DROP TABLE telemetry")  # and every partition with it
    op.execute(f"ALTER TABLE {_OLD} RENAME TO telemetry")
    for statement in _KEYS:
        op.execute(statement)
