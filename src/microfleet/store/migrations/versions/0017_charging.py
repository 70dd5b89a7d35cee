"""charging: sites, charge points, plans and their slots

Revision ID: 0017_charging
Revises: 0016_battery
"""

from collections.abc import Sequence

revision: str = "0017_charging"
down_revision: str | None = "0016_battery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
