"""alert rules, alerts and subscriptions

Revision ID: 0014_alerts
Revises: 0013_live_events
"""

from collections.abc import Sequence

revision: str = "0014_alerts"
down_revision: str | None = "0013_live_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
