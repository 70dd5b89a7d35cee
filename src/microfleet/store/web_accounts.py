"""Web accounts in the store: each user's password hash and the browser sessions (migration 0015)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    ForeignKey,
    Integer,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from microfleet.domain.access import Role, UserPrincipal
from microfleet.services.web_sessions import OpenSession
from microfleet.store.schema import metadata, users

user_passwords = Table(
    "user_passwords",
    metadata,
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    # Argon2id in the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), ~100 characters.
    Column("password_hash", String(255), nullable=False),
    Column("updated_at_ms", BigInteger, nullable=False),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # SHA-256 of the cookie's 256-bit random value: the cookie itself is never stored.
    Column("session_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
)


def _user(row: object) -> UserPrincipal:
    m = row._mapping  # type: ignore[attr-defined]
    return UserPrincipal(m["user_id"], m["name"], Role(m["role"]), m["fleet_id"])


_USER_COLUMNS = (users.c.user_id, users.c.name, users.c.role, users.c.fleet_id)


class WebAccountStore:
    """Store password hashes and sessions; resolve a session's hash to its user."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self._engine = engine
        self._clock = clock

    def _now_ms(self) -> int:
        return self._clock()

    def login_of(self, user_name: str) -> tuple[UserPrincipal, str | None] | None:
        """The user by name and their password hash (None if none is set); None for no such user."""
        query = (
            select(*_USER_COLUMNS, user_passwords.c.password_hash)
            .outerjoin(user_passwords, user_passwords.c.user_id == users.c.user_id)
            .where(users.c.name == user_name)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return _user(row), row.password_hash

    def password_hash_of(self, user_id: int) -> str | None:
        """A user's password hash, None if none is set."""
        query = select(user_passwords.c.password_hash).where(user_passwords.c.user_id == user_id)
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Store a user's new password hash and end every session of theirs, in one transaction."""
        now_ms = self._now_ms()
        with self._engine.begin() as conn:
            updated = conn.execute(
                update(user_passwords)
                .where(user_passwords.c.user_id == user_id)
                .values(password_hash=password_hash, updated_at_ms=now_ms)
            )
            if updated.rowcount == 0:
                conn.execute(
                    insert(user_passwords).values(
                        user_id=user_id, password_hash=password_hash, updated_at_ms=now_ms
                    )
                )
            conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))

    def open_session(self, user_id: int, digest: str, csrf_token: str, expires_at_ms: int) -> None:
        """Store a new session, and forget every session that has expired."""
        now_ms = self._now_ms()
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at_ms <= now_ms))
            conn.execute(
                insert(web_sessions).values(
                    session_sha256=digest,
                    user_id=user_id,
                    csrf_token=csrf_token,
                    created_at_ms=now_ms,
                    expires_at_ms=expires_at_ms,
                )
            )

    def session(self, digest: str, now_ms: int) -> OpenSession | None:
        """The live session with this token hash and its user; None if none or expired."""
        query = (
            select(*_USER_COLUMNS, web_sessions.c.csrf_token, web_sessions.c.expires_at_ms)
            .join(users, users.c.user_id == web_sessions.c.user_id)
            .where(web_sessions.c.session_sha256 == digest, web_sessions.c.expires_at_ms > now_ms)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return OpenSession(_user(row), row.csrf_token, row.expires_at_ms)

    def close_session(self, digest: str) -> None:
        """End one session (nothing if there is none)."""
        with self._engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.session_sha256 == digest))
