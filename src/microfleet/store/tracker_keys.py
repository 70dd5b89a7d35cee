"""Tracker keys in the store: one per vehicle, kept only as a SHA-256 with a short hint for listings."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from microfleet.errors import ConflictError, NotFoundError
from microfleet.services.tracker_keys import IssuedTrackerKey, TrackerKeyInfo
from microfleet.store.accounts import token_sha256
from microfleet.store.schema import tracker_keys

# The prefix tells a leaked secret's kind at a glance (as mfu_/mfd_ do); 20 random bytes (160 bits) follow.
# SHA-256, not argon2: a 160-bit random key cannot be guessed from its hash, and a salted slow hash would
# cost every phone report tens of ms and rule out the indexed look-up by digest.
TRACKER_KEY_PREFIX = "mft_"
KEY_BYTES = 20
HINT_CHARS = 8  # the prefix and 4 random characters (24 of the 160 bits)


def new_tracker_key() -> str:
    """A fresh 160-bit tracker key with its prefix (URL-safe, so it goes in a query string as is)."""
    return TRACKER_KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


class TrackerKeyStore:
    """Issue, replace, revoke and resolve tracker keys."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self._engine = engine
        self._clock = clock

    def issue(self, vehicle_id: str, *, replace: bool) -> IssuedTrackerKey:
        """A new key for the vehicle; with ``replace`` the old one stops in the same statement."""
        key = new_tracker_key()
        values = {
            "key_sha256": token_sha256(key),
            "key_hint": key[:HINT_CHARS],
            "issued_at_ms": self._clock(),
        }
        with self._engine.begin() as conn:
            if replace:
                result = conn.execute(
                    update(tracker_keys).where(tracker_keys.c.vehicle_id == vehicle_id).values(**values)
                )
                if result.rowcount == 1:
                    return IssuedTrackerKey(vehicle_id, key, replaced=True)
            try:
                conn.execute(insert(tracker_keys).values(vehicle_id=vehicle_id, **values))
            except IntegrityError as exc:
                # Without ``replace`` a vehicle's key is never silently changed; a missing vehicle is the
                # caller's check (the service asks the account store first).
                raise ConflictError(
                    f"vehicle {vehicle_id!r} already has a tracker key; rotate it to replace it"
                ) from exc
        return IssuedTrackerKey(vehicle_id, key, replaced=False)

    def revoke(self, vehicle_id: str) -> None:
        """Delete the vehicle's key; :class:`NotFoundError` if it has none."""
        with self._engine.begin() as conn:
            result = conn.execute(delete(tracker_keys).where(tracker_keys.c.vehicle_id == vehicle_id))
        if result.rowcount == 0:
            raise NotFoundError(f"vehicle {vehicle_id!r} has no tracker key")

    def describe(self, vehicle_id: str) -> TrackerKeyInfo | None:
        """The vehicle's key, masked; None if it has none."""
        query = select(tracker_keys).where(tracker_keys.c.vehicle_id == vehicle_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _info(row) if row is not None else None

    def list(self) -> list[TrackerKeyInfo]:
        """Every live key, masked, by vehicle id."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(tracker_keys).order_by(tracker_keys.c.vehicle_id)).all()
        return [_info(row) for row in rows]

    def vehicle_of(self, key: str) -> str | None:
        """The vehicle a key belongs to; None for any other text (no query for one without the prefix)."""
        if not (key.isascii() and key.startswith(TRACKER_KEY_PREFIX)):
            return None
        query = select(tracker_keys.c.vehicle_id).where(tracker_keys.c.key_sha256 == token_sha256(key))
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar()
        return str(found) if found is not None else None


def _info(row: object) -> TrackerKeyInfo:
    m = row._mapping  # type: ignore[attr-defined]
    return TrackerKeyInfo(m["vehicle_id"], f"{m['key_hint']}…", m["issued_at_ms"])
