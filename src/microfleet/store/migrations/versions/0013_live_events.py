"""the live feed's event log

Revision ID: 0013_live_events
Revises: 0012_commands
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_live_events"
down_revision: str | None = "0012_commands"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_live_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_live_events_created_at_ms", "live_events", ["created_at_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_live_events_created_at_ms", table_name="live_events")
    op.drop_table("live_events")
