"""battery estimates: per-car SoC, health and range model state

Revision ID: 0016_battery
Revises: 0015_web_accounts
"""

from collections.abc import Sequence

revision: str = "0016_battery"
down_revision: str | None = "0015_web_accounts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
