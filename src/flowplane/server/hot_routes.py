"""``HotRoutesMiddleware``: a flow run's create and state changes over HTTP, answered by their handlers directly.

Every flow run a client drives makes ``POST /api/flow_runs/`` and two or more
``POST /api/flow_runs/{id}/set_state``. FastAPI spends about as much CPU routing such a
request, solving its dependencies, reading and validating its body and unwinding its
middleware stack as the handler spends on the database. This middleware, placed inside
the authentication and CSRF middlewares, reads the body and hands it to
:func:`flowplane.server.direct_routes.serve`, which calls the very router functions
FastAPI would call with the body validated by the same models. Whatever that is not sure
to answer exactly as the app would (another content type, a body the models refuse, an
error answer) goes on to the app with the body replayed; such a request has changed
nothing, so serving it again is safe.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowplane.server.api import API_PREFIX

_FLOW_RUNS = f"{API_PREFIX}/flow_runs/"
_SET_STATE = "/set_state"


def _is_hot(scope: Scope) -> bool:
    """Whether the request may be one of the hot routes (``direct_routes`` decides for sure)."""
    if scope["method"] != "POST" or scope.get("root_path"):
        return False
    path: str = scope["path"]
    return path == _FLOW_RUNS or (path.startswith(_FLOW_RUNS) and path.endswith(_SET_STATE))


def _is_json(scope: Scope) -> bool:
    """Whether FastAPI would parse the body as JSON: ``application/json`` or ``application/*+json``.

    Without a content type FastAPI (strict by default) refuses the body; that answer is the app's.
    """
    for name, value in scope["headers"]:
        if name == b"content-type":
            mime = value.split(b";", 1)[0].strip().lower()
            return mime == b"application/json" or (
                mime.startswith(b"application/") and mime.endswith(b"+json")
            )
    return False


class HotRoutesMiddleware:
    """Serves the hot flow-run routes by their handlers; everything else goes to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_hot(scope) or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app answers that its own way
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                # Imported here: the handlers import the flow-run router, stores and schemas,
                # which a process that never serves a flow run should not pay for.
                from flowplane.server import direct_routes

                answer = await direct_routes.serve(scope["app"], scope["path"], b"".join(chunks))
                if answer is not None:
                    await answer(scope, receive, send)
                    return
                break
        await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then defers to ``receive``."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
