"""Logging in from a browser: user passwords (Argon2) and the sessions a session cookie names.

A password is checked only while its client is within the failed-authentication limit (the throttle the
API tokens use), so a guesser is slowed to ``auth_failure_per_minute`` tries and the real user waits at most
that long, never locked out for good. A session is a 256-bit random secret in an HttpOnly cookie, stored
only as its SHA-256, with a CSRF token the page sends back as a header on every unsafe request
(docs/web.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from microfleet.domain.access import UserPrincipal
from microfleet.errors import (
    AuthenticationError,
    InvalidInputError,
    PermissionDeniedError,
    TooManyRequestsError,
)
from microfleet.services.throttle import FailureThrottle

# NIST SP 800-63B §5.1.1.2: memorised secrets of at least 8 characters, at least 64 allowed, no other
# composition rule. The upper bound keeps one login's hashing work bounded.
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 256
SESSION_PREFIX = "mfs_"  # as mfu_/mfd_: a leaked secret's kind at a glance

WRONG_LOGIN = "wrong user name or password"


def session_sha256(token: str) -> str:
    """The stored form of a session token (256-bit random, so a fast hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    """Refuse a password outside the length policy with :class:`InvalidInputError`."""
    if not PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS:
        raise InvalidInputError(
            f"a password has {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters; this one has "
            f"{len(password)}"
        )


@dataclass(frozen=True, slots=True)
class WebSession:
    """A browser's session: its secret (the cookie's value), its CSRF token, whose it is, until when."""

    token: str
    csrf_token: str
    user: UserPrincipal
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session found by its token's hash."""

    user: UserPrincipal
    csrf_token: str
    expires_at_ms: int


class WebAccountPort(Protocol):
    """Password hashes and sessions (``microfleet.store.web_accounts.WebAccountStore``)."""

    def login_of(self, user_name: str) -> tuple[UserPrincipal, str | None] | None:
        """The user by name and their password hash (None if none is set); None for no such user."""
        ...

    def password_hash_of(self, user_id: int) -> str | None:
        """A user's password hash, None if none is set."""
        ...

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Store a user's new password hash and end every session of theirs."""
        ...

    def open_session(self, user_id: int, digest: str, csrf_token: str, expires_at_ms: int) -> None:
        """Store a new session (and forget the sessions that have expired)."""
        ...

    def session(self, digest: str, now_ms: int) -> OpenSession | None:
        """The live session with this token hash, None if there is none or it has expired."""
        ...

    def close_session(self, digest: str) -> None:
        """End one session (nothing if there is none)."""
        ...


class WebSessionService:
    """Log in, resolve a session cookie, check its CSRF token, log out and change passwords."""

    def __init__(
        self,
        store: WebAccountPort,
        failures: FailureThrottle,
        clock: Callable[[], int],
        *,
        lifetime_ms: int,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._failures = failures
        self._clock = clock
        self._lifetime_ms = lifetime_ms
        # argon2-cffi's defaults: RFC 9106's second recommended option (Argon2id, t=3, 64 MiB, p=4).
        self._hasher = hasher or PasswordHasher()
        self._decoy: list[str] = []  # a hash of nobody's password, made on first need

    @property
    def _decoy_hash(self) -> str:
        if not self._decoy:
            self._decoy.append(self._hasher.hash(secrets.token_urlsafe(16)))
        return self._decoy[0]

    def login(self, user_name: str, password: str, client: str) -> WebSession:
        """A new session for the user if the password is theirs; else a throttled failure of ``client``."""
        self.refuse_if_throttled(client)
        found = self._store.login_of(user_name)
        stored = found[1] if found is not None else None
        if found is None or stored is None:
            # The same Argon2 work as for a real user, so the answer's time does not tell names apart.
            self._verify(self._decoy_hash, password)
            self.count_failure(client)
            raise AuthenticationError(WRONG_LOGIN)
        if not self._verify(stored, password):
            self.count_failure(client)
            raise AuthenticationError(WRONG_LOGIN)
        return self._open(found[0])

    def authenticate(self, token: str) -> OpenSession:
        """The live session a cookie names; :class:`AuthenticationError` if it has ended or never was."""
        found = self._store.session(session_sha256(token), self._clock())
        if found is None:
            raise AuthenticationError("your session has ended or is unknown; log in again")
        return found

    @staticmethod
    def check_csrf(session: OpenSession, sent: str | None) -> None:
        """Refuse an unsafe request whose CSRF header is missing or is not the session's token."""
        if sent is None or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise PermissionDeniedError(
                "a request made with the session cookie must send its CSRF token in X-CSRF-Token"
            )

    def logout(self, token: str) -> None:
        """End the session a cookie names (nothing if it has already ended)."""
        self._store.close_session(session_sha256(token))

    def change_password(
        self, user: UserPrincipal, current: str, new: str, client: str, *, reopen: bool
    ) -> WebSession | None:
        """Replace the user's password after checking the current one; every session of theirs ends.

        With ``reopen`` (the change came from a browser) a new session opens for it. A wrong current
        password is a throttled failure, as at login.
        """
        check_new_password(new)
        self.refuse_if_throttled(client)
        stored = self._store.password_hash_of(user.user_id)
        if stored is None or not self._verify(stored, current):
            self.count_failure(client)
            raise PermissionDeniedError("the current password is wrong")
        self._store.set_password_hash(user.user_id, self._hasher.hash(new))
        return self._open(user) if reopen else None

    def set_password(self, user: UserPrincipal, password: str) -> None:
        """Set a user's password (the administrator's ``microfleet admin set-password``); sessions end."""
        check_new_password(password)
        self._store.set_password_hash(user.user_id, self._hasher.hash(password))

    def open_for(self, user: UserPrincipal) -> WebSession:
        """A new session for a user who has just proved who they are another way (an accepted invitation)."""
        return self._open(user)

    # --- internals -------------------------------------------------------------------------------

    def _open(self, user: UserPrincipal) -> WebSession:
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        csrf_token = secrets.token_urlsafe(32)
        expires_at_ms = self._clock() + self._lifetime_ms
        self._store.open_session(user.user_id, session_sha256(token), csrf_token, expires_at_ms)
        return WebSession(token, csrf_token, user, expires_at_ms)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def refuse_if_throttled(self, client: str) -> None:
        """Refuse (429) a client past its limit of failed authentications, before any check is made."""
        wait_s = self._failures.waiting_s(client)
        if wait_s is not None:
            raise TooManyRequestsError(self._throttled(wait_s), wait_s)

    def count_failure(self, client: str) -> None:
        """Count a failure of ``client``: :class:`TooManyRequestsError` once past its limit."""
        wait_s = self._failures.failed(client)
        if wait_s is not None:
            raise TooManyRequestsError(self._throttled(wait_s), wait_s)

    @staticmethod
    def _throttled(wait_s: int) -> str:
        return f"too many failed logins from this address; retry in {wait_s} s"
