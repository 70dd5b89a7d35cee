"""history_stale: cars whose derived history is behind their telemetry, written with the telemetry

Revision ID: 0003_history_stale
Revises: 0002_history
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_history_stale"
down_revision: str | None = "0002_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_stale",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("from_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_history_stale_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_history_stale")),
    )


def downgrade() -> None:
    op.drop_table("history_stale")
