"""web accounts: password hashes and browser sessions

Revision ID: 0015_web_accounts
Revises: 0014_alerts
"""

from collections.abc import Sequence

revision: str = "0015_web_accounts"
down_revision: str | None = "0014_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
