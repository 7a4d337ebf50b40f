"""The websocket side of the Prefect protocol: the auth handshake and streaming until disconnect.

A client that offers the ``prefect`` subprotocol first sends ``{"type": "auth",
"token": ...}`` and is answered ``{"type": "auth_success"}`` or, when the server has an
auth string and the token differs, ``{"type": "auth_failure", "reason": ...}``
followed by a close (1008). A client that does not offer the subprotocol is accepted
without a handshake unless an auth string is set, in which case it is refused (1002).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

logger = logging.getLogger("flowplane.server.websockets")

SUBPROTOCOL = "prefect"
PROTOCOL_ERROR = 1002
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


def auth_string_of(websocket: WebSocket) -> str | None:
    """The server's auth string, if one is configured."""
    settings = getattr(websocket.app.state, "settings", None)
    secret = getattr(settings, "server_api_auth_string", None)
    return secret.get_secret_value() if secret else None


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close the socket if it is still open."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    try:
        await websocket.close(code, reason=reason)
    except (RuntimeError, WebSocketDisconnect):  # already closed by the client
        pass


async def accept(websocket: WebSocket) -> bool:
    """Accept the socket and run the auth handshake; ``False`` means it was refused or lost."""
    auth_string = auth_string_of(websocket)
    offered = [p.strip() for p in websocket.scope.get("subprotocols", [])]
    if SUBPROTOCOL not in offered:
        if auth_string:
            await websocket.close(PROTOCOL_ERROR, reason="The 'prefect' subprotocol is required")
            return False
        await websocket.accept()
        return True

    await websocket.accept(subprotocol=SUBPROTOCOL)
    try:
        message = await receive_json(websocket)
    except WebSocketDisconnect:
        return False
    if not isinstance(message, dict) or message.get("type") != "auth":
        await close(websocket, POLICY_VIOLATION, "Expected 'auth' message")
        return False
    if auth_string:
        token = message.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), auth_string.encode()
        ):
            reason = "Auth required but no token provided" if not token else "Invalid token"
            try:
                await websocket.send_json({"type": "auth_failure", "reason": reason})
            except WebSocketDisconnect:
                return False
            await close(websocket, POLICY_VIOLATION, reason)
            return False
    try:
        await websocket.send_json({"type": "auth_success"})
    except WebSocketDisconnect:
        return False
    return True


async def receive_json(websocket: WebSocket) -> Any:
    """The next message as JSON (text or bytes frame); ``None`` if it is not JSON.

    Raises:
        WebSocketDisconnect: the client went away.
    """
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    raw = message.get("text")
    if raw is None:
        raw = (message.get("bytes") or b"").decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except ValueError:
        return None


async def iter_text(websocket: WebSocket) -> AsyncIterator[str]:
    """Text (or UTF-8 bytes) frames until the client disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None and message.get("bytes") is not None:
            text = message["bytes"].decode("utf-8", errors="replace")
        if text is not None:
            yield text


async def _until_disconnect(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def serve_until_disconnect(
    websocket: WebSocket, sender: Callable[[], Awaitable[None]]
) -> None:
    """Run ``sender`` until it returns or the client disconnects, whichever is first.

    Incoming frames after the handshake are read (and ignored) so that a disconnect
    is noticed at once even while nothing is being sent.
    """
    sending = asyncio.ensure_future(sender())
    listening = asyncio.ensure_future(_until_disconnect(websocket))
    try:
        done, _ = await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, listening):
            if not task.done():
                task.cancel()
        for task in (sending, listening):
            try:
                await task
            except (asyncio.CancelledError, WebSocketDisconnect, RuntimeError, OSError):
                pass  # the client went away, or the other half finished first
            except Exception:
                logger.exception("Websocket stream failed")
