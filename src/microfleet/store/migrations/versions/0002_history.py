"""history: derived states, drives, charges, parked drain, excluded records, places

Revision ID: 0002_history
Revises: 0001_spine
Create Date: 2026-11-25 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_history"
down_revision: str | None = "0001_spine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "history_states",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("start_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("resume_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("vehicle_id", "start_ts_ms", name=op.f("pk_history_states")),
    )
    op.create_table(
        "history_drives",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("start_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("start_lat_deg", sa.Float(), nullable=True),
        sa.Column("start_lon_deg", sa.Float(), nullable=True),
        sa.Column("end_lat_deg", sa.Float(), nullable=True),
        sa.Column("end_lon_deg", sa.Float(), nullable=True),
        sa.Column("start_place_id", sa.Text(), nullable=True),
        sa.Column("end_place_id", sa.Text(), nullable=True),
        sa.Column("distance_odometer_km", sa.Float(), nullable=True),
        sa.Column("distance_gps_km", sa.Float(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("energy_used_kwh", sa.Float(), nullable=True),
        sa.Column("energy_soc_kwh", sa.Float(), nullable=True),
        sa.Column("regen_kwh", sa.Float(), nullable=True),
        sa.Column("efficiency_wh_per_km", sa.Float(), nullable=True),
        sa.Column("max_speed_kmh", sa.Float(), nullable=True),
        sa.Column("ascent_m", sa.Float(), nullable=True),
        sa.Column("descent_m", sa.Float(), nullable=True),
        sa.Column("ambient_temp_c", sa.Float(), nullable=True),
        sa.Column("soc_start_pct", sa.Float(), nullable=True),
        sa.Column("soc_end_pct", sa.Float(), nullable=True),
        sa.Column("data_gap_s", sa.Float(), nullable=True),
        sa.Column("record_count", sa.BigInteger(), nullable=True),
        sa.Column("route_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "start_ts_ms", name=op.f("pk_history_drives")),
    )
    op.create_table(
        "history_charges",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("start_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("power_end_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("lat_deg", sa.Float(), nullable=True),
        sa.Column("lon_deg", sa.Float(), nullable=True),
        sa.Column("place_id", sa.Text(), nullable=True),
        sa.Column("soc_from_pct", sa.Float(), nullable=True),
        sa.Column("soc_to_pct", sa.Float(), nullable=True),
        sa.Column("energy_added_kwh", sa.Float(), nullable=True),
        sa.Column("energy_grid_kwh", sa.Float(), nullable=True),
        sa.Column("losses_kwh", sa.Float(), nullable=True),
        sa.Column("peak_power_kw", sa.Float(), nullable=True),
        sa.Column("mean_power_kw", sa.Float(), nullable=True),
        sa.Column("current_kind", sa.Text(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.Column("tariff_id", sa.Text(), nullable=True),
        sa.Column("idle_after_full_s", sa.Float(), nullable=True),
        sa.Column("record_count", sa.BigInteger(), nullable=True),
        sa.Column("kwh_per_soc_pct", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("vehicle_id", "start_ts_ms", name=op.f("pk_history_charges")),
    )
    op.create_table(
        "history_drains",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("start_ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ts_ms", sa.BigInteger(), nullable=True),
        sa.Column("asleep", sa.Boolean(), nullable=True),
        sa.Column("energy_kwh", sa.Float(), nullable=True),
        sa.Column("drain_w", sa.Float(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("vehicle_id", "start_ts_ms", name=op.f("pk_history_drains")),
    )
    op.create_table(
        "history_excluded",
        sa.Column("vehicle_id", sa.String(length=64), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "ts_ms", name=op.f("pk_history_excluded")),
    )
    op.create_table(
        "places",
        sa.Column("place_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("fleet_id", sa.String(length=64), nullable=True),
        sa.Column("vehicle_id", sa.String(length=64), nullable=True),
        sa.Column("geometry_json", sa.Text(), nullable=False),
        sa.Column("tariff_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("place_id", name=op.f("pk_places")),
    )
    op.create_index("ix_places_vehicle", "places", ["vehicle_id"], unique=False)
    op.create_index("ix_places_fleet", "places", ["fleet_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_places_vehicle", table_name="places")
    op.drop_index("ix_places_fleet", table_name="places")
    op.drop_table("places")
    op.drop_table("history_excluded")
    op.drop_table("history_drains")
    op.drop_table("history_charges")
    op.drop_table("history_drives")
    op.drop_table("history_states")
