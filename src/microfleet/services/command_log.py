"""The records of remote commands and the ports that keep them: what the command service stores and reads.

:class:`RemoteCommand` is one command as stored, :class:`AuditEvent` one line of its audit log; the store
implements :class:`CommandStorePort` (``microfleet.store.commands_store.CommandStore``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from microfleet.domain.bookings import Booking
from microfleet.domain.command_wire import Action, ParamValue, SignedCommand
from microfleet.domain.commands import CommandStatus


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """One command as stored: what was asked, by whom, where it is in its life, and its signed form."""

    command_id: str
    vehicle_id: str
    action: Action
    params: Mapping[str, ParamValue]
    status: CommandStatus
    issued_at_ms: int
    expires_at_ms: int
    issued_by: str  # the actor: "user:<name>"
    user_id: int | None
    client: str  # the address the request came from
    idempotency_key: str | None
    signed: SignedCommand
    sent_at_ms: int | None = None
    channel: str | None = None  # how it was sent: "mqtt", "ovms"
    result_at_ms: int | None = None  # when the car's answer (or the expiry) was recorded
    result_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One line of the audit log: a state change of a command, or a refused attempt (``command_id`` None)."""

    vehicle_id: str
    at_ms: int
    actor: str  # "user:<name>", "vehicle:<id>", "dispatcher:<channel>", "server"
    client: str
    event: str  # a CommandStatus value, "refused_attempt", or "result_rejected"
    action: str | None
    detail: str
    command_id: str | None = None
    event_id: int | None = None


class ResultVerdict(enum.StrEnum):
    """What :meth:`CommandService.record_result` did with a car's answer."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # the same answer again (QoS 1 redelivery): nothing changes
    UNKNOWN_COMMAND = "unknown_command"
    WRONG_VEHICLE = "wrong_vehicle"  # a result reported by another vehicle than the command's
    NOT_SENT = "not_sent"  # a command that cannot take a result now (already answered otherwise)
    MALFORMED = "malformed"  # for a bridge that could not decode the answer at all


class CommandStorePort(Protocol):
    """Commands and their audit log in the store (``microfleet.store.commands_store.CommandStore``)."""

    def insert(self, command: RemoteCommand, event: AuditEvent) -> tuple[RemoteCommand, bool]:
        """Store a new command with its first audit line; (command, True), or (the one under the key, False).

        If the caller's idempotency key is already taken, nothing is stored.
        """
        ...

    def by_idempotency_key(self, issued_by: str, key: str) -> RemoteCommand | None:
        """The caller's command stored under ``key``, if any."""
        ...

    def get(self, command_id: str) -> RemoteCommand | None:
        """A command by id."""
        ...

    def move(
        self, command: RemoteCommand, new: CommandStatus, changes: Mapping[str, Any], event: AuditEvent
    ) -> RemoteCommand | None:
        """Move ``command`` from the status it has to ``new`` with ``changes`` and an audit line, atomically.

        The command as moved; None if its status had changed meanwhile (another process moved it first).
        """
        ...

    def due(self, now_ms: int, limit: int, vehicle_ids: Sequence[str] | None) -> list[RemoteCommand]:
        """Queued commands not expired at ``now_ms``, oldest first."""
        ...

    def expire(self, now_ms: int) -> list[RemoteCommand]:
        """Move every queued or sent command expired at ``now_ms`` to expired, audited; returns them."""
        ...

    def record_event(self, event: AuditEvent) -> None:
        """Write an audit line on its own (a refused attempt, a rejected result)."""
        ...

    def for_vehicle(self, vehicle_id: str, limit: int, user_id: int | None) -> list[RemoteCommand]:
        """A vehicle's commands, newest first (only ``user_id``'s if given)."""
        ...

    def events(
        self, vehicle_id: str, *, command_id: str | None, actor: str | None, limit: int
    ) -> list[AuditEvent]:
        """A vehicle's audit lines, newest first: of one command, or of one actor, if given."""
        ...


class BookingReads(Protocol):
    """The one booking question commands ask (``microfleet.store.commands_store.BookingStore``)."""

    def active(self, vehicle_id: str, user_id: int, now_ms: int) -> Booking | None:
        """The user's booking holding the vehicle at ``now_ms``, if any."""
        ...


class CommandEventSink(Protocol):
    """Where a command's status changes are announced (``microfleet.services.live.LiveEvents``)."""

    def publish(self, vehicle_id: str, kind: str, ts_ms: int, payload: Mapping[str, Any]) -> None:
        """Announce one event of ``vehicle_id``."""
        ...
