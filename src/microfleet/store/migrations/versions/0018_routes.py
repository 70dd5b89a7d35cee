"""routes: per-car energy models and learned trips

Revision ID: 0018_routes
Revises: 0017_charging
"""

from collections.abc import Sequence

revision: str = "0018_routes"
down_revision: str | None = "0017_charging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
