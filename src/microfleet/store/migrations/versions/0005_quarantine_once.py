"""quarantine once: an idempotency key per quarantined row, unique, so a re-sent refused record is kept once

Revision ID: 0005_quarantine_once
Revises: 0004_energy_counters
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_quarantine_once"
down_revision: str | None = "0004_energy_counters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows quarantined before this revision keep a NULL key: NULLs never collide in a UNIQUE index (SQLite
    # and PostgreSQL alike), so the duplicates they may already hold stay as they are and no old row is
    # rewritten; a refused record first quarantined before the upgrade and re-sent after it is kept once more.
    op.add_column("quarantine", sa.Column("dedup_key", sa.BigInteger(), nullable=True))
    op.create_index("ix_quarantine_dedup_key", "quarantine", ["dedup_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_quarantine_dedup_key", table_name="quarantine")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("dedup_key")
