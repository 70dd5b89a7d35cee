"""energy source: how each drive's and charge's energy was measured, and the SoC resolution it has

Revision ID: 0010_energy_source
Revises: 0008_tracker_keys
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_energy_source"
down_revision: str | None = "0008_tracker_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("history_drives", "history_charges")


def upgrade() -> None:
    # Rows derived before this revision keep NULL (source unknown) until the car is re-derived.
    for table in TABLES:
        op.add_column(table, sa.Column("energy_source", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("energy_resolution_kwh", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("energy_resolution_kwh")
            batch_op.drop_column("energy_source")
