"""Your own API tokens: list them, make one (its text shown once), revoke one (docs/web.md, docs/security.md).

A user's token is what a script, Home Assistant or a phone app uses instead of a password; any user may
manage their own (a browser session needs its CSRF token for the two writes, as for every write).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from microfleet.api.auth import UserDep
from microfleet.api.deps import ApiTokensDep
from microfleet.api.errors import INT32_MAX, ErrorBody
from microfleet.services.api_tokens import LABEL_MAX_CHARS, TokenInfo

router = APIRouter(tags=["session"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class TokenIn(BaseModel):
    """What the new token is for, so that you can tell it apart later."""

    label: Annotated[str, Field(min_length=1, max_length=LABEL_MAX_CHARS)]


class TokenOut(BaseModel):
    """One of your live API tokens (never its text: it is stored only as a hash)."""

    token_id: int
    label: str
    created_at_ms: int


class TokenCreated(TokenOut):
    """A token just made: ``token`` is shown this once."""

    token: str


def _out(info: TokenInfo) -> TokenOut:
    return TokenOut(token_id=info.token_id, label=info.label, created_at_ms=info.created_at_ms)


@router.get("/api/v1/tokens", response_model=list[TokenOut], summary="Your live API tokens")
def list_tokens(user: UserDep, tokens: ApiTokensDep) -> list[TokenOut]:
    """Your unrevoked API tokens, oldest first."""
    return [_out(t) for t in tokens.list(user)]


@router.post(
    "/api/v1/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Make yourself an API token",
    responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def create_token(body: TokenIn, user: UserDep, tokens: ApiTokensDep, response: Response) -> TokenCreated:
    """A new API token with your rights; copy it now, it is not shown again (at most 20 live at once)."""
    made = tokens.create(user, body.label)
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(**_out(made.info).model_dump(), token=made.token)


@router.delete(
    "/api/v1/tokens/{token_id}",
    status_code=204,
    summary="Revoke one of your API tokens",
    responses={404: {"model": ErrorBody}},
)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=INT32_MAX)], user: UserDep, tokens: ApiTokensDep
) -> Response:
    """Revoke it at once: the next request made with it is refused (401). Another's token id is 404."""
    tokens.revoke(user, token_id)
    return Response(status_code=204)
