"""remote commands, command keys, bookings and the audit log

Revision ID: 0012_commands
Revises: 0011_telemetry_partitions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_commands"
down_revision: str | None = "0011_telemetry_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("command_id", sa.String(length=36), nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("sent_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("result_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("result_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_commands_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("command_id", name=op.f("pk_commands")),
    )
    op.create_index("ix_commands_idempotency", "commands", ["issued_by", "idempotency_key"], unique=True)
    op.create_index("ix_commands_status_expiry", "commands", ["status", "expires_at_ms"], unique=False)
    op.create_index("ix_commands_vehicle_issued", "commands", ["vehicle_id", "issued_at_ms"], unique=False)
    op.create_table(
        "command_events",
        sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("command_id", sa.String(length=36), nullable=True),
        sa.Column("vehicle_id", sa.String(length=200), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["commands.command_id"],
            name=op.f("fk_command_events_command_id_commands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_command_events")),
    )
    op.create_index("ix_command_events_vehicle", "command_events", ["vehicle_id", "event_id"], unique=False)
    op.create_index("ix_command_events_command", "command_events", ["command_id"], unique=False)
    op.create_table(
        "command_keys",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("sealed_private_key", sa.Text(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("retired_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("listed_until_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_command_keys_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vehicle_id", "key_id", name=op.f("pk_command_keys")),
    )
    op.create_index(
        "ix_command_keys_current",
        "command_keys",
        ["vehicle_id"],
        unique=True,
        sqlite_where=sa.text("retired_at_ms IS NULL"),
        postgresql_where=sa.text("retired_at_ms IS NULL"),
    )
    op.create_table(
        "bookings",
        sa.Column("booking_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("cancelled_at_ms", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("end_ms > start_ms", name=op.f("ck_bookings_window")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name=op.f("fk_bookings_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["vehicles.vehicle_id"],
            name=op.f("fk_bookings_vehicle_id_vehicles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_vehicle_start", "bookings", ["vehicle_id", "start_ms"], unique=False)
    op.create_index("ix_bookings_user", "bookings", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("bookings")
    op.drop_index("ix_command_keys_current", table_name="command_keys")
    op.drop_table("command_keys")
    op.drop_table("command_events")
    op.drop_table("commands")
