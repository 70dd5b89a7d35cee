"""The store's tables (SQLAlchemy Core). One schema for SQLite and PostgreSQL; Alembic migrates it.

Telemetry is one wide table with a column per protocol-v1 signal (derived from ``SIGNALS``), keyed
``(vehicle_id, ts_ms)``: that key is what makes a re-sent record a no-op.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from microfleet.domain.telemetry import SIGNALS, TYRE_POSITIONS

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ROLES = ("owner", "driver", "operator", "admin")

fleets = Table(
    "fleets",
    metadata,
    Column("fleet_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id"), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    CheckConstraint("role IN ('owner', 'driver', 'operator', 'admin')", name="role"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", Integer, primary_key=True, autoincrement=True),
    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is enough (no password stretching).
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("revoked_at_ms", BigInteger, nullable=True),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("vehicle_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("model_id", String(120), nullable=True),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id"), nullable=True),
    Column("device_token_sha256", String(64), nullable=False, unique=True),
    Column("created_at_ms", BigInteger, nullable=False),
    # The credential a rotation replaced, still accepted until its expiry (migration 0006).
    Column("previous_device_token_sha256", String(64), nullable=True),
    Column("previous_device_token_expires_at_ms", BigInteger, nullable=True),
    Index("ix_vehicles_previous_device_token_sha256", "previous_device_token_sha256", unique=True),
)

# A phone's OsmAnd / Traccar Client key (one per vehicle, migration 0008): SHA-256 like the tokens above,
# as it is 160-bit random; ``key_hint`` is its first 8 characters, so a listing can tell keys apart.
tracker_keys = Table(
    "tracker_keys",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("key_hint", String(16), nullable=False),
    Column("issued_at_ms", BigInteger, nullable=False),
)

grants = Table(
    "grants",
    metadata,
    Column("grant_id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=True),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id", ondelete="CASCADE"), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    CheckConstraint("(user_id IS NULL) <> (fleet_id IS NULL)", name="one_grantee"),
    Index("ix_grants_user_vehicle", "user_id", "vehicle_id", unique=True),
    Index("ix_grants_fleet_vehicle", "fleet_id", "vehicle_id", unique=True),
)


def _signal_columns() -> list[Column[object]]:
    columns: list[Column[object]] = []
    for spec in SIGNALS:
        if spec.kind == "float":
            columns.append(Column(spec.name, Float, nullable=True))
        elif spec.kind == "bool":
            columns.append(Column(spec.name, Boolean, nullable=True))
        elif spec.kind == "gear":
            columns.append(Column(spec.name, String(1), nullable=True))
        elif spec.kind == "tyres":
            columns.extend(Column(f"tyre_pressure_{pos}_kpa", Float, nullable=True) for pos in TYRE_POSITIONS)
        else:  # codes: a JSON array as text
            columns.append(Column(spec.name, Text, nullable=True))
    return columns


telemetry = Table(
    "telemetry",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id"), primary_key=True),
    Column("ts_ms", BigInteger, primary_key=True),
    *_signal_columns(),
    # 64-bit digest of the record's canonical JSON: tells a re-sent record from a conflicting one.
    Column("record_digest", BigInteger, nullable=False),
    Column("received_at_ms", BigInteger, nullable=False),
)

vehicle_latest = Table(
    "vehicle_latest",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("last_ts_ms", BigInteger, nullable=False),
    Column("record_count", BigInteger, nullable=False),
)

# The newest value of every signal of a vehicle, whichever record carried it; kept by upserts that keep
# the newer timestamp, so late records never overwrite fresher values.
vehicle_latest_signals = Table(
    "vehicle_latest_signals",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("signal", String(40), primary_key=True),
    Column("ts_ms", BigInteger, nullable=False),
    Column("value_json", Text, nullable=False),
)

# Cars whose derived history (drives, charges, states) is behind their telemetry, and from when: written in
# the same transaction as the telemetry, so no accepted record is ever left underived, even after a crash.
history_stale = Table(
    "history_stale",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("from_ms", BigInteger, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("received_at_ms", BigInteger, nullable=False),
    Column("source", String(200), nullable=False),
    Column("credential_vehicle_id", String(64), nullable=True),
    Column("vehicle_id", String(200), nullable=True),
    Column("ts_ms", BigInteger, nullable=True),
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("raw_text", Text, nullable=False),
    Column("replayed_at_ms", BigInteger, nullable=True),
    Column("replay_status", String(20), nullable=True),
    # 64-bit digest of (sending credential, reason, the refused bytes in full): one row per refused record
    # however often it is sent. NULL for rows quarantined before revision 0005 (NULLs never collide).
    Column("dedup_key", BigInteger, nullable=True),
    Index("ix_quarantine_received", "received_at_ms"),
    Index("ix_quarantine_vehicle", "vehicle_id", "received_at_ms"),
    Index("ix_quarantine_credential", "credential_vehicle_id", "received_at_ms"),
    Index("ix_quarantine_dedup_key", "dedup_key", unique=True),
)

# Charging (docs/charging.md): a fleet's depots with their grid connection's limit, the OCPP charge points
# there, the transactions they report, and the plans Microfleet made for the fleet.
charging_sites = Table(
    "charging_sites",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("power_limit_kw", Float, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_charging_sites_fleet", "fleet_id"),
)

charge_points = Table(
    "charge_points",
    metadata,
    # The OCPP identity: the last path segment of the charger's WebSocket URL.
    Column("charge_point_id", String(64), primary_key=True),
    Column("site_id", String(64), ForeignKey("charging_sites.site_id", ondelete="CASCADE"), nullable=False),
    Column("connectors", Integer, nullable=False),
    Column("max_kw", Float, nullable=False),
    Column("min_current_a", Float, nullable=False),
    Column("phases", Integer, nullable=False),
    Column("voltage_v", Float, nullable=False),
    # True: OCPP smart charging (SetChargingProfile); False: a dumb charger, the car is commanded instead.
    Column("smart", Boolean, nullable=False),
    # SHA-256 of the charger's Basic-auth password (256-bit random, so a fast hash is enough).
    Column("password_sha256", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("status_at_ms", BigInteger, nullable=True),
    Column("last_seen_ms", BigInteger, nullable=True),
    Column("vendor", String(64), nullable=True),
    Column("model", String(64), nullable=True),
    # What GetConfiguration answered (JSON object of key -> value), read once the charger has booted.
    Column("config_json", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Index("ix_charge_points_site", "site_id"),
)

charging_transactions = Table(
    "charging_transactions",
    metadata,
    Column("transaction_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "charge_point_id",
        String(64),
        ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("connector_id", Integer, nullable=False),
    Column("id_tag", String(20), nullable=False),
    # The car the id tag names (a vehicle id); NULL when it names none Microfleet knows.
    Column("vehicle_id", String(64), nullable=True),
    Column("start_ms", BigInteger, nullable=False),
    Column("meter_start_wh", BigInteger, nullable=False),
    Column("stop_ms", BigInteger, nullable=True),
    Column("meter_stop_wh", BigInteger, nullable=True),
    Column("stop_reason", String(32), nullable=True),
    Column("power_kw", Float, nullable=True),
    Column("energy_wh", Float, nullable=True),
    Column("meter_at_ms", BigInteger, nullable=True),
    Index("ix_charging_transactions_point", "charge_point_id", "stop_ms"),
)

charging_plans = Table(
    "charging_plans",
    metadata,
    Column("plan_id", Integer, primary_key=True, autoincrement=True),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id", ondelete="CASCADE"), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    # SHA-256 of the snapshot the plan was made from: the same inputs keep the plan (a stable plan).
    Column("inputs_sha256", String(64), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("cost", Float, nullable=False),
    Column("peak_kw", Float, nullable=False),
    Column("carbon_kg", Float, nullable=True),
    Column("losses_kwh", Float, nullable=False),
    Column("gap", Float, nullable=True),
    # The plan itself as JSON: slot start and length, per car per slot kW, expected SoC at each booking,
    # the explanation per car, unserved bookings.
    Column("plan_json", Text, nullable=False),
    Index("ix_charging_plans_fleet", "fleet_id", "created_at_ms"),
)

# Battery models per car (migration 0016, docs/battery.md): the fitted state of its SoH and range models,
# the model version and the data window it was fitted on; replaced whole at every refit.
battery_states = Table(
    "battery_states",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at_ms", BigInteger, nullable=False),
    Column("data_from_ms", BigInteger, nullable=True),
    Column("data_to_ms", BigInteger, nullable=True),
    Column("charges_seen", Integer, nullable=False),
    Column("drives_seen", Integer, nullable=False),
    # SoH points and estimate, range model parameters, pack checks: intelligence/soh.py, range_model.py
    Column("state_json", Text, nullable=False),
)

# Maintenance (migration 0019, docs/maintenance.md): each detector's latest answer per car and condition,
# interval service items (every N km / days, per car or fleet), service records, false-alarm marks.
_VEHICLE_FK = "vehicles.vehicle_id"
maintenance_findings = Table(
    "maintenance_findings",
    metadata,
    Column("vehicle_id", String(64), ForeignKey(_VEHICLE_FK, ondelete="CASCADE"), primary_key=True),
    Column("detector", String(32), primary_key=True),
    Column("condition", String(64), primary_key=True),
    Column("verdict", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("evidence_json", Text, nullable=False),
    Column("learning_days_needed", Float, nullable=True),
    Column("evaluated_at_ms", BigInteger, nullable=False),
    Column("data_to_ms", BigInteger, nullable=True),
)
maintenance_intervals = Table(
    "maintenance_intervals",
    metadata,
    Column("interval_id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), ForeignKey(_VEHICLE_FK, ondelete="CASCADE"), nullable=True),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id", ondelete="CASCADE"), nullable=True),
    Column("item", String(64), nullable=False),
    Column("every_km", Float, nullable=True),
    Column("every_days", Float, nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
)
maintenance_records = Table(
    "maintenance_records",
    metadata,
    Column("record_id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", String(64), ForeignKey(_VEHICLE_FK, ondelete="CASCADE"), nullable=False),
    Column("item", String(64), nullable=False),
    Column("done_at_ms", BigInteger, nullable=False),
    Column("odometer_km", Float, nullable=True),
    Column("note", Text, nullable=False),
    Column("created_by", Integer, nullable=True),
    Index("ix_maintenance_records_vehicle", "vehicle_id", "done_at_ms"),
)
maintenance_thresholds = Table(
    "maintenance_thresholds",
    metadata,
    Column("vehicle_id", String(64), ForeignKey(_VEHICLE_FK, ondelete="CASCADE"), primary_key=True),
    Column("detector", String(32), primary_key=True),
    Column("false_alarms", Integer, nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)
