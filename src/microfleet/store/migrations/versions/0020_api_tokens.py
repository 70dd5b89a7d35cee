"""API tokens and invitations made from the web app

Revision ID: 0020_api_tokens
Revises: 0019_maintenance
"""

from collections.abc import Sequence

revision: str = "0020_api_tokens"
down_revision: str | None = "0019_maintenance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
