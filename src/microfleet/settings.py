"""Microfleet's settings: one pydantic-settings class, read from ``MICROFLEET_*`` environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting Microfleet reads; each is documented in ``docs/configuration.md``."""

    model_config = SettingsConfigDict(env_prefix="MICROFLEET_", extra="forbid")

    database_url: str = Field(
        default="sqlite:///var/microfleet.db",
        description="SQLAlchemy URL of the store: sqlite:///PATH (embedded default) or "
        "postgresql+psycopg://USER@HOST:PORT/DB.",
    )
    database_schema: str | None = Field(
        default=None,
        description="PostgreSQL schema to keep Microfleet's tables in (one per test run); None = public.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address `microfleet serve` listens on.")
    http_port: int = Field(
        default=8080, ge=1, le=65535, description="TCP port `microfleet serve` listens on."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses (IPs or CIDR networks, comma-separated) of the reverse proxies whose "
        "X-Forwarded-For/-Proto headers are believed; empty = none, the peer's own address is the client's.",
    )
    auth_failure_burst: int = Field(
        default=20,
        ge=1,
        description="Failed authentications (tokens that match nobody) one client address may make at once "
        "before it is answered 429; counted per server process.",
    )
    auth_failure_per_minute: float = Field(
        default=10.0,
        gt=0,
        description="Failed authentications a client address earns back per minute after its burst.",
    )
    device_credential_overlap_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="How long a vehicle's previous device credential keeps working after a rotation, in s "
        "(the time its unit has to receive the new one); 0 = it stops at once.",
    )
    web_session_lifetime_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="How long a browser's login lasts, in s, from the moment of logging in; then the web app "
        "asks for the password again (and returns to the page it was on).",
    )
    osmand_speed_unit: Literal["kn", "kmh", "mps", "mph"] = Field(
        default="kn",
        description="Unit of the speed parameter of OsmAnd / Traccar Client query reports: kn (knots, what "
        "Traccar Client sends and Traccar assumes), kmh, mps or mph; the JSON form is always m/s.",
    )
    ingest_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest telemetry request body accepted, in bytes."
    )
    ingest_max_batch_records: int = Field(
        default=10_000, ge=1, description="Most telemetry records accepted in one request."
    )
    ingest_max_record_bytes: int = Field(
        default=16 * 1024, ge=256, description="Largest single telemetry record accepted, in bytes."
    )
    page_size_max_records: int = Field(
        default=10_000, ge=10, description="Most rows one page of a list endpoint returns."
    )
    quarantine_max_rows_per_vehicle: int = Field(
        default=10_000,
        ge=1,
        description="Most quarantined rows kept per vehicle (by the credential that sent them); beyond it "
        "the oldest are dropped, replayed ones first.",
    )
    quarantine_page_max_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Most bytes of text (raw text and detail) one page of GET /api/v1/quarantine holds; a "
        "page always holds one row.",
    )
    history_derive_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="How often `serve` derives drives, charges and states of cars with new data, in s; "
        "0 = not in the server (run `microfleet derive` beside it).",
    )
    alerts_interval_s: float = Field(
        default=15.0,
        ge=0,
        description="How often `serve` evaluates alert rules over cars with new data or a due timer, and "
        "sends due notifications, in s; 0 = not in the server (run `microfleet alerts evaluate` beside it).",
    )
    battery_refit_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often `serve` refits the battery models (SoH, range, SoC) of cars whose derived "
        "history moved, in s; 0 = not in the server (`microfleet battery VEHICLE --refit` fits one car).",
    )
    maintenance_interval_s: float = Field(
        default=600.0,
        ge=0,
        description="How often `serve` runs the maintenance detectors over cars with new telemetry, in s; "
        "0 = not in the server (`microfleet maintenance VEHICLE --evaluate` runs one car).",
    )
    charging_replan_interval_s: float = Field(
        default=900.0,
        ge=0,
        description="How often `serve` re-plans each fleet's charging when nothing happened, in s (a "
        "charger's event re-plans at once); 0 = no charging worker in the server.",
    )
    live_resume_window_s: float = Field(
        default=600.0,
        gt=0,
        description="How long the live feed keeps events, in s: a client resuming with an older token gets a "
        "'gap' message (refetch state) instead of the events it missed.",
    )
    live_poll_interval_s: float = Field(
        default=0.15,
        gt=0,
        le=5,
        description="How often each API process reads new live events from the store, in s.",
    )
    live_queue_max_events: int = Field(
        default=10_000,
        ge=100,
        description="Most events waiting for one live-feed client; a client further behind is disconnected "
        "(close 1013) and resumes with its token.",
    )
    live_visibility_refresh_s: float = Field(
        default=5.0,
        gt=0,
        description="How often a live-feed connection's token and visible vehicles are checked again, in s "
        "(a revoked token or grant takes effect within it).",
    )
    command_expiry_default_s: float = Field(
        default=60.0,
        ge=1,
        le=86_400,
        description="How long a remote command waits for its car when the caller gives no expires_in_s, in "
        "s; an offline car's command then expires, never delivered late (docs/commands.md).",
    )
    command_expire_interval_s: float = Field(
        default=1.0,
        ge=0,
        description="How often `serve` moves remote commands past their expiry to 'expired', in s; 0 = not "
        "in the server.",
    )
    command_key_previous_listed_s: float = Field(
        default=86_400.0,
        ge=0,
        description="How long a vehicle's replaced command key stays listed to its car after a rotation, in "
        "s (commands signed before the rotation live at most a day).",
    )
    command_key_encryption_key_path: Path | None = Field(
        default=None,
        description="File holding the 32-byte key that seals vehicles' command private keys (base64), made "
        "on first use with mode 0600; None = $XDG_STATE_HOME/microfleet/command-key-encryption.key "
        "(~/.local/state/...). Never in the database: back it up apart from it.",
    )
    mqtt_host: str | None = Field(
        default=None,
        description="Address of the MQTT broker cars publish to (`microfleet mqtt bridge` ingests from it); "
        "None = no MQTT ingest.",
    )
    mqtt_port: int = Field(default=1883, ge=1, le=65535, description="TCP port of the MQTT broker.")
    mqtt_tls: bool = Field(default=False, description="Connect to the broker over TLS (port 8883 is usual).")
    mqtt_tls_ca_path: Path | None = Field(
        default=None,
        description="CA certificate file the broker's TLS certificate is checked against; "
        "None = the system's CAs.",
    )
    mqtt_topic_prefix: str = Field(
        default="microfleet",
        description="First level of every Microfleet topic: cars publish to PREFIX/v1/VEHICLE_ID/telemetry.",
    )
    mqtt_username: str = Field(
        default="microfleet-ingest", description="Microfleet's own broker user (never a vehicle id)."
    )
    mqtt_password: str | None = Field(
        default=None, description="Password of Microfleet's broker user (`microfleet mqtt setup` prints one)."
    )
    mqtt_client_id: str = Field(
        default="microfleet-ingest",
        description="MQTT client id of the bridge; its persistent session keeps cars' messages while it "
        "is away.",
    )
    mqtt_reconnect_max_s: float = Field(
        default=30.0, gt=0, description="Longest wait between reconnection attempts to the broker, in s."
    )
    mqtt_broker_config_dir_path: Path | None = Field(
        default=None,
        description="Folder of the broker's password and ACL files that `microfleet mqtt` commands write; "
        "None = those commands refuse.",
    )
    mqtt_broker_pid_path: Path | None = Field(
        default=None,
        description="The broker's pid file: after a change the broker is sent SIGHUP to reread its users; "
        "None = the change takes effect at its next start.",
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server(s) for scale-out ingest, comma-separated (nats://HOST:4222,...); None = "
        "adapters commit to the store themselves (one machine, no NATS needed).",
    )
    nats_prefix: str = Field(
        default="microfleet",
        description="First token of Microfleet's NATS subjects (PREFIX.telemetry.PARTITION); one per "
        "installation.",
    )
    nats_stream: str = Field(
        default="MICROFLEET_TELEMETRY",
        description="JetStream stream holding the adapters' batches until a worker has stored them.",
    )
    nats_partitions: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Subjects a stream's batches are spread over by vehicle (a stable hash of the id); the "
        "most workers that can share the load. Fixed for a stream's life.",
    )
    nats_replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        description="Copies JetStream keeps of the stream and the lease bucket: 3 on a NATS cluster of 3 "
        "survives the loss of one server; 1 on a single server.",
    )
    nats_duplicate_window_s: float = Field(
        default=120.0,
        gt=0,
        description="How long JetStream remembers a batch's Nats-Msg-Id to drop a re-published copy, in s.",
    )
    nats_ack_wait_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a batch a worker took may stay unacknowledged before it is delivered again, "
        "in s.",
    )
    nats_lease_s: float = Field(
        default=10.0,
        gt=0,
        description="Lifetime of a worker's claim on a partition, renewed every third of it; a dead worker's "
        "partitions pass to the others after at most this long, in s.",
    )
    nats_reconnect_max_s: float = Field(
        default=10.0, gt=0, description="Longest wait between reconnection attempts to NATS, in s."
    )
    data_dir_path: Path | None = Field(
        default=None,
        description="Folder of the cited reference data (vehicles, osm, ...); None = ../shared/data, "
        "else the shared folder beside the checkout.",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        """Accept a comma-separated string (the environment's form) and refuse anything but IPs and CIDRs."""
        items = value
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(items, list):
            for item in items:
                try:
                    if "/" in str(item):
                        ipaddress.ip_network(str(item))
                    else:
                        ipaddress.ip_address(str(item))
                except ValueError:
                    raise ValueError(f"{item!r} is neither an IP address nor a CIDR network") from None
        return items
