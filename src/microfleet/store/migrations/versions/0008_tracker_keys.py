"""tracker keys: each vehicle's OsmAnd / Traccar Client key, stored as its SHA-256

Revision ID: 0008_tracker_keys
Revises: 0007_tariffs
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_tracker_keys"
down_revision: str | None = "0007_tariffs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tracker_keys",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=16), nullable=False),
        sa.Column("issued_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_tracker_keys_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", name=op.f("pk_tracker_keys")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_tracker_keys_key_sha256")),
    )


def downgrade() -> None:
    op.drop_table("tracker_keys")
