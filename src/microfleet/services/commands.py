"""Remote commands as a use case: authorise, check, sign and queue; dispatch, record results, expire.

Processes share the database, never an in-process queue: the API issues commands, the MQTT and OVMS
bridges (separate processes) take them with :meth:`CommandService.due_for_dispatch`, publish them and report
back through :meth:`mark_sent` and :meth:`record_result`; :meth:`expire_due` runs in the API server and the
bridges. Every state change and every refusal is written to the audit log (who, what, when, from where,
why) in the same transaction as the change. docs/commands.md tells the whole story.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.capabilities import check_capability
from microfleet.domain.command_wire import (
    MAX_LIFETIME_MS,
    Action,
    CommandResult,
    SignedCommand,
    new_nonce,
    sign,
)
from microfleet.domain.commands import (
    TERMINAL,
    CommandStatus,
    can_move,
    command_refusal,
    may_read_command_keys,
)
from microfleet.errors import (
    InvalidInputError,
    MicrofleetError,
    NotFoundError,
    PermissionDeniedError,
)
from microfleet.services.accounts import AccountService
from microfleet.services.command_expiry import ExpiryLoop
from microfleet.services.command_keys import CommandKeyInfo, CommandKeys
from microfleet.services.command_log import (
    AuditEvent,
    BookingReads,
    CommandEventSink,
    CommandStorePort,
    RemoteCommand,
    ResultVerdict,
)

# The records live in command_log; bridges and stores import them from here as well.
__all__ = [
    "AuditEvent",
    "BookingReads",
    "CommandEventSink",
    "CommandService",
    "CommandStorePort",
    "RemoteCommand",
    "ResultVerdict",
]

log = logging.getLogger(__name__)

LIVE_KIND: Final = "command"  # the live feed's kind for a command's status change (services/live.py)
IDEMPOTENCY_KEY_MAX_CHARS: Final = 128
_CLIENT_MAX_CHARS: Final = 200


class CommandService:
    """Issue, dispatch, answer, expire and audit remote commands."""

    def __init__(
        self,
        store: CommandStorePort,
        keys: CommandKeys,
        bookings: BookingReads,
        accounts: AccountService,
        clock: Callable[[], int],
        *,
        default_expiry_ms: int,
        live: CommandEventSink | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._bookings = bookings
        self._accounts = accounts
        self._clock = clock
        self._default_expiry_ms = default_expiry_ms
        self._live = live
        self.refusals: Counter[str] = Counter()  # refused attempts by reason kind, this process
        self.rejected_results: Counter[str] = Counter()  # car answers not applied, by verdict
        self._expiry = ExpiryLoop(self.expire_due, clock)

    # --- issuing (the API, the CLI) ---------------------------------------------------------------

    def issue(
        self,
        user: UserPrincipal,
        vehicle_id: str,
        action: Action,
        params: Mapping[str, object],
        *,
        expires_in_s: float | None = None,
        idempotency_key: str | None = None,
        client: str = "unknown",
    ) -> tuple[RemoteCommand, bool]:
        """Authorise, check, sign and queue a command; returns it and whether it is new.

        The same caller with the same idempotency key gets the command stored under it back, never a
        second one (a different command under a used key is refused). Every refusal is audited.
        """
        now_ms = self._clock()
        client = client[:_CLIENT_MAX_CHARS]
        actor = f"user:{user.name}"
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
            existing = self._store.by_idempotency_key(actor, idempotency_key)
            if existing is not None:
                return self._replayed(existing, vehicle_id, action, params), False
        try:
            vehicle, expires_at_ms = self._authorise(user, vehicle_id, now_ms, expires_in_s)
            checked = check_capability(vehicle.model_id, action, params)
        except (NotFoundError, PermissionDeniedError, InvalidInputError) as refusal:
            self._refused(vehicle_id, now_ms, actor, client, action, refusal)
            raise
        command_id = str(uuid.uuid4())
        unsigned = SignedCommand(
            command_id, vehicle_id, action, checked, now_ms, expires_at_ms, nonce=new_nonce(), key_id=""
        )
        signed = sign(unsigned, self._keys.signing_key(vehicle_id, now_ms))
        command = RemoteCommand(
            command_id, vehicle_id, action, checked, CommandStatus.QUEUED, now_ms, expires_at_ms,
            issued_by=actor, user_id=user.user_id, client=client, idempotency_key=idempotency_key,
            signed=signed,
        )  # fmt: skip
        detail = f"queued until {expires_at_ms}, signed with key {signed.key_id}"
        event = AuditEvent(vehicle_id, now_ms, actor, client, "queued", action.value, detail, command_id)
        stored, created = self._store.insert(command, event)
        if not created:  # a concurrent request with the same key won the race
            return self._replayed(stored, vehicle_id, action, params), False
        log.info(
            "command %s %s for %s queued by %s from %s", command_id, action.value, vehicle_id, actor, client
        )
        self._announce(stored, now_ms)
        return stored, True

    def _authorise(
        self, user: UserPrincipal, vehicle_id: str, now_ms: int, expires_in_s: float | None
    ) -> tuple[Vehicle, int]:
        vehicle = self._accounts.vehicle_for(user, vehicle_id)  # 404 for a car the user does not see
        booking = (
            self._bookings.active(vehicle_id, user.user_id, now_ms) if user.role is Role.DRIVER else None
        )
        reason = command_refusal(user, vehicle, booked_now=booking is not None)
        if reason is not None:
            raise PermissionDeniedError(reason)
        lifetime_ms = self._default_expiry_ms if expires_in_s is None else round(expires_in_s * 1000)
        if not 1000 <= lifetime_ms <= MAX_LIFETIME_MS:
            raise InvalidInputError(f"expires_in_s must be between 1 and {MAX_LIFETIME_MS // 1000} s")
        expires_at_ms = now_ms + lifetime_ms
        if booking is not None:  # a driver's command never outlives their booking
            expires_at_ms = min(expires_at_ms, booking.end_ms)
        return vehicle, expires_at_ms

    def _replayed(
        self, existing: RemoteCommand, vehicle_id: str, action: Action, params: Mapping[str, object]
    ) -> RemoteCommand:
        same = existing.vehicle_id == vehicle_id and existing.action is action
        if not same or dict(existing.params) != {k: v for k, v in params.items()}:
            raise InvalidInputError(
                "this Idempotency-Key was already used for a different command; use a new key"
            )
        return existing

    def _refused(
        self, vehicle_id: str, now_ms: int, actor: str, client: str, action: Action, error: MicrofleetError
    ) -> None:
        self.refusals[error.code] += 1
        event = AuditEvent(vehicle_id, now_ms, actor, client, "refused_attempt", action.value, error.message)
        self._store.record_event(event)
        log.warning(
            "command %s for %s refused to %s from %s: %s", action.value, vehicle_id, actor, client, error
        )

    # --- reading (the audit) --------------------------------------------------------------------

    def get(
        self, user: UserPrincipal, vehicle_id: str, command_id: str
    ) -> tuple[RemoteCommand, list[AuditEvent]]:
        """A command of a vehicle the user sees, with its audit lines (a driver sees only their own)."""
        self._accounts.vehicle_for(user, vehicle_id)
        command = self._store.get(command_id)
        if command is None or command.vehicle_id != vehicle_id or not _may_read(user, command):
            raise NotFoundError(f"command {command_id!r} of vehicle {vehicle_id!r} does not exist")
        events = self._store.events(vehicle_id, command_id=command_id, actor=None, limit=100)
        return command, events

    def list_for_vehicle(
        self, user: UserPrincipal, vehicle_id: str, limit: int = 100
    ) -> tuple[list[RemoteCommand], list[AuditEvent]]:
        """A vehicle's commands and refused attempts, newest first (a driver's own only)."""
        self._accounts.vehicle_for(user, vehicle_id)
        own = user.user_id if user.role is Role.DRIVER else None
        commands = self._store.for_vehicle(vehicle_id, limit, own)
        actor = f"user:{user.name}" if own is not None else None
        events = self._store.events(vehicle_id, command_id=None, actor=actor, limit=limit)
        return commands, [e for e in events if e.event == "refused_attempt"]

    # --- dispatching (the bridges) ----------------------------------------------------------------

    def due_for_dispatch(
        self, now_ms: int, limit: int = 100, vehicle_ids: Sequence[str] | None = None
    ) -> list[RemoteCommand]:
        """Queued commands not yet expired, oldest first (of ``vehicle_ids`` only, if given)."""
        return self._store.due(now_ms, limit, vehicle_ids)

    def mark_sent(self, command_id: str, now_ms: int, channel: str) -> bool:
        """Record that a command was published to its car; False if it was no longer queued."""
        command = self._store.get(command_id)
        if command is None or command.status is not CommandStatus.QUEUED:
            return False
        event = AuditEvent(
            command.vehicle_id,
            now_ms,
            f"dispatcher:{channel}",
            "",
            CommandStatus.SENT.value,
            command.action.value,
            f"published over {channel}",
            command_id,
        )
        changes = {"sent_at_ms": now_ms, "channel": channel}
        moved = self._store.move(command, CommandStatus.SENT, changes, event)
        if moved is not None:
            self._announce(moved, now_ms)
        return moved is not None

    def record_result(
        self, result: CommandResult, *, reporting_vehicle_id: str, now_ms: int
    ) -> ResultVerdict:
        """Apply a car's answer once, and say what became of it.

        An answer for an unknown command, from another vehicle than the command's, or for a command that
        cannot take it, is refused: logged, audited and counted, never applied.
        """
        verdict = self._apply_result(result, reporting_vehicle_id, now_ms)
        if verdict not in (ResultVerdict.APPLIED, ResultVerdict.DUPLICATE):
            self.rejected_results[verdict.value] += 1
            log.warning(
                "command result for %r from vehicle %r refused: %s",
                result.command_id,
                reporting_vehicle_id,
                verdict.value,
            )
        return verdict

    def _apply_result(self, result: CommandResult, reporting: str, now_ms: int) -> ResultVerdict:
        command = self._store.get(result.command_id)
        if command is None:
            return ResultVerdict.UNKNOWN_COMMAND
        if reporting != command.vehicle_id or result.vehicle_id != command.vehicle_id:
            self._store.record_event(
                AuditEvent(
                    command.vehicle_id,
                    now_ms,
                    f"vehicle:{reporting}",
                    "",
                    "result_rejected",
                    command.action.value,
                    f"a result reported by vehicle {reporting!r} for another vehicle's command",
                    command.command_id,
                )
            )
            return ResultVerdict.WRONG_VEHICLE
        new = CommandStatus(result.status.value)
        if command.status is new and command.result_reason == result.reason:
            return ResultVerdict.DUPLICATE
        if not can_move(command.status, new, was_sent=command.sent_at_ms is not None):
            return ResultVerdict.NOT_SENT
        detail = new.value if result.reason is None else f"{new.value}: {result.reason}"
        event = AuditEvent(
            command.vehicle_id,
            now_ms,
            f"vehicle:{reporting}",
            "",
            new.value,
            command.action.value,
            detail,
            command.command_id,
        )
        changes = {"result_at_ms": now_ms, "result_reason": result.reason}
        moved = self._store.move(command, new, changes, event)
        if moved is None:  # another answer won the race: look again
            return self._apply_result(result, reporting, now_ms)
        self._announce(moved, now_ms)
        return ResultVerdict.APPLIED

    def expire_due(self, now_ms: int) -> int:
        """Expire every queued or sent command past its expiry; returns how many."""
        expired = self._store.expire(now_ms)
        for command in expired:
            self._announce(command, now_ms)
        return len(expired)

    def start_expiring(self, interval_s: float) -> None:
        """Run :meth:`expire_due` every ``interval_s`` in a background thread until :meth:`stop_expiring`."""
        self._expiry.start(interval_s)

    def stop_expiring(self) -> None:
        """Stop the expiry thread (a round in progress finishes first)."""
        self._expiry.stop()

    # --- keys -----------------------------------------------------------------------------------

    def public_keys(self, vehicle_id: str) -> list[str]:
        """The vehicle's public keys a car trusts, base64, the current one first (created on first need)."""
        return [k.public_key for k in self._keys.listed(vehicle_id, self._clock())]

    def key_infos(self, vehicle_id: str) -> list[CommandKeyInfo]:
        """The vehicle's listed public keys with their ids and times (for an administrator)."""
        return self._keys.listed(vehicle_id, self._clock())

    def command_keys_for_device(self, device_vehicle_id: str, vehicle_id: str) -> list[CommandKeyInfo]:
        """A car's own public keys, for its device credential; any other vehicle's are refused."""
        if device_vehicle_id != vehicle_id:
            raise PermissionDeniedError("a device credential reads only its own vehicle's command keys")
        return self._keys.listed(vehicle_id, self._clock())

    def command_keys_for(self, user: UserPrincipal, vehicle_id: str) -> list[CommandKeyInfo]:
        """A vehicle's public keys for its owner, its fleet's operator or an admin."""
        self._managed(user, vehicle_id)
        return self._keys.listed(vehicle_id, self._clock())

    def rotate_key_for(self, user: UserPrincipal, vehicle_id: str) -> list[CommandKeyInfo]:
        """Rotate a vehicle's command key for its owner, its fleet's operator or an admin."""
        self._managed(user, vehicle_id)
        return self.rotate_key(vehicle_id)

    def rotate_key(self, vehicle_id: str) -> list[CommandKeyInfo]:
        """Give the vehicle a new signing key (for the installation's administrator); lists the keys.

        Commands already queued keep the signature of the key they were signed with, which stays listed
        for the configured overlap so a car that fetched the new keys still accepts them.
        """
        self._accounts.require_vehicle(vehicle_id)
        keys = self._keys.rotate(vehicle_id, self._clock())
        log.info("command key of vehicle %s rotated; now %s", vehicle_id, keys[0].key_id)
        return keys

    def _managed(self, user: UserPrincipal, vehicle_id: str) -> Vehicle:
        vehicle = self._accounts.vehicle_for(user, vehicle_id)
        if not may_read_command_keys(user, vehicle):
            raise PermissionDeniedError(
                "only the vehicle's owner, its fleet's operator or an admin manages its command keys"
            )
        return vehicle

    # --- the live feed --------------------------------------------------------------------------

    def _announce(self, command: RemoteCommand, now_ms: int) -> None:
        if self._live is None:
            return
        payload = {
            "command_id": command.command_id,
            "action": command.action.value,
            "status": command.status.value,
            "issued_at_ms": command.issued_at_ms,
            "expires_at_ms": command.expires_at_ms,
            "reason": command.result_reason,
            "final": command.status in TERMINAL,
            "user_id": command.user_id,  # the issuer: the feed shows a driver only their own (live_feed)
        }
        try:
            self._live.publish(command.vehicle_id, LIVE_KIND, now_ms, payload)
        except Exception:  # the feed is a view: a command's life never fails because of it
            log.exception("announcing command %s on the live feed failed", command.command_id)


def _may_read(user: UserPrincipal, command: RemoteCommand) -> bool:
    return user.role is not Role.DRIVER or command.user_id == user.user_id


def _check_idempotency_key(key: str) -> None:
    if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX_CHARS and key.isascii() and key.isprintable()):
        raise InvalidInputError(
            f"an Idempotency-Key is 1 to {IDEMPOTENCY_KEY_MAX_CHARS} printable ASCII characters"
        )
