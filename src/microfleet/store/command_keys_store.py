"""Vehicles' command keys in the store: the public half, the private half sealed (migration 0012)."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from microfleet.errors import ConflictError
from microfleet.services.command_keys import StoredCommandKey
from microfleet.store.schema import metadata

command_keys = Table(
    "command_keys",
    metadata,
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), primary_key=True),
    Column("key_id", String(16), primary_key=True),
    Column("public_key", String(64), nullable=False),
    # AES-256-GCM under the key-encryption key, which is never in the database (services/command_keys.py).
    Column("sealed_private_key", Text, nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("retired_at_ms", BigInteger, nullable=True),
    Column("listed_until_ms", BigInteger, nullable=True),
    # One current key per vehicle, even when two processes create the first at once.
    Index(
        "ix_command_keys_current",
        "vehicle_id",
        unique=True,
        sqlite_where=text("retired_at_ms IS NULL"),
        postgresql_where=text("retired_at_ms IS NULL"),
    ),
)


class CommandKeyStore:
    """Vehicles' command keys (the key service's ``CommandKeyPort``)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        self._write_lock = write_lock if write_lock is not None else nullcontext()

    def current(self, vehicle_id: str) -> StoredCommandKey | None:
        """The vehicle's current key, or None."""
        query = select(command_keys).where(
            command_keys.c.vehicle_id == vehicle_id, command_keys.c.retired_at_ms.is_(None)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _key(row) if row is not None else None

    def add(self, key: StoredCommandKey, *, previous_listed_until_ms: int | None) -> StoredCommandKey:
        """Make ``key`` current; with ``previous_listed_until_ms`` the current one is retired.

        Without it the key is added only if the vehicle has none; one another process added first is
        returned instead.
        """
        values = {
            "vehicle_id": key.vehicle_id,
            "key_id": key.key_id,
            "public_key": key.public_key,
            "sealed_private_key": key.sealed_private_key,
            "created_at_ms": key.created_at_ms,
        }
        try:
            with self._write_lock, self._engine.begin() as conn:
                if previous_listed_until_ms is not None:
                    conn.execute(
                        update(command_keys)
                        .where(
                            command_keys.c.vehicle_id == key.vehicle_id,
                            command_keys.c.retired_at_ms.is_(None),
                        )
                        .values(retired_at_ms=key.created_at_ms, listed_until_ms=previous_listed_until_ms)
                    )
                conn.execute(insert(command_keys).values(**values))
        except IntegrityError as exc:
            found = self.current(key.vehicle_id)
            if previous_listed_until_ms is None and found is not None:
                return found
            raise ConflictError(f"vehicle {key.vehicle_id!r} is being given a command key already") from exc
        return key

    def listed(self, vehicle_id: str, now_ms: int) -> list[StoredCommandKey]:
        """The current key first, then retired keys still listed at ``now_ms``, newest first."""
        query = (
            select(command_keys)
            .where(
                command_keys.c.vehicle_id == vehicle_id,
                or_(command_keys.c.retired_at_ms.is_(None), command_keys.c.listed_until_ms > now_ms),
            )
            .order_by(command_keys.c.retired_at_ms.is_not(None), command_keys.c.created_at_ms.desc())
        )
        with self._engine.connect() as conn:
            return [_key(row) for row in conn.execute(query)]


def _key(row: Any) -> StoredCommandKey:
    m = row._mapping
    return StoredCommandKey(
        m["vehicle_id"],
        m["key_id"],
        m["public_key"],
        m["sealed_private_key"],
        m["created_at_ms"],
        m["retired_at_ms"],
        m["listed_until_ms"],
    )
