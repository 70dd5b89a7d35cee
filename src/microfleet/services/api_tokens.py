"""A user's own API tokens: list them, make one (shown once), revoke one — from the web app or the API.

An administrator issues tokens for anyone with ``microfleet admin token``; this is the self-service half: a
user manages only their own, whatever their role. A token is as strong as a session of its user (it sees and
does exactly what the user may), so the number a user holds at once is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

from microfleet.domain.access import UserPrincipal
from microfleet.errors import ConflictError, InvalidInputError, NotFoundError

MAX_LIVE_TOKENS: Final = 20  # enough for a person's scripts and devices; a leak of many is noticed
LABEL_MAX_CHARS: Final = 200  # api_tokens.label


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A live token as its owner sees it: never the token itself, which is stored only as a hash."""

    token_id: int
    label: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: the only time its text is shown."""

    info: TokenInfo
    token: str


class TokenStore(Protocol):
    """The users' API tokens (``microfleet.store.accounts.AccountStore``)."""

    def live_tokens(self, user_id: int) -> list[TokenInfo]:
        """The user's unrevoked tokens, oldest first."""
        ...

    def issue_user_token(self, user_id: int, label: str) -> NewToken:
        """A new token for the user."""
        ...

    def revoke_user_token(self, user_id: int, token_id: int) -> bool:
        """Revoke one of the user's live tokens; False if the user has no such live token."""
        ...


class ApiTokenService:
    """Each user's own API tokens; nobody reaches another's (an id that is not yours is not found)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def list(self, user: UserPrincipal) -> list[TokenInfo]:
        """The caller's live tokens."""
        return self._store.live_tokens(user.user_id)

    def create(self, user: UserPrincipal, label: str) -> NewToken:
        """A new token for the caller, labelled so they can tell it apart later."""
        label = label.strip()
        if not label or len(label) > LABEL_MAX_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in label):
            raise InvalidInputError(
                f"a token's label is 1 to {LABEL_MAX_CHARS} printable characters (e.g. 'home assistant')"
            )
        if len(self._store.live_tokens(user.user_id)) >= MAX_LIVE_TOKENS:
            raise ConflictError(
                f"you already hold {MAX_LIVE_TOKENS} live API tokens: revoke one you no longer use first"
            )
        return self._store.issue_user_token(user.user_id, label)

    def revoke(self, user: UserPrincipal, token_id: int) -> None:
        """Revoke one of the caller's tokens; :class:`NotFoundError` for any other id."""
        if not self._store.revoke_user_token(user.user_id, token_id):
            raise NotFoundError(f"you have no live API token {token_id}")
