"""Reading the live feed (``GET /api/v1/live``) in tests: Starlette's test client, with a deadline.

The test client's ``receive`` waits forever; a feed that wrongly sends nothing must fail a test, not hang it.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.testclient import WebSocketTestSession

WAIT_S = 20.0


def receive_within(ws: WebSocketTestSession, seconds: float = WAIT_S) -> dict[str, Any]:
    """The next ASGI message the server sent (``websocket.send`` or ``.close``), within ``seconds``."""

    async def receive() -> dict[str, Any]:
        with anyio.fail_after(seconds):
            message: dict[str, Any] = await ws._send_rx.receive()
            return message

    return ws.portal.call(receive)


def events_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one feed message (a JSON array); a close frame fails the test, with its reason."""
    assert message["type"] == "websocket.send", message
    events = json.loads(message["text"])
    assert isinstance(events, list) and events, message
    return events


def read_until(ws: WebSocketTestSession, done: Any, seconds: float = WAIT_S) -> list[dict[str, Any]]:
    """Every event received until ``done(events so far)`` is true (feed items included), in order."""
    received: list[dict[str, Any]] = []
    while not done(received):
        received += events_of(receive_within(ws, seconds))
    return received


def until_ready(received: list[dict[str, Any]]) -> bool:
    """A ``read_until`` condition: the feed's ``ready`` item (the opening replay is over) has arrived."""
    return any(e["kind"] == "ready" for e in received)
