"""remote commands, command keys, bookings and the audit log

Revision ID: 0012_commands
Revises: 0011_telemetry_partitions
"""

from collections.abc import Sequence

revision: str = "0012_commands"
down_revision: str | None = "0011_telemetry_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
