"""PostgreSQL telemetry partitioned by month

Revision ID: 0011_telemetry_partitions
Revises: 0010_energy_source
"""

from collections.abc import Sequence

revision: str = "0011_telemetry_partitions"
down_revision: str | None = "0010_energy_source"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Reserved in the chain so that work on several tables can land in any order; empty until then.
    pass


def downgrade() -> None:
    pass
