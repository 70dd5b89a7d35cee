"""device rotation: a vehicle's previous device credential keeps working until its expiry

Revision ID: 0006_device_rotation
Revises: 0005_quarantine_once
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_device_rotation"
down_revision: str | None = "0005_quarantine_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Both NULL for every vehicle until its first rotation: no credential changes meaning on upgrade.
    op.add_column("vehicles", sa.Column("previous_device_token_sha256", sa.String(64), nullable=True))
    op.add_column(
        "vehicles", sa.Column("previous_device_token_expires_at_ms", sa.BigInteger(), nullable=True)
    )
    op.create_index(
        "ix_vehicles_previous_device_token_sha256", "vehicles", ["previous_device_token_sha256"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_vehicles_previous_device_token_sha256", table_name="vehicles")
    with op.batch_alter_table("vehicles", schema=None) as batch_op:
        batch_op.drop_column("previous_device_token_expires_at_ms")
        batch_op.drop_column("previous_device_token_sha256")
