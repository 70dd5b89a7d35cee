"""charging: sites, charge points, plans and their slots

Revision ID: 0017_charging
Revises: 0016_battery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_charging"
down_revision: str | None = "0016_battery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charging_sites",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("power_limit_kw", sa.Float(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"],
            ["fleets.fleet_id"],
            name=op.f("fk_charging_sites_fleet_id_fleets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_charging_sites")),
    )
    op.create_index("ix_charging_sites_fleet", "charging_sites", ["fleet_id"], unique=False)
    op.create_table(
        "charge_points",
        sa.Column("charge_point_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("connectors", sa.Integer(), nullable=False),
        sa.Column("max_kw", sa.Float(), nullable=False),
        sa.Column("min_current_a", sa.Float(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        sa.Column("smart", sa.Boolean(), nullable=False),
        sa.Column("password_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("vendor", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=64), nullable=True),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["charging_sites.site_id"],
            name=op.f("fk_charge_points_site_id_charging_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("charge_point_id", name=op.f("pk_charge_points")),
    )
    op.create_index("ix_charge_points_site", "charge_points", ["site_id"], unique=False)
    op.create_table(
        "charging_transactions",
        sa.Column("transaction_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("charge_point_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=20), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("meter_start_wh", sa.BigInteger(), nullable=False),
        sa.Column("stop_ms", sa.BigInteger(), nullable=True),
        sa.Column("meter_stop_wh", sa.BigInteger(), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("power_kw", sa.Float(), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=True),
        sa.Column("meter_at_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_charging_transactions_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("transaction_id", name=op.f("pk_charging_transactions")),
    )
    op.create_index(
        "ix_charging_transactions_point",
        "charging_transactions",
        ["charge_point_id", "stop_ms"],
        unique=False,
    )
    op.create_table(
        "charging_plans",
        sa.Column("plan_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("peak_kw", sa.Float(), nullable=False),
        sa.Column("carbon_kg", sa.Float(), nullable=True),
        sa.Column("losses_kwh", sa.Float(), nullable=False),
        sa.Column("gap", sa.Float(), nullable=True),
        sa.Column("plan_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["fleet_id"],
            ["fleets.fleet_id"],
            name=op.f("fk_charging_plans_fleet_id_fleets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_charging_plans")),
    )
    op.create_index("ix_charging_plans_fleet", "charging_plans", ["fleet_id", "created_at_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_charging_plans_fleet", table_name="charging_plans")
    op.drop_table("charging_plans")
    op.drop_index("ix_charging_transactions_point", table_name="charging_transactions")
    op.drop_table("charging_transactions")
    op.drop_index("ix_charge_points_site", table_name="charge_points")
    op.drop_table("charge_points")
    op.drop_index("ix_charging_sites_fleet", table_name="charging_sites")
    op.drop_table("charging_sites")
