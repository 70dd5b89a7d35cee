"""``/ocpp/{charge_point_id}``: the OCPP 1.6J central system's WebSocket (docs/charging.md).

A charger connects with subprotocol ``ocpp1.6`` and HTTP Basic auth: user name its own identity, password
the one Microfleet issued when it was registered (OCPP 1.6 security profile 1; put TLS in front, as for
the API, for profile 2). Anything else is refused before the WebSocket opens (HTTP 403): no unknown or
unauthenticated charger is ever heard. Outside the OpenAPI document, like the live feed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from microfleet.bootstrap import Services
from microfleet.errors import AuthenticationError, TooManyRequestsError

router = APIRouter()
log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"  # OCPP-J 1.6 §3.1.2: the WebSocket subprotocol name
CLOSE_POLICY = 1008  # RFC 6455: policy violation


class StarletteLink:
    """A Starlette WebSocket as the text link the ``ocpp`` library reads and writes."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def recv(self) -> str:
        """The next text frame."""
        return await self._websocket.receive_text()

    async def send(self, message: str) -> None:
        """Send a text frame."""
        await self._websocket.send_text(message)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if header is None or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


@router.websocket("/ocpp/{charge_point_id}")
async def ocpp_charge_point(websocket: WebSocket, charge_point_id: str) -> None:
    """One charger's OCPP 1.6J connection."""
    services: Services = websocket.app.state.services
    if SUBPROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(code=CLOSE_POLICY)
        return
    credentials = _basic_credentials(websocket.headers.get("authorization"))
    client = websocket.client.host if websocket.client else "unknown"
    if credentials is None or credentials[0] != charge_point_id:
        await websocket.close(code=CLOSE_POLICY)
        return
    try:
        point = await asyncio.to_thread(
            services.charge_points.authenticate, charge_point_id, credentials[1], client
        )
    except (AuthenticationError, TooManyRequestsError):
        await websocket.close(code=CLOSE_POLICY)
        return
    await websocket.accept(subprotocol=SUBPROTOCOL)
    with contextlib.suppress(WebSocketDisconnect):
        await websocket.app.state.ocpp.serve(point, StarletteLink(websocket))
