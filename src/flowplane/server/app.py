"""``create_app(settings)``: the FastAPI application with its routers, errors, lifespan and services."""

from __future__ import annotations

import base64
import gc
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flowplane import __version__
from flowplane.schemas.base import now_utc
from flowplane.server.api import API_PREFIX
from flowplane.server.db import migrate
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.hot_routes import HotRoutesMiddleware
from flowplane.server.routers import LazyRouters, LazyRoutersMiddleware
from flowplane.server.services.base import ServiceRunner
from flowplane.settings import Settings


def _services(app: FastAPI) -> list[Any]:
    """The background services to run beside the API."""
    from flowplane.server.services.registry import build_services

    return build_services(app)


def create_app(
    settings: Settings | None = None,
    *,
    run_migrations: bool = True,
    run_services: bool | None = None,
) -> FastAPI:
    """Build the server application.

    Args:
        settings: the settings to serve with (read from the environment if omitted).
        run_migrations: upgrade the database schema on start.
        run_services: run background services (default: ``settings.server_services_enabled``).

    Returns:
        The FastAPI app. Its lifespan opens the database and starts the services.
    """
    settings = settings or Settings.load()
    services_on = settings.server_services_enabled if run_services is None else run_services

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.resolved_database_url,
            timeout=settings.database_timeout,
            echo=settings.database_echo,
        )
        if run_migrations:
            await migrate.ensure_current(db.engine)
        app.state.db = db
        app.state.bus = EventBus()
        runner = ServiceRunner(_services(app) if services_on else [])
        app.state.services = runner
        await runner.start()
        # What start-up built (modules, routes, schemas) lives as long as the process:
        # freezing it keeps later garbage collections from rescanning ~150k objects,
        # which otherwise costs every request and, embedded, every task call.
        gc.freeze()
        try:
            yield
        finally:
            await runner.stop()
            await db.dispose()

    app = FastAPI(
        title="flowplane",
        version=__version__,
        description="Workflow orchestration API (Prefect 3 compatible).",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
    )
    app.state.settings = settings

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    # The API routers are included as requests first need them (see flowplane.server.routers);
    # the OpenAPI document lists every route, so it includes them all first.
    routers = LazyRouters(app)
    app.state.routers = routers
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        routers.load_all()
        return build_openapi()

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler fails (500) when the bad input holds NaN or infinity, which
        # JSON cannot carry; orjson writes them as null, so the client still gets its 422.
        from fastapi.encoders import jsonable_encoder

        body = orjson.dumps({"detail": jsonable_encoder(exc.errors())})
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(sa.exc.IntegrityError)
    async def integrity_error(request: Request, exc: sa.exc.IntegrityError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "The request conflicts with existing data (a unique or foreign key constraint)."
            },
            status_code=409,
        )

    auth = (
        settings.server_api_auth_string.get_secret_value()
        if settings.server_api_auth_string
        else None
    )
    app.add_middleware(LazyRoutersMiddleware, routers=routers)
    # Inside authentication and CSRF, which still apply to the routes it answers.
    app.add_middleware(HotRoutesMiddleware)
    if settings.server_csrf_protection_enabled:
        app.add_middleware(CsrfMiddleware)
    if auth:
        app.add_middleware(AuthMiddleware, auth_string=auth)
    return app


class AuthMiddleware:
    """Requires ``Authorization: Basic base64(auth_string)`` on every API request but health checks.

    Websockets authenticate with their first message instead (see the events router).
    """

    OPEN_PATHS = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/ready", f"{API_PREFIX}/hello"})

    def __init__(self, app: ASGIApp, auth_string: str) -> None:
        self.app = app
        self.expected = "Basic " + base64.b64encode(auth_string.encode()).decode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(API_PREFIX)
            or scope["path"] in self.OPEN_PATHS
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"").decode()
        if not hmac.compare_digest(given, self.expected):
            response = JSONResponse({"detail": "Unauthorized"}, status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class CsrfMiddleware:
    """On state-changing requests, requires a valid ``Prefect-Csrf-Token`` for ``Prefect-Csrf-Client``."""

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in self.SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        token = headers.get(b"prefect-csrf-token", b"").decode()
        client = headers.get(b"prefect-csrf-client", b"").decode()
        db: Database = scope["app"].state.db
        valid = False
        if token and client:
            async with db.read_session() as session:
                row = (
                    await session.execute(
                        sa.select(t.CsrfToken).where(t.CsrfToken.client == client)
                    )
                ).scalar_one_or_none()
            valid = (
                row is not None
                and hmac.compare_digest(row.token, token)
                and row.expiration > now_utc()
            )
        if not valid:
            response = JSONResponse(
                {"detail": "Invalid CSRF token or client identifier."}, status_code=403
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
