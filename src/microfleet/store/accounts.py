"""Accounts in the store: fleets, users, API tokens, vehicles with their device credentials, grants."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable

from sqlalchemy import ColumnElement, Engine, Select, and_, bindparam, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from microfleet.domain.access import DevicePrincipal, Principal, Role, UserPrincipal, Vehicle
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import AuthenticationError, ConfigurationError, ConflictError, NotFoundError
from microfleet.services.accounts import DeviceCredential
from microfleet.services.api_tokens import NewToken, TokenInfo
from microfleet.store.schema import api_tokens, fleets, grants, users, vehicles

# Prefixes tell a leaked secret's kind at a glance (as GitHub's ghp_/gho_ do); 32 random bytes follow.
USER_TOKEN_PREFIX = "mfu_"
DEVICE_TOKEN_PREFIX = "mfd_"


def new_token(prefix: str) -> str:
    """A fresh 256-bit secret token with its kind prefix."""
    return prefix + secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


# Every API request resolves its token with one of these: built once, with parameters, so a request pays
# neither the statement's construction nor its cache-key walk (SQLAlchemy still caches the compiled form).
_DEVICE_BY_TOKEN = select(vehicles.c.vehicle_id).where(
    or_(
        vehicles.c.device_token_sha256 == bindparam("digest"),
        # the credential a rotation replaced, while its overlap lasts
        and_(
            vehicles.c.previous_device_token_sha256 == bindparam("digest"),
            vehicles.c.previous_device_token_expires_at_ms > bindparam("now_ms"),
        ),
    )
)
_USER_BY_TOKEN = (
    select(users.c.user_id, users.c.name, users.c.role, users.c.fleet_id)
    .join(api_tokens, api_tokens.c.user_id == users.c.user_id)
    .where(api_tokens.c.token_sha256 == bindparam("digest"), api_tokens.c.revoked_at_ms.is_(None))
)


class AccountStore:
    """Create and resolve users, tokens, vehicles and grants; answer who may see which vehicle."""

    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self._engine = engine
        self._clock = clock

    # --- creation (``microfleet admin``) ---------------------------------------------------------

    def add_fleet(self, fleet_id: str, name: str) -> None:
        """Register a fleet."""
        self._insert_unique(
            insert(fleets).values(fleet_id=fleet_id, name=name, created_at_ms=self._clock()),
            f"fleet {fleet_id!r} already exists",
        )

    def add_user(self, name: str, role: Role, fleet_id: str | None = None) -> int:
        """Register a user; returns their id."""
        if fleet_id is not None:
            self._require_fleet(fleet_id)
        with self._engine.begin() as conn:
            try:
                result = conn.execute(
                    insert(users).values(
                        name=name, role=role.value, fleet_id=fleet_id, created_at_ms=self._clock()
                    )
                )
            except IntegrityError as exc:
                raise ConflictError(f"user {name!r} already exists") from exc
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def issue_token(self, user_name: str, label: str = "") -> str:
        """Issue a new API token for a user; the plain token is returned once and stored only hashed."""
        user_id = self._user_id(user_name)
        token = new_token(USER_TOKEN_PREFIX)
        with self._engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_sha256=token_sha256(token),
                    user_id=user_id,
                    label=label,
                    created_at_ms=self._clock(),
                )
            )
        return token

    def live_tokens(self, user_id: int) -> list[TokenInfo]:
        """The user's unrevoked tokens, oldest first (their labels and ages; never the tokens)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(api_tokens.c.token_id, api_tokens.c.label, api_tokens.c.created_at_ms)
                .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at_ms.is_(None))
                .order_by(api_tokens.c.token_id)
            ).all()
        return [TokenInfo(int(r.token_id), r.label, int(r.created_at_ms)) for r in rows]

    def issue_user_token(self, user_id: int, label: str) -> NewToken:
        """A new API token for the user (by id), returned once with its id and stored only hashed."""
        token = new_token(USER_TOKEN_PREFIX)
        now = self._clock()
        with self._engine.begin() as conn:
            result = conn.execute(
                insert(api_tokens).values(
                    token_sha256=token_sha256(token), user_id=user_id, label=label, created_at_ms=now
                )
            )
            key = result.inserted_primary_key
            assert key is not None
        return NewToken(TokenInfo(int(key[0]), label, now), token)

    def revoke_user_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one live token of this user; False when the user holds no such live token."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.token_id == token_id,
                    api_tokens.c.user_id == user_id,
                    api_tokens.c.revoked_at_ms.is_(None),
                )
                .values(revoked_at_ms=self._clock())
            )
            return int(result.rowcount) == 1

    def revoke_tokens(self, user_name: str) -> int:
        """Revoke every live token of a user; returns how many."""
        user_id = self._user_id(user_name)
        with self._engine.begin() as conn:
            result = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at_ms.is_(None))
                .values(revoked_at_ms=self._clock())
            )
            return int(result.rowcount)

    def add_vehicle(
        self,
        vehicle_id: str,
        *,
        name: str | None = None,
        model_id: str | None = None,
        fleet_id: str | None = None,
    ) -> str:
        """Register a vehicle; returns its device credential (shown once, stored only hashed)."""
        if not re.match(VEHICLE_ID_PATTERN, vehicle_id):
            raise ConfigurationError(
                f"vehicle id {vehicle_id!r} is not 1-64 letters, digits, '_', '.', ':' or '-' (protocol v1)"
            )
        if fleet_id is not None:
            self._require_fleet(fleet_id)
        token = new_token(DEVICE_TOKEN_PREFIX)
        self._insert_unique(
            insert(vehicles).values(
                vehicle_id=vehicle_id,
                name=name or vehicle_id,
                model_id=model_id,
                fleet_id=fleet_id,
                device_token_sha256=token_sha256(token),
                created_at_ms=self._clock(),
            ),
            f"vehicle {vehicle_id!r} already exists",
        )
        return token

    def rotate_device_token(self, vehicle_id: str, overlap_ms: int = 0) -> DeviceCredential:
        """Replace a vehicle's device credential; the one replaced keeps working for ``overlap_ms``.

        One statement: the current credential becomes the previous one (ending the previous one's overlap
        if a rotation is already under way) and the new one takes its place, so two rotations at once
        leave one current and one previous credential. With no overlap the replaced one stops at once.
        """
        token = new_token(DEVICE_TOKEN_PREFIX)
        until_ms = self._clock() + overlap_ms if overlap_ms > 0 else None
        with self._engine.begin() as conn:
            result = conn.execute(
                update(vehicles)
                .where(vehicles.c.vehicle_id == vehicle_id)
                .values(
                    # SET reads the row as it was before the UPDATE, on SQLite and PostgreSQL alike.
                    previous_device_token_sha256=vehicles.c.device_token_sha256 if until_ms else None,
                    previous_device_token_expires_at_ms=until_ms,
                    device_token_sha256=token_sha256(token),
                )
            )
        if result.rowcount == 0:
            raise NotFoundError(f"vehicle {vehicle_id!r} does not exist")
        return DeviceCredential(vehicle_id, token, until_ms)

    def grant(self, vehicle_id: str, *, user_name: str | None = None, fleet_id: str | None = None) -> None:
        """Let a user, or every user of a fleet, see a vehicle."""
        if (user_name is None) == (fleet_id is None):
            raise ConfigurationError("a grant goes to exactly one of a user or a fleet")
        self.get_vehicle(vehicle_id)
        user_id = self._user_id(user_name) if user_name is not None else None
        if fleet_id is not None:
            self._require_fleet(fleet_id)
        grantee = f"user {user_name!r}" if user_name else f"fleet {fleet_id!r}"
        self._insert_unique(
            insert(grants).values(
                vehicle_id=vehicle_id, user_id=user_id, fleet_id=fleet_id, created_at_ms=self._clock()
            ),
            f"{grantee} already sees vehicle {vehicle_id!r}",
        )

    # --- resolution (every API request) ----------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token to the user or the vehicle it belongs to."""
        digest = token_sha256(token)
        with self._engine.connect() as conn:
            if token.startswith(DEVICE_TOKEN_PREFIX):
                vehicle_id = conn.execute(
                    _DEVICE_BY_TOKEN, {"digest": digest, "now_ms": self._clock()}
                ).scalar()
                if vehicle_id is not None:
                    return DevicePrincipal(vehicle_id)
            else:
                row = conn.execute(_USER_BY_TOKEN, {"digest": digest}).first()
                if row is not None:
                    return UserPrincipal(row.user_id, row.name, Role(row.role), row.fleet_id)
        raise AuthenticationError("the bearer token is unknown or revoked")

    def _visible(self, user: UserPrincipal) -> Select[tuple[str]]:
        query = select(vehicles.c.vehicle_id)
        if user.role is Role.ADMIN:
            return query
        grantees: list[ColumnElement[bool]] = [grants.c.user_id == user.user_id]
        if user.fleet_id is not None:
            grantees.append(grants.c.fleet_id == user.fleet_id)
        granted = exists().where(grants.c.vehicle_id == vehicles.c.vehicle_id, or_(*grantees))
        conditions: list[ColumnElement[bool]] = [granted]
        if user.role is Role.OPERATOR and user.fleet_id is not None:
            conditions.append(vehicles.c.fleet_id == user.fleet_id)
        return query.where(or_(*conditions))

    def visible_vehicles(self, user: UserPrincipal) -> list[Vehicle]:
        """The vehicles a user may see, by id."""
        ids = self._visible(user).scalar_subquery()
        query = select(vehicles).where(vehicles.c.vehicle_id.in_(ids)).order_by(vehicles.c.vehicle_id)
        with self._engine.connect() as conn:
            return [_vehicle(row) for row in conn.execute(query)]

    def visible_vehicle_ids(self, user: UserPrincipal) -> list[str] | None:
        """Ids of the vehicles a user may see; None for an admin (every vehicle)."""
        if user.role is Role.ADMIN:
            return None
        with self._engine.connect() as conn:
            return [str(v) for v in conn.execute(self._visible(user)).scalars()]

    def can_see(self, user: UserPrincipal, vehicle_id: str) -> bool:
        """Tell whether a user may see one vehicle."""
        query = self._visible(user).where(vehicles.c.vehicle_id == vehicle_id)
        with self._engine.connect() as conn:
            return conn.execute(query).first() is not None

    def get_vehicle(self, vehicle_id: str) -> Vehicle:
        """One vehicle by id."""
        with self._engine.connect() as conn:
            row = conn.execute(select(vehicles).where(vehicles.c.vehicle_id == vehicle_id)).first()
        if row is None:
            raise NotFoundError(f"vehicle {vehicle_id!r} does not exist")
        return _vehicle(row)

    def fleet_exists(self, fleet_id: str) -> bool:
        """Tell whether a fleet is registered."""
        with self._engine.connect() as conn:
            return (
                conn.execute(select(fleets.c.fleet_id).where(fleets.c.fleet_id == fleet_id)).first()
                is not None
            )

    def list_users(self) -> list[UserPrincipal]:
        """Every user."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.user_id))
            return [UserPrincipal(r.user_id, r.name, Role(r.role), r.fleet_id) for r in rows]

    # --- internals -------------------------------------------------------------------------------

    def _insert_unique(self, statement: object, conflict_message: str) -> None:
        with self._engine.begin() as conn:
            try:
                conn.execute(statement)  # type: ignore[call-overload]
            except IntegrityError as exc:
                raise ConflictError(conflict_message) from exc

    def _user_id(self, name: str) -> int:
        with self._engine.connect() as conn:
            user_id = conn.execute(select(users.c.user_id).where(users.c.name == name)).scalar_one_or_none()
        if user_id is None:
            raise NotFoundError(f"user {name!r} does not exist")
        return int(user_id)

    def _require_fleet(self, fleet_id: str) -> None:
        with self._engine.connect() as conn:
            if conn.execute(select(fleets.c.fleet_id).where(fleets.c.fleet_id == fleet_id)).first() is None:
                raise NotFoundError(f"fleet {fleet_id!r} does not exist")


def _vehicle(row: object) -> Vehicle:
    m = row._mapping  # type: ignore[attr-defined]
    return Vehicle(m["vehicle_id"], m["name"], m["model_id"], m["fleet_id"], m["created_at_ms"])
