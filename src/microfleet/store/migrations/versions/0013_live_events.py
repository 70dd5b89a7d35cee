"""the live feed's event log

Revision ID: 0013_live_events
Revises: 0012_commands
"""

from collections.abc import Sequence

revision: str = "0013_live_events"
down_revision: str | None = "0012_commands"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
