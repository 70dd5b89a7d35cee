"""Invitations in the store (migration 0020).

An administrator's invitation for a person to join, kept as the SHA-256 of its one-time code, and claimed at
most once by a single conditional UPDATE.
"""

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
    insert,
    select,
    update,
)

from microfleet.domain.access import Role
from microfleet.services.invitations import Invitation
from microfleet.store.schema import metadata

invitations = Table(
    "invitations",
    metadata,
    Column("invitation_id", Integer, primary_key=True, autoincrement=True),
    # SHA-256 of the 256-bit random code: the code itself is shown once, in the invitation's link.
    Column("code_sha256", String(64), nullable=False, unique=True),
    Column("user_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("fleet_id", String(64), ForeignKey("fleets.fleet_id", ondelete="CASCADE"), nullable=True),
    Column("created_by_user_id", Integer, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("accepted_at_ms", BigInteger, nullable=True),
    Column("revoked_at_ms", BigInteger, nullable=True),
)


def _invitation(row: object) -> Invitation:
    m = row._mapping  # type: ignore[attr-defined]
    return Invitation(
        invitation_id=int(m["invitation_id"]),
        user_name=m["user_name"],
        role=Role(m["role"]),
        fleet_id=m["fleet_id"],
        created_at_ms=int(m["created_at_ms"]),
        expires_at_ms=int(m["expires_at_ms"]),
    )


_PENDING = (invitations.c.accepted_at_ms.is_(None), invitations.c.revoked_at_ms.is_(None))


class InvitationStore:
    """Create, list, revoke and claim invitations."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self._engine = engine
        self._clock = clock

    def create(
        self,
        code_sha256: str,
        user_name: str,
        role: Role,
        fleet_id: str | None,
        created_by_user_id: int,
        expires_at_ms: int,
    ) -> Invitation:
        """Store a new invitation (the code only as its hash)."""
        now = self._clock()
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(invitations).values(
                    code_sha256=code_sha256,
                    user_name=user_name,
                    role=role.value,
                    fleet_id=fleet_id,
                    created_by_user_id=created_by_user_id,
                    created_at_ms=now,
                    expires_at_ms=expires_at_ms,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
        return Invitation(int(key[0]), user_name, role, fleet_id, now, expires_at_ms)

    def pending(self, now_ms: int) -> list[Invitation]:
        """Invitations neither accepted, revoked nor expired, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(invitations)
                .where(*_PENDING, invitations.c.expires_at_ms > now_ms)
                .order_by(invitations.c.invitation_id)
            ).all()
        return [_invitation(r) for r in rows]

    def pending_for_name(self, user_name: str, now_ms: int) -> bool:
        """Tell whether a live invitation already names this user."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(invitations.c.invitation_id).where(
                    *_PENDING, invitations.c.expires_at_ms > now_ms, invitations.c.user_name == user_name
                )
            ).first()
        return row is not None

    def revoke(self, invitation_id: int, now_ms: int) -> bool:
        """Revoke a pending invitation; False when there is no such pending one."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(invitations)
                .where(invitations.c.invitation_id == invitation_id, *_PENDING)
                .values(revoked_at_ms=now_ms)
            )
            return int(result.rowcount) == 1

    def claim(self, code_sha256: str, now_ms: int) -> Invitation | None:
        """Mark the live invitation with this code accepted and return it; None if there is none.

        One conditional UPDATE: of two people racing with the same code, exactly one claims it.
        """
        with self._engine.begin() as conn:
            result = conn.execute(
                update(invitations)
                .where(
                    invitations.c.code_sha256 == code_sha256,
                    *_PENDING,
                    invitations.c.expires_at_ms > now_ms,
                )
                .values(accepted_at_ms=now_ms)
            )
            if int(result.rowcount) != 1:
                return None
            row = conn.execute(select(invitations).where(invitations.c.code_sha256 == code_sha256)).one()
        return _invitation(row)

    def unclaim(self, invitation_id: int) -> None:
        """Give a claimed invitation back (the account could not be made after all)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(invitations)
                .where(invitations.c.invitation_id == invitation_id)
                .values(accepted_at_ms=None)
            )
