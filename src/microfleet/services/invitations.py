"""Inviting a person to Microfleet.

An administrator invites a user name with its role (and fleet); the person opens the one-time link, chooses a
password, and is logged in (docs/web.md).

The link's code is 256-bit random and stored only as its SHA-256; it works once, for
:data:`INVITATION_LIFETIME_MS`. A wrong code counts as a failed authentication of the client's address, in
the same throttle as wrong passwords, so codes cannot be guessed faster than passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from microfleet.domain.access import Role, UserPrincipal
from microfleet.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from microfleet.services.web_sessions import WebSession, WebSessionService, check_new_password

INVITATION_LIFETIME_MS: Final = 7 * 86_400_000  # a week to accept, as invitations by e-mail usually allow
CODE_PREFIX: Final = "mfi_"
NAME_MAX_CHARS: Final = 200  # users.name


@dataclass(frozen=True, slots=True)
class Invitation:
    """A pending invitation, as the administrator sees it (never its code)."""

    invitation_id: int
    user_name: str
    role: Role
    fleet_id: str | None
    created_at_ms: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """An invitation just made: its one-time code is shown this once, for the link."""

    invitation: Invitation
    code: str


def code_sha256(code: str) -> str:
    """The stored form of an invitation code."""
    return hashlib.sha256(code.encode()).hexdigest()


class InvitationPort(Protocol):
    """The invitations (``microfleet.store.invitations.InvitationStore``)."""

    def create(
        self,
        code_sha256: str,
        user_name: str,
        role: Role,
        fleet_id: str | None,
        created_by_user_id: int,
        expires_at_ms: int,
    ) -> Invitation:
        """Store a new invitation."""
        ...

    def pending(self, now_ms: int) -> list[Invitation]:
        """Live invitations."""
        ...

    def pending_for_name(self, user_name: str, now_ms: int) -> bool:
        """Tell whether a live invitation names this user."""
        ...

    def revoke(self, invitation_id: int, now_ms: int) -> bool:
        """Revoke a pending invitation; False if none."""
        ...

    def claim(self, code_sha256: str, now_ms: int) -> Invitation | None:
        """Mark the live invitation with this code accepted; None if none."""
        ...

    def unclaim(self, invitation_id: int) -> None:
        """Give a claimed invitation back."""
        ...


class UserDirectory(Protocol):
    """Users and fleets (``microfleet.store.accounts.AccountStore``)."""

    def add_user(self, name: str, role: Role, fleet_id: str | None = None) -> int:
        """Register a user; returns their id."""
        ...

    def list_users(self) -> list[UserPrincipal]:
        """Every user."""
        ...

    def fleet_exists(self, fleet_id: str) -> bool:
        """Tell whether a fleet is registered."""
        ...


class InvitationService:
    """Invite (administrators), list and revoke invitations; accept one with a new password (anyone)."""

    def __init__(
        self,
        store: InvitationPort,
        users: UserDirectory,
        sessions: WebSessionService,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._users = users
        self._sessions = sessions
        self._clock = clock

    def invite(
        self, caller: UserPrincipal, user_name: str, role: Role, fleet_id: str | None
    ) -> NewInvitation:
        """A one-time invitation for a new user of this name, role and fleet (administrators only)."""
        self._admin_only(caller)
        name = user_name.strip()
        if not name or len(name) > NAME_MAX_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise InvalidInputError(f"a user name is 1 to {NAME_MAX_CHARS} printable characters")
        if role in (Role.OPERATOR, Role.DRIVER) and fleet_id is None:
            raise InvalidInputError(f"an invited {role.value} needs the fleet they belong to (fleet_id)")
        if fleet_id is not None and not self._users.fleet_exists(fleet_id):
            raise InvalidInputError(f"there is no fleet {fleet_id!r}")
        now = self._clock()
        if any(u.name == name for u in self._users.list_users()) or self._store.pending_for_name(name, now):
            raise ConflictError(f"user {name!r} already exists or is already invited")
        code = CODE_PREFIX + secrets.token_urlsafe(32)
        made = self._store.create(
            code_sha256(code), name, role, fleet_id, caller.user_id, now + INVITATION_LIFETIME_MS
        )
        return NewInvitation(made, code)

    def pending(self, caller: UserPrincipal) -> list[Invitation]:
        """Invitations not yet accepted, revoked or expired (administrators only)."""
        self._admin_only(caller)
        return self._store.pending(self._clock())

    def revoke(self, caller: UserPrincipal, invitation_id: int) -> None:
        """Withdraw a pending invitation: its link stops working (administrators only)."""
        self._admin_only(caller)
        if not self._store.revoke(invitation_id, self._clock()):
            raise NotFoundError(f"there is no pending invitation {invitation_id}")

    def accept(self, code: str, password: str, client: str) -> WebSession:
        """Make the invited user with this password and open their session; the code then stops working.

        A code that is unknown, used, revoked or expired is a failed authentication of ``client``.
        """
        check_new_password(password)
        self._sessions.refuse_if_throttled(client)  # the login throttle: codes are guessed no faster
        claimed = self._store.claim(code_sha256(code), self._clock())
        if claimed is None:
            self._sessions.count_failure(client)
            raise AuthenticationError("this invitation is unknown, already used, withdrawn or expired")
        try:
            user_id = self._users.add_user(claimed.user_name, claimed.role, claimed.fleet_id)
        except ConflictError:
            self._store.unclaim(claimed.invitation_id)
            raise
        user = UserPrincipal(user_id, claimed.user_name, claimed.role, claimed.fleet_id)
        self._sessions.set_password(user, password)
        return self._sessions.open_for(user)

    @staticmethod
    def _admin_only(caller: UserPrincipal) -> None:
        if caller.role is not Role.ADMIN:
            raise PermissionDeniedError("only an administrator invites people")
