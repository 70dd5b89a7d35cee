"""maintenance: detector findings, service intervals and records, false-alarm threshold adjustments

Revision ID: 0019_maintenance
Revises: 0018_routes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_maintenance"
down_revision: str | None = "0018_routes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _vehicle_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["vehicle_id"],
        ["vehicles.vehicle_id"],
        name=op.f(f"fk_{table}_vehicle_id_vehicles"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "maintenance_findings",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("condition", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence_json", sa.Text(), nullable=False),
        sa.Column("learning_days_needed", sa.Float(), nullable=True),
        sa.Column("evaluated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("data_to_ms", sa.BigInteger(), nullable=True),
        _vehicle_fk("maintenance_findings"),
        sa.PrimaryKeyConstraint("vehicle_id", "detector", "condition", name=op.f("pk_maintenance_findings")),
    )
    op.create_table(
        "maintenance_intervals",
        sa.Column("interval_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("fleet_id", sa.String(length=64), nullable=True),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("every_km", sa.Float(), nullable=True),
        sa.Column("every_days", sa.Float(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        _vehicle_fk("maintenance_intervals"),
        sa.ForeignKeyConstraint(
            ["fleet_id"],
            ["fleets.fleet_id"],
            name=op.f("fk_maintenance_intervals_fleet_id_fleets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interval_id", name=op.f("pk_maintenance_intervals")),
    )
    op.create_table(
        "maintenance_records",
        sa.Column("record_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("item", sa.String(length=64), nullable=False),
        sa.Column("done_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("odometer_km", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _vehicle_fk("maintenance_records"),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_maintenance_records")),
    )
    op.create_index("ix_maintenance_records_vehicle", "maintenance_records", ["vehicle_id", "done_at_ms"])
    op.create_table(
        "maintenance_thresholds",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("detector", sa.String(length=32), nullable=False),
        sa.Column("false_alarms", sa.Integer(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        _vehicle_fk("maintenance_thresholds"),
        sa.PrimaryKeyConstraint("vehicle_id", "detector", name=op.f("pk_maintenance_thresholds")),
    )


def downgrade() -> None:
    op.drop_table("maintenance_thresholds")
    op.drop_index("ix_maintenance_records_vehicle", table_name="maintenance_records")
    op.drop_table("maintenance_records")
    op.drop_table("maintenance_intervals")
    op.drop_table("maintenance_findings")
