"""Remote commands and their audit log in the store (migration 0012; keys and bookings beside it).

Every change of a command's status is a compare-and-set (``WHERE status = expected``) written with its
audit line in one transaction, so two processes answering or expiring the same command never both win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from microfleet.domain.command_wire import Action, decode, encode
from microfleet.domain.commands import CommandStatus
from microfleet.services.commands import AuditEvent, RemoteCommand
from microfleet.store.bookings_store import BookingStore, bookings
from microfleet.store.command_keys_store import CommandKeyStore, command_keys
from microfleet.store.schema import metadata

# Declared beside the commands (one migration, 0012), so importing this module declares every table of it.
__all__ = [
    "BookingStore",
    "CommandKeyStore",
    "CommandStore",
    "bookings",
    "command_events",
    "command_keys",
    "commands",
]

_TEXT_MAX = 200

commands = Table(
    "commands",
    metadata,
    Column("command_id", String(36), primary_key=True),
    Column("vehicle_id", String(64), ForeignKey("vehicles.vehicle_id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("params_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("user_id", Integer, nullable=True),  # no key: the audit outlives a deleted user
    Column("client", String(200), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    # The signed command exactly as the car receives it (command_wire.encode), signature included.
    Column("payload", Text, nullable=False),
    Column("sent_at_ms", BigInteger, nullable=True),
    Column("channel", String(32), nullable=True),
    Column("result_at_ms", BigInteger, nullable=True),
    Column("result_reason", Text, nullable=True),
    Index("ix_commands_idempotency", "issued_by", "idempotency_key", unique=True),
    Index("ix_commands_status_expiry", "status", "expires_at_ms"),
    Index("ix_commands_vehicle_issued", "vehicle_id", "issued_at_ms"),
)

# The audit log: one line per state change, and one per refused attempt (no command_id: nothing stored).
command_events = Table(
    "command_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("command_id", String(36), ForeignKey("commands.command_id", ondelete="CASCADE"), nullable=True),
    Column("vehicle_id", String(200), nullable=False),  # no key: a refused attempt may name any car
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("client", String(200), nullable=False),
    Column("event", String(32), nullable=False),
    Column("action", String(32), nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_command_events_vehicle", "vehicle_id", "event_id"),
    Index("ix_command_events_command", "command_id"),
)


def _lock(write_lock: AbstractContextManager[Any] | None) -> AbstractContextManager[Any]:
    return write_lock if write_lock is not None else nullcontext()


class CommandStore:
    """Commands and their audit log (the command service's ``CommandStorePort``)."""

    def __init__(self, engine: Engine, write_lock: AbstractContextManager[Any] | None = None) -> None:
        self._engine = engine
        self._write_lock = _lock(write_lock)

    def insert(self, command: RemoteCommand, event: AuditEvent) -> tuple[RemoteCommand, bool]:
        """Store a new command with its first audit line; a taken idempotency key returns its command."""
        row = {
            "command_id": command.command_id,
            "vehicle_id": command.vehicle_id,
            "action": command.action.value,
            "params_json": json.dumps(dict(command.params), sort_keys=True),
            "status": command.status.value,
            "issued_at_ms": command.issued_at_ms,
            "expires_at_ms": command.expires_at_ms,
            "issued_by": command.issued_by[:_TEXT_MAX],
            "user_id": command.user_id,
            "client": command.client[:_TEXT_MAX],
            "idempotency_key": command.idempotency_key,
            "payload": encode(command.signed).decode("utf-8"),
        }
        try:
            with self._write_lock, self._engine.begin() as conn:
                conn.execute(insert(commands).values(**row))
                _event(conn, event)
        except IntegrityError:
            if command.idempotency_key is None:
                raise
            existing = self.by_idempotency_key(command.issued_by, command.idempotency_key)
            if existing is None:
                raise
            return existing, False
        return command, True

    def by_idempotency_key(self, issued_by: str, key: str) -> RemoteCommand | None:
        """The caller's command stored under ``key``, if any."""
        query = select(commands).where(commands.c.issued_by == issued_by, commands.c.idempotency_key == key)
        return self._one(query)

    def get(self, command_id: str) -> RemoteCommand | None:
        """A command by id."""
        return self._one(select(commands).where(commands.c.command_id == command_id))

    def _one(self, query: Any) -> RemoteCommand | None:
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _command(row) if row is not None else None

    def move(
        self, command: RemoteCommand, new: CommandStatus, changes: Mapping[str, Any], event: AuditEvent
    ) -> RemoteCommand | None:
        """Compare-and-set the status with ``changes`` and the audit line; None if it had changed."""
        statement = (
            update(commands)
            .where(commands.c.command_id == command.command_id, commands.c.status == command.status.value)
            .values(status=new.value, **changes)
        )
        with self._write_lock, self._engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                return None
            _event(conn, event)
        return replace(command, status=new, **changes)  # what the row now holds, without reading it back

    def due(self, now_ms: int, limit: int, vehicle_ids: Sequence[str] | None) -> list[RemoteCommand]:
        """Queued commands not expired at ``now_ms``, oldest first."""
        query = select(commands).where(
            commands.c.status == CommandStatus.QUEUED.value, commands.c.expires_at_ms > now_ms
        )
        if vehicle_ids is not None:
            if not vehicle_ids:
                return []
            query = query.where(commands.c.vehicle_id.in_(list(vehicle_ids)))
        query = query.order_by(commands.c.issued_at_ms, commands.c.command_id).limit(limit)
        with self._engine.connect() as conn:
            return [_command(row) for row in conn.execute(query)]

    def expire(self, now_ms: int) -> list[RemoteCommand]:
        """Expire queued and sent commands past their expiry, each with its audit line."""
        live = (CommandStatus.QUEUED.value, CommandStatus.SENT.value)
        query = select(commands).where(commands.c.status.in_(live), commands.c.expires_at_ms <= now_ms)
        with self._engine.connect() as conn:
            due = [_command(row) for row in conn.execute(query.limit(1000))]
        expired: list[RemoteCommand] = []
        for command in due:
            detail = (
                "expired before the car answered" if command.sent_at_ms else "expired unsent (car offline)"
            )
            event = AuditEvent(
                command.vehicle_id,
                now_ms,
                "server",
                "",
                CommandStatus.EXPIRED.value,
                command.action.value,
                detail,
                command.command_id,
            )
            moved = self.move(command, CommandStatus.EXPIRED, {"result_at_ms": now_ms}, event)
            if moved is not None:
                expired.append(moved)
        return expired

    def record_event(self, event: AuditEvent) -> None:
        """Write an audit line on its own."""
        with self._write_lock, self._engine.begin() as conn:
            _event(conn, event)

    def for_vehicle(self, vehicle_id: str, limit: int, user_id: int | None) -> list[RemoteCommand]:
        """A vehicle's commands, newest first (only ``user_id``'s if given)."""
        query = select(commands).where(commands.c.vehicle_id == vehicle_id)
        if user_id is not None:
            query = query.where(commands.c.user_id == user_id)
        query = query.order_by(commands.c.issued_at_ms.desc(), commands.c.command_id).limit(limit)
        with self._engine.connect() as conn:
            return [_command(row) for row in conn.execute(query)]

    def events(
        self, vehicle_id: str, *, command_id: str | None, actor: str | None, limit: int
    ) -> list[AuditEvent]:
        """A vehicle's audit lines, newest first: of one command, or of one actor, if given."""
        query = select(command_events).where(command_events.c.vehicle_id == vehicle_id)
        if command_id is not None:
            query = query.where(command_events.c.command_id == command_id)
        if actor is not None:
            query = query.where(command_events.c.actor == actor)
        query = query.order_by(command_events.c.event_id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [_audit(row) for row in conn.execute(query)]


def _event(conn: Connection, event: AuditEvent) -> None:
    conn.execute(
        insert(command_events).values(
            command_id=event.command_id,
            vehicle_id=event.vehicle_id[:_TEXT_MAX],
            at_ms=event.at_ms,
            actor=event.actor[:_TEXT_MAX],
            client=event.client[:_TEXT_MAX],
            event=event.event,
            action=event.action,
            detail=event.detail,
        )
    )


def _command(row: Any) -> RemoteCommand:
    m = row._mapping
    return RemoteCommand(
        command_id=m["command_id"],
        vehicle_id=m["vehicle_id"],
        action=Action(m["action"]),
        params=json.loads(m["params_json"]),
        status=CommandStatus(m["status"]),
        issued_at_ms=m["issued_at_ms"],
        expires_at_ms=m["expires_at_ms"],
        issued_by=m["issued_by"],
        user_id=m["user_id"],
        client=m["client"],
        idempotency_key=m["idempotency_key"],
        signed=decode(m["payload"].encode("utf-8")),
        sent_at_ms=m["sent_at_ms"],
        channel=m["channel"],
        result_at_ms=m["result_at_ms"],
        result_reason=m["result_reason"],
    )


def _audit(row: Any) -> AuditEvent:
    m = row._mapping
    return AuditEvent(
        vehicle_id=m["vehicle_id"],
        at_ms=m["at_ms"],
        actor=m["actor"],
        client=m["client"],
        event=m["event"],
        action=m["action"],
        detail=m["detail"],
        command_id=m["command_id"],
        event_id=m["event_id"],
    )
