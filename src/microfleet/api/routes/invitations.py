"""Invitations: an administrator invites a person by user name, role and fleet.

The one-time link opens the web app's page where they choose a password (``POST
/api/v1/session/invitation``, docs/web.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from microfleet.api.auth import UserDep
from microfleet.api.deps import InvitationsDep
from microfleet.api.errors import INT32_MAX, ErrorBody
from microfleet.domain.access import Role
from microfleet.services.invitations import NAME_MAX_CHARS, Invitation

router = APIRouter(tags=["session"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})


class InvitationIn(BaseModel):
    """Who is invited: the user name they will log in with, their role and fleet (operators, drivers)."""

    model_config = ConfigDict(extra="forbid")
    user_name: Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS)]
    role: Role
    fleet_id: Annotated[str | None, Field(max_length=64)] = None


class InvitationOut(BaseModel):
    """A pending invitation (never its code)."""

    invitation_id: int
    user_name: str
    role: Role
    fleet_id: str | None
    created_at_ms: int
    expires_at_ms: int


class InvitationCreated(InvitationOut):
    """An invitation just made: send ``link`` (or ``code``) to the person; it is shown this once."""

    code: str
    link: str


def _out(i: Invitation) -> InvitationOut:
    return InvitationOut(
        invitation_id=i.invitation_id,
        user_name=i.user_name,
        role=i.role,
        fleet_id=i.fleet_id,
        created_at_ms=i.created_at_ms,
        expires_at_ms=i.expires_at_ms,
    )


@router.post(
    "/api/v1/invitations",
    response_model=InvitationCreated,
    status_code=201,
    summary="Invite a person (administrators)",
    responses={409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def invite(
    body: InvitationIn, user: UserDep, invitations: InvitationsDep, response: Response
) -> InvitationCreated:
    """A one-time invitation, valid for 7 days; its link is the web app's page for choosing a password."""
    made = invitations.invite(user, body.user_name, body.role, body.fleet_id)
    response.headers["Cache-Control"] = "no-store"
    return InvitationCreated(
        **_out(made.invitation).model_dump(), code=made.code, link=f"/#/invite?code={made.code}"
    )


@router.get("/api/v1/invitations", response_model=list[InvitationOut], summary="Pending invitations")
def pending(user: UserDep, invitations: InvitationsDep) -> list[InvitationOut]:
    """Invitations not yet accepted, withdrawn or expired (administrators)."""
    return [_out(i) for i in invitations.pending(user)]


@router.delete(
    "/api/v1/invitations/{invitation_id}",
    status_code=204,
    summary="Withdraw an invitation (administrators)",
    responses={404: {"model": ErrorBody}},
)
def withdraw(
    invitation_id: Annotated[int, Path(ge=1, le=INT32_MAX)], user: UserDep, invitations: InvitationsDep
) -> Response:
    """Its link stops working at once."""
    invitations.revoke(user, invitation_id)
    return Response(status_code=204)
