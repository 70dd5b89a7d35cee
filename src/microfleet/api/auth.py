"""Who is calling: bearer tokens resolved to a user or a vehicle, and per-vehicle access checks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from microfleet.api.deps import AccountsDep, WebSessionsDep
from microfleet.domain.access import DevicePrincipal, Principal, UserPrincipal, Vehicle
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import AuthenticationError, PermissionDeniedError


def forwarded_header_options(trusted_proxies: Sequence[str]) -> dict[str, Any]:
    """The uvicorn options for ``X-Forwarded-For``/``-Proto``: believed only from ``trusted_proxies``.

    uvicorn's own default believes them from 127.0.0.1, so any local process (or a proxy that passes the
    header through) could name the client address that quarantine records and throttling counts. With no
    trusted proxy the headers are ignored and the client is the TCP peer.
    """
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}


_bearer = HTTPBearer(auto_error=False, description="An API token (users) or a device credential (vehicles).")

SESSION_COOKIE = "microfleet_session"
"""The web app's session cookie (HttpOnly, SameSite=Lax; Secure over TLS): docs/web.md."""
CSRF_HEADER = "X-CSRF-Token"
"""The header a page sends its session's CSRF token in on every unsafe request."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Dependencies are ``async def`` so FastAPI runs them on the event loop instead of hopping to a worker
# thread for each; the token look-up is one indexed SELECT, far shorter than a thread hand-off.


# ``Bearer`` in any letter case (RFC 7235 §2.1: the scheme is case-insensitive), ONE space, then a
# b64token (RFC 6750 §2.1); anything else - two spaces, a tab, a trailing blank - is refused, so one
# credential has exactly one spelling.
_AUTHORIZATION = re.compile(r"(?i:bearer) ([A-Za-z0-9\-._~+/]+=*)")


async def principal(
    request: Request,
    accounts: AccountsDep,
    web_sessions: WebSessionsDep,
    # Declared for the OpenAPI document's security scheme; the header is parsed strictly below.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the bearer token of the request, else its session cookie (a browser logged in)."""
    header = request.headers.get("authorization")
    if header is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is None:
            raise AuthenticationError("send a token: 'Authorization: Bearer <token>', or log in")
        # A browser's session: the same user, and so the same authorisation, as their API tokens.
        session = web_sessions.authenticate(cookie)
        if request.method not in SAFE_METHODS:
            web_sessions.check_csrf(session, request.headers.get(CSRF_HEADER))
        request.state.web_session = session
        return session.user
    match = _AUTHORIZATION.fullmatch(header)
    if match is None:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>' with one space")
    # The address uvicorn reports: the TCP peer, or what a trusted proxy forwarded (forwarded_header_options).
    client = request.client.host if request.client else "unknown"
    return accounts.authenticate(match.group(1), client)


async def current_user(caller: Annotated[Principal, Depends(principal)]) -> UserPrincipal:
    """The calling user; a device credential is refused here."""
    if isinstance(caller, DevicePrincipal):
        raise PermissionDeniedError("a device credential only writes telemetry; use a user's API token")
    return caller


async def current_device(caller: Annotated[Principal, Depends(principal)]) -> DevicePrincipal:
    """The calling vehicle; a user's API token is refused here."""
    if isinstance(caller, UserPrincipal):
        raise PermissionDeniedError("telemetry is written with the vehicle's own device credential")
    return caller


UserDep = Annotated[UserPrincipal, Depends(current_user)]
DeviceDep = Annotated[DevicePrincipal, Depends(current_device)]


def visible_vehicle(
    # The pattern every vehicle id was registered with; it also keeps NUL (which PostgreSQL text refuses) out.
    vehicle_id: Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")],
    user: UserDep,
    accounts: AccountsDep,
) -> Vehicle:
    """The vehicle named in the path, if the caller may see it (else 404, so ids don't leak)."""
    return accounts.vehicle_for(user, vehicle_id)


VehicleDep = Annotated[Vehicle, Depends(visible_vehicle)]
