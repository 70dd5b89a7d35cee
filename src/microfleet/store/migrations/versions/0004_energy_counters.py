"""energy counters: the BMS's cumulative energy used and recovered (protocol v1 minor addition)

Revision ID: 0004_energy_counters
Revises: 0003_history_stale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_energy_counters"
down_revision: str | None = "0003_history_stale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ADD COLUMN puts them after received_at_ms, while store/schema.py lists them after dtc_codes: harmless,
    # every telemetry insert and COPY names its columns.
    op.add_column("telemetry", sa.Column("energy_used_kwh", sa.Float(), nullable=True))
    op.add_column("telemetry", sa.Column("energy_recovered_kwh", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_column("energy_recovered_kwh")
        batch_op.drop_column("energy_used_kwh")
