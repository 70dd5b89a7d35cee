"""maintenance: detector state, service items and driver scores

Revision ID: 0019_maintenance
Revises: 0018_routes
"""

from collections.abc import Sequence

revision: str = "0019_maintenance"
down_revision: str | None = "0018_routes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
