"""battery estimates: per-car SoC, health and range model state

Revision ID: 0016_battery
Revises: 0015_web_accounts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_battery"
down_revision: str | None = "0015_web_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "battery_states",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("fitted_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("data_from_ms", sa.BigInteger(), nullable=True),
        sa.Column("data_to_ms", sa.BigInteger(), nullable=True),
        sa.Column("charges_seen", sa.Integer(), nullable=False),
        sa.Column("drives_seen", sa.Integer(), nullable=False),
        sa.Column("state_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_battery_states_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_battery_states")),
    )


def downgrade() -> None:
    op.drop_table("battery_states")
