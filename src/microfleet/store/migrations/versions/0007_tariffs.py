"""tariffs: users' own tariffs (time-of-use, day-ahead, flat, per kWh, per minute) for a car, fleet or all

Revision ID: 0007_tariffs
Revises: 0006_device_rotation
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_tariffs"
down_revision: str | None = "0006_device_rotation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tariffs",
        sa.Column("tariff_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=True),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("tariff_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tariff_id", name=op.f("pk_tariffs")),
    )
    op.create_index("ix_tariffs_fleet", "tariffs", ["fleet_id"], unique=False)
    op.create_index("ix_tariffs_vehicle", "tariffs", ["vehicle_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tariffs_vehicle", table_name="tariffs")
    op.drop_index("ix_tariffs_fleet", table_name="tariffs")
    op.drop_table("tariffs")
