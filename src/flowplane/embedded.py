"""Embedded mode: the API app served inside this process on a private event-loop thread, reached through httpx transports.

With no API URL set, clients talk to the server app running in this process on
the home folder's database — no server process, no port. The app runs on its own
event loop in a daemon thread, so one app per database serves every client of the
process, sync or async, whatever event loops those clients live on (a ``Client``
in plain code, an ``AsyncClient`` under one ``asyncio.run`` and then another). Its
lifespan (migrations, services) is entered on first use and left at exit.

This is the one module outside ``flowplane.server`` and ``flowplane.cli`` that
imports the server, and only inside functions: ``import flowplane.client`` stays
free of FastAPI and SQLAlchemy until an embedded request is actually made.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import gc
import logging
import os
import threading
from typing import Any

import httpx
import orjson

from flowplane.exceptions import APIUnreachable
from flowplane.settings import Settings

logger = logging.getLogger("flowplane.embedded")

#: Seconds to wait for the app's lifespan to finish at exit (services drain).
SHUTDOWN_TIMEOUT = 15.0

#: Bulk-ingestion routes served without the ASGI stack: path -> (kind, status, body).
_INGEST_ROUTES: dict[str, tuple[str, int, bytes]] = {
    "/api/events": ("events", 204, b""),
    "/api/logs/": ("logs", 201, b"null"),
}


class EmbeddedServer:
    """The server app for one database, on its own event loop in a daemon thread.

    Started on first use, shared by every client of the process on the same
    database, stopped at interpreter exit (or by :func:`shutdown_embedded_servers`).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database_url = settings.resolved_database_url
        self.where = f"embedded ({self.database_url})"
        self._lock = threading.Lock()
        self._started: concurrent.futures.Future[asyncio.AbstractEventLoop] | None = None
        self._thread: threading.Thread | None = None
        self._transport: httpx.ASGITransport | None = None
        self._app: Any = None
        # Auth and CSRF checks live in middleware: with either on, every request takes the app.
        self._direct_ingest = (
            not settings.server_api_auth_string and not settings.server_csrf_protection_enabled
        )

    # --- lifecycle ---

    def start(self) -> concurrent.futures.Future[asyncio.AbstractEventLoop]:
        """Start the app if it is not running; the future resolves to its loop once it serves."""
        with self._lock:
            if self._started is None:
                self._started = concurrent.futures.Future()
                self._thread = threading.Thread(
                    target=self._serve, name="flowplane-embedded-server", daemon=True
                )
                self._thread.start()
            return self._started

    def _serve(self) -> None:
        assert self._started is not None
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # Start-up (imports, routes, models, the database) allocates ~150k objects that live
        # as long as the process and frees almost none: garbage collections during it scan
        # them again and again for nothing (~15% of a first flow run's CPU). The lifespan
        # freezes what start-up built, so collecting resumes with nothing of it to scan.
        collecting = gc.isenabled()
        gc.disable()
        try:
            from flowplane.server.app import create_app

            # Like Prefect's ephemeral server: no scheduler in a short-lived process (a CLI
            # command or a script would otherwise create runs for every deployment).
            settings = self.settings.model_copy(update={"server_services_scheduler_enabled": False})
            app = create_app(settings)
            lifespan = app.router.lifespan_context(app)
            loop.run_until_complete(lifespan.__aenter__())
        except BaseException as exc:  # report any start failure to the waiting clients
            _forget(self)
            loop.close()
            self._started.set_exception(exc)
            return
        finally:
            if collecting:
                gc.enable()
        self._app = app
        self._transport = httpx.ASGITransport(app=_LoggedApp(app), raise_app_exceptions=False)
        self._started.set_result(loop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(lifespan.__aexit__(None, None, None))
            except Exception:
                logger.exception("The embedded server did not shut down cleanly")
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Leave the app's lifespan and end its thread (waiting at most ``timeout`` seconds)."""
        started, thread = self._started, self._thread
        if started is None or thread is None:
            return
        try:
            loop = started.result(timeout=timeout)
        except Exception:  # it never started: nothing to stop
            return
        if loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    def running_loop(self) -> asyncio.AbstractEventLoop:
        """Block until the app serves and return its loop; a failed start, or a server
        stopped since (a client kept from before ``shutdown_embedded_servers``), is
        ``APIUnreachable``."""
        try:
            loop = self.start().result()
        except Exception as exc:
            raise APIUnreachable(self.where, f"the embedded server failed to start: {exc}") from exc
        return self._serving(loop)

    async def running_loop_async(self) -> asyncio.AbstractEventLoop:
        """:meth:`running_loop` without blocking the caller's event loop."""
        try:
            loop = await asyncio.wrap_future(self.start())
        except Exception as exc:
            raise APIUnreachable(self.where, f"the embedded server failed to start: {exc}") from exc
        return self._serving(loop)

    def _serving(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        """``loop``, unless the server was stopped since it started (``APIUnreachable``)."""
        if loop.is_closed():
            raise APIUnreachable(self.where, "the embedded server was stopped")
        return loop

    # --- requests ---

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Serve one request on the app's loop; the answer is read in full."""
        assert self._transport is not None
        if self._direct_ingest and request.method == "POST":
            route = _INGEST_ROUTES.get(request.url.path)
            if route is not None:
                direct = await self._ingest(request, *route)
                if direct is not None:
                    return direct
            else:
                answer = await self._flow_run_route(request)
                if answer is not None:
                    return answer
        response = await self._transport.handle_async_request(request)
        chunks = [chunk async for chunk in response.stream]  # type: ignore[union-attr]
        return httpx.Response(
            response.status_code, headers=response.headers, content=b"".join(chunks)
        )

    async def ingest_batches(
        self, batches: list[tuple[str, bytes]], changes: list[Any] | None = None
    ) -> bool:
        """Ingest several JSON-encoded bodies of ("events" | "logs") and the task-run state
        changes of this process's engine (``TaskRunChange``) in one hop.

        Returns ``False``, having ingested nothing, if any body is one the route would not
        accept as is: the caller then sends each the usual way, and gets the usual answers.
        """
        from pydantic import ValidationError

        from flowplane.server import ingestion

        try:
            validated = [
                (kind, ingestion.validate(kind, orjson.loads(body))) for kind, body in batches
            ]
        except (orjson.JSONDecodeError, ValidationError):
            return False
        # Task runs first, then logs: recording either again is harmless (a state is stored
        # once by id; logs are the one step that can fail), and once both are stored, the
        # events are published, so the writer's retry cannot publish them twice.
        if changes:
            await ingestion.record_task_run_changes(self._app, changes)
        for kind, items in sorted(validated, key=lambda pair: pair[0] != "logs"):
            await ingestion.ingest(self._app, kind, items)
        return True

    async def _ingest(
        self, request: httpx.Request, kind: str, status: int, content: bytes
    ) -> httpx.Response | None:
        """Serve a batch of events or log lines (the writer's requests) with the routers' own
        ingestion function, skipping HTTP framing, middleware and routing.

        Returns ``None`` for anything the route would not accept as is (a body orjson cannot
        read, a validation error): the app then serves the request and answers exactly as
        it always does.
        """
        from pydantic import ValidationError

        from flowplane.server import ingestion

        try:
            items = ingestion.validate(kind, orjson.loads(request.content))
        except (httpx.RequestNotRead, orjson.JSONDecodeError, ValidationError):
            return None
        try:
            await ingestion.ingest(self._app, kind, items)
        except Exception:
            logger.exception("Unhandled error in the embedded API (POST %s)", request.url.path)
            return httpx.Response(500, text="Internal Server Error", request=request)
        headers = {"content-type": "application/json"} if content else {}
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _flow_run_route(self, request: httpx.Request) -> httpx.Response | None:
        """Serve a flow run's create or state change with the router's own handler (see
        ``flowplane.server.direct_routes``); ``None`` lets the app serve the request."""
        from flowplane.server import direct_routes

        try:
            content = request.content
        except httpx.RequestNotRead:
            return None
        try:
            answer = await direct_routes.serve(self._app, request.url.path, content)
        except Exception:
            logger.exception("Unhandled error in the embedded API (POST %s)", request.url.path)
            return httpx.Response(500, text="Internal Server Error", request=request)
        if answer is None:
            return None
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
        return httpx.Response(
            answer.status_code, headers=headers, content=bytes(answer.body), request=request
        )

    def on_server_thread(self) -> bool:
        return threading.current_thread() is self._thread


class _LoggedApp:
    """Logs an exception escaping the app (the client then sees a plain 500)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            logger.exception(
                "Unhandled error in the embedded API (%s %s)",
                scope.get("method"),
                scope.get("path"),
            )
            raise


class _SyncTransport(httpx.BaseTransport):
    """Forwards a sync client's requests to the embedded app's loop and waits for the answer."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        loop = self.server.running_loop()
        if self.server.on_server_thread():
            raise RuntimeError(
                "A sync flowplane client cannot be used on the embedded server's own thread"
            )
        future = asyncio.run_coroutine_threadsafe(self.server.handle(request), loop)
        return future.result()


class _AsyncTransport(httpx.AsyncBaseTransport):
    """Forwards an async client's requests to the embedded app's loop and awaits the answer."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        loop = await self.server.running_loop_async()
        future = asyncio.run_coroutine_threadsafe(self.server.handle(request), loop)
        return await asyncio.wrap_future(future)


def send_batches(
    client: Any, events: list[Any], logs: list[Any], changes: list[Any] | None = None
) -> bool:
    """Hand a writer's events, log lines and task-run changes to the embedded app behind
    ``client`` in one hop.

    The bodies are encoded exactly as ``create_events``/``create_logs`` encode them and
    ingested by the routers' own function; task-run changes (``TaskRunChange``) are
    recorded as the task-run recorder records their events. Returns ``False`` (nothing
    sent) when ``client`` is not a sync client of an embedded app that takes batches
    directly, or a body would not be accepted as is; the caller then sends them as
    requests.
    """
    from flowplane.client._protocol import encode

    transport = getattr(getattr(client, "_http", None), "_transport", None)
    if not isinstance(transport, _SyncTransport):
        return False
    server = transport.server
    loop = server.running_loop()
    if not server._direct_ingest or server.on_server_thread():
        return False
    batches = [
        (kind, encode(items)) for kind, items in (("events", events), ("logs", logs)) if items
    ]
    future = asyncio.run_coroutine_threadsafe(server.ingest_batches(batches, changes), loop)
    return future.result()


# --- one server per process and database --------------------------------------------

_servers: dict[tuple[int, str], EmbeddedServer] = {}
_servers_lock = threading.Lock()
_atexit_registered = False


def embedded_server(settings: Settings) -> EmbeddedServer:
    """The process's embedded server for ``settings``' database (created, not yet started)."""
    global _atexit_registered
    key = (os.getpid(), settings.resolved_database_url)  # a forked child gets its own
    with _servers_lock:
        server = _servers.get(key)
        if server is None:
            server = _servers[key] = EmbeddedServer(settings)
            if not _atexit_registered:
                atexit.register(shutdown_embedded_servers)
                _atexit_registered = True
        return server


def _forget(server: EmbeddedServer) -> None:
    with _servers_lock:
        for key, value in list(_servers.items()):
            if value is server:
                del _servers[key]


def shutdown_embedded_servers(timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Stop every embedded server of this process (run at exit; tests call it too)."""
    with _servers_lock:
        servers = [s for (pid, _), s in _servers.items() if pid == os.getpid()]
        _servers.clear()
    for server in servers:
        server.stop(timeout)


def sync_transport(settings: Settings) -> httpx.BaseTransport:
    """A transport for ``httpx.Client`` that serves requests with the embedded app."""
    return _SyncTransport(embedded_server(settings))


def async_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """A transport for ``httpx.AsyncClient`` that serves requests with the embedded app."""
    return _AsyncTransport(embedded_server(settings))
