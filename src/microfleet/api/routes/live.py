"""``GET /api/v1/live``: the live feed over a WebSocket (protocol, resume and back-pressure: docs/live.md).

The caller authenticates with the API's bearer token, in the ``Authorization`` header or, from a browser
(which cannot set headers on a WebSocket), as the first message ``{"token": "..."}``; never in the URL,
which access logs keep. The web app's own page uses its session cookie instead: accepted only from a page
of this server's origin (the ``Origin`` header must name the ``Host``), since neither SameSite nor CORS
keeps a foreign page from opening a WebSocket with the user's cookie (cross-site WebSocket hijacking).
Every refusal is a close frame before any event: 1008 for no, a wrong or a device's token, an ended
session or a foreign origin, 1013 after too many failed authentications.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from microfleet.api.auth import SESSION_COOKIE
from microfleet.bootstrap import Services
from microfleet.domain.access import Principal
from microfleet.errors import (
    AuthenticationError,
    LiveFeedEndedError,
    MicrofleetError,
    PermissionDeniedError,
    TooManyRequestsError,
)
from microfleet.services.live_feed import (
    CLOSE_POLICY,
    CLOSE_TRY_LATER,
    LiveFeed,
    Recheck,
    Subscription,
)
from microfleet.services.web_sessions import WebSessionService

router = APIRouter()
log = logging.getLogger(__name__)
CLOSE_INTERNAL_ERROR = 1011  # RFC 6455: the server met an unexpected condition

PATH = "/api/v1/live"
AUTH_MESSAGE_TIMEOUT_S = 10.0  # how long a client without the header has to send {"token": ...}
AUTH_MESSAGE_MAX_CHARS = 4096
_BEARER = re.compile(r"(?i:bearer) ([A-Za-z0-9\-._~+/]+=*)")  # as api/auth.py reads the header
_AFTER = re.compile(r"[0-9]{1,18}")  # an event id: a non-negative BIGINT
_CLOSE_REASON_MAX_BYTES = 123  # RFC 6455 section 5.5: a control frame's payload is at most 125 bytes
_DEFAULT_PORTS = {"http": "80", "https": "443"}


@router.websocket(PATH)
async def live(websocket: WebSocket) -> None:
    """Stream the caller's visible vehicles' events; ``?after=EVENT_ID`` resumes after that event."""
    services: Services = websocket.app.state.services
    feed = services.live_feed
    await websocket.accept()
    after_text = websocket.query_params.get("after")
    if after_text is not None and not _AFTER.fullmatch(after_text):
        await _close(websocket, CLOSE_POLICY, "after must be the event_id of the last event received")
        return
    client = websocket.client.host if websocket.client else "unknown"
    try:
        recheck = await _credential(websocket, feed, services.web_sessions, client)
        user = await feed.authenticate_with(recheck)
    except WebSocketDisconnect:
        return
    except (AuthenticationError, PermissionDeniedError) as exc:
        await _close(websocket, CLOSE_POLICY, f"{exc.code}: {exc.message}")
        return
    except TooManyRequestsError as exc:
        await _close(websocket, CLOSE_TRY_LATER, f"{exc.code}: {exc.message}")
        return
    except MicrofleetError as exc:  # the store is unavailable
        await _close(websocket, CLOSE_TRY_LATER, exc.message)
        return
    sub = await feed.subscribe(user, recheck, client)
    try:
        await _serve(websocket, feed, sub, None if after_text is None else int(after_text))
    finally:
        feed.unsubscribe(sub)


async def _credential(
    websocket: WebSocket, feed: LiveFeed, sessions: WebSessionService, client: str
) -> Recheck:
    """How to authenticate the caller, now and again later: its bearer token, else its session cookie."""
    cookie = websocket.cookies.get(SESSION_COOKIE)
    if websocket.headers.get("authorization") is None and cookie is not None:
        _check_origin(websocket)
        session_token = cookie

        def recheck() -> Principal:  # a session ends by expiry, log-out and password change
            return sessions.authenticate(session_token).user

        return recheck
    return feed.token_recheck(await _token(websocket), client)


def _check_origin(websocket: WebSocket) -> None:
    """Refuse a session cookie sent by a page that is not this server's (or by no page at all)."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    own = None if origin is None or host is None else _netloc(origin)
    if own is None or own != _netloc(f"http://{host}", keep_scheme=False):
        raise PermissionDeniedError(
            "the session cookie is accepted only from this server's own pages (Origin); "
            "other clients send an API token"
        )


def _netloc(url: str, *, keep_scheme: bool = True) -> str | None:
    """``host:port`` of an origin in lower case, the scheme's default port dropped; None if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    text_port = "" if port is None else str(port)
    if keep_scheme and text_port == _DEFAULT_PORTS[parts.scheme]:
        text_port = ""
    if not keep_scheme and text_port in _DEFAULT_PORTS.values():
        text_port = ""
    return parts.hostname.lower() + (f":{text_port}" if text_port else "")


async def _token(websocket: WebSocket) -> str:
    """The bearer token from the header, else from the first message; AuthenticationError if neither."""
    header = websocket.headers.get("authorization")
    if header is not None:
        match = _BEARER.fullmatch(header)
        if match is None:
            raise AuthenticationError("the Authorization header must be 'Bearer <token>' with one space")
        return match.group(1)
    try:
        async with asyncio.timeout(AUTH_MESSAGE_TIMEOUT_S):
            first = await websocket.receive_text()
    except TimeoutError:
        raise AuthenticationError(
            'send a token: the Authorization header, or the first message {"token": "..."}'
        ) from None
    try:
        token = json.loads(first[:AUTH_MESSAGE_MAX_CHARS]).get("token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not _BEARER.fullmatch(f"Bearer {token}"):
        raise AuthenticationError('the first message must be {"token": "<your API token>"}')
    return token


async def _serve(websocket: WebSocket, feed: LiveFeed, sub: Subscription, after: int | None) -> None:
    """Send the opening messages, then the live ones, until the client leaves or the feed ends it."""

    async def send() -> None:
        async for message in feed.opening(sub, after):
            if sub.ended is not None:
                return  # closed below with the feed's code and reason
            await websocket.send_text(message)
        while True:
            limits = feed.limits
            await websocket.send_text(await sub.next_message(limits.frame_max_events, limits.frame_max_chars))

    async def receive() -> None:  # what a client sends is not read; this notices it leaving
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.ensure_future(c) for c in (send(), receive(), sub.wait_ended())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
    for task in done:
        ended = task.exception() if not task.cancelled() else None
        if ended is None and task is tasks[2]:
            ended = task.result()
        if isinstance(ended, LiveFeedEndedError):
            await _close(websocket, ended.close_code, ended.message)
            return
        # A client gone mid-send is an OSError (uvicorn's ClientDisconnected) or a disconnect message.
        if ended is not None and not isinstance(ended, WebSocketDisconnect | OSError):
            log.error("live feed connection failed", exc_info=ended)
            await _close(
                websocket, CLOSE_INTERNAL_ERROR, "internal error; reconnect with ?after=<last event_id>"
            )
            return
    if sub.ended is not None:  # ended while the opening was being sent
        await _close(websocket, sub.ended.close_code, sub.ended.message)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close with ``code`` and as much of ``reason`` as a close frame holds; a gone client is fine."""
    reason = reason.encode()[:_CLOSE_REASON_MAX_BYTES].decode("utf-8", "ignore")
    with contextlib.suppress(Exception):
        await websocket.close(code, reason)
