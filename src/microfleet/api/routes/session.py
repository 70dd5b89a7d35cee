"""A browser's login: open a session (the cookie), say whose it is, end it, change the password.

The session cookie authenticates every API route as the user's API token does; an unsafe request made with
it must carry the session's CSRF token in ``X-CSRF-Token`` (docs/web.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from microfleet.api.auth import CSRF_HEADER, SESSION_COOKIE, UserDep
from microfleet.api.deps import InvitationsDep, NowMsDep, WebSessionsDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.access import UserPrincipal
from microfleet.errors import AuthenticationError
from microfleet.services.web_sessions import PASSWORD_MAX_CHARS, OpenSession, WebSession

router = APIRouter(tags=["session"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

PATH = "/api/v1/session"


class LoginIn(BaseModel):
    """A user name and password."""

    # No control characters: PostgreSQL's text refuses NUL, and no user name holds one (users.name).
    user_name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]


class PasswordChangeIn(BaseModel):
    """The current password and the new one (8 to 256 characters)."""

    current_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]
    new_password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]


class SessionOut(BaseModel):
    """Who is logged in; with a session cookie, its CSRF token and when it ends (UTC epoch ms)."""

    user_name: str
    role: str
    fleet_id: str | None
    csrf_token: str | None  # None when the caller used an API token: no cookie, nothing to protect
    csrf_header: str = CSRF_HEADER
    expires_at_ms: int | None


def _out(user: UserPrincipal, session: OpenSession | WebSession | None) -> SessionOut:
    return SessionOut(
        user_name=user.name,
        role=user.role.value,
        fleet_id=user.fleet_id,
        csrf_token=session.csrf_token if session else None,
        expires_at_ms=session.expires_at_ms if session else None,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _set_cookie(request: Request, response: Response, session: WebSession, now_ms: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max(1, (session.expires_at_ms - now_ms) // 1000),
        path="/",
        httponly=True,  # no script reads it, so an injected one cannot steal it
        samesite="lax",  # not sent on another site's POSTs; links from a notification still open logged in
        secure=request.url.scheme == "https",  # the scheme a trusted proxy forwarded, or the TCP one
    )
    response.headers["Cache-Control"] = "no-store"


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody},
    422: {"model": ErrorBody},
    429: {"model": ErrorBody},
}


@router.post(PATH, response_model=SessionOut, summary="Log in", responses=_ERRORS)
def log_in(
    body: LoginIn, request: Request, response: Response, sessions: WebSessionsDep, now_ms: NowMsDep
) -> SessionOut:
    """Open a session with a user name and password; the answer sets the session cookie.

    A wrong name or password is 401 and counts as a failed authentication of the client address; past the
    limit every try is 429 with ``Retry-After`` until the address has earned tries back.
    """
    session = sessions.login(body.user_name, body.password, _client(request))
    _set_cookie(request, response, session, now_ms)
    return _out(session.user, session)


class InvitationAcceptIn(BaseModel):
    """An invitation's one-time code and the password the new user chooses (8 to 256 characters)."""

    code: Annotated[str, Field(min_length=1, max_length=200)]
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_CHARS)]


@router.post(
    f"{PATH}/invitation",
    response_model=SessionOut,
    summary="Accept an invitation: become the invited user and log in",
    responses={**_ERRORS, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def accept_invitation(
    body: InvitationAcceptIn,
    request: Request,
    response: Response,
    invitations: InvitationsDep,
    now_ms: NowMsDep,
) -> SessionOut:
    """Make the invited user with this password and open their session (the code works once).

    A code that is unknown, used, withdrawn or expired is 401 and counts as a failed authentication of the
    client address, as a wrong password does.
    """
    session = invitations.accept(body.code, body.password, _client(request))
    _set_cookie(request, response, session, now_ms)
    return _out(session.user, session)


@router.get(PATH, response_model=SessionOut, summary="Who is logged in", responses=_ERRORS)
def who_am_i(request: Request, user: UserDep) -> SessionOut:
    """Show the calling user; with the session cookie, also its CSRF token for unsafe requests."""
    return _out(user, getattr(request.state, "web_session", None))


@router.delete(PATH, status_code=204, summary="Log out", responses={403: {"model": ErrorBody}})
def log_out(request: Request, sessions: WebSessionsDep) -> Response:
    """End the session the cookie names (its CSRF token is required) and clear the cookie.

    Without a cookie, or with one whose session has already ended, there is nothing to end: 204 all the same.
    """
    cookie = request.cookies.get(SESSION_COOKIE)
    response = Response(status_code=204)
    if cookie is not None:
        try:
            session = sessions.authenticate(cookie)
        except AuthenticationError:  # an ended session: only the cookie is left to clear
            session = None
        if session is not None:
            sessions.check_csrf(session, request.headers.get(CSRF_HEADER))
            sessions.logout(cookie)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post(
    f"{PATH}/password",
    response_model=SessionOut,
    summary="Change your password",
    responses={**_ERRORS, 403: {"model": ErrorBody}},
)
def change_password(
    body: PasswordChangeIn,
    request: Request,
    response: Response,
    user: UserDep,
    sessions: WebSessionsDep,
    now_ms: NowMsDep,
) -> SessionOut:
    """Replace your password after giving the current one; every session of yours ends.

    A session cookie is replaced by a new one in the answer, so the browser that changed it stays logged in.
    A wrong current password is 403 and counts as a failed authentication, as at login.
    """
    browser = getattr(request.state, "web_session", None) is not None
    session = sessions.change_password(
        user, body.current_password, body.new_password, _client(request), reopen=browser
    )
    if session is None:
        return _out(user, None)  # called with an API token: no browser to keep logged in
    _set_cookie(request, response, session, now_ms)
    return _out(user, session)
