"""Server-level endpoints: health, readiness, version, settings and CSRF tokens."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from flowplane import __version__
from flowplane.schemas.admin import CsrfToken
from flowplane.schemas.base import now_utc
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import get_db
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database

#: The Prefect server version whose REST API this server speaks. Clients compare
#: its major version with their own and warn when it is older than they are.
API_VERSION = "3.6.29"

router = APIRouter(prefix=API_PREFIX, route_class=LazyAPIRoute)


@router.get("/health")
async def health() -> bool:
    return True


@router.get("/ready")
async def ready(db: Database = Depends(get_db)) -> JSONResponse:
    """Ready when the database answers."""
    try:
        async with db.read_session() as session:
            await session.execute(sa.text("SELECT 1"))
    except Exception as exc:  # the database is down: say so, do not crash
        return JSONResponse({"message": f"Database unavailable: {exc}"}, status_code=503)
    return JSONResponse({"message": "OK"})


@router.get("/hello")
async def hello() -> str:
    return "👋"


@router.get("/version")
async def version() -> str:
    return API_VERSION


@router.get("/admin/version")
async def admin_version() -> str:
    return API_VERSION


@router.get("/admin/settings")
async def admin_settings(request: Request) -> dict:
    """The server's settings, with secrets masked."""
    settings = request.app.state.settings
    data = settings.model_dump(mode="json")
    data["flowplane_version"] = __version__
    return data


@router.get("/csrf-token", response_model=CsrfToken)
async def csrf_token(
    request: Request,
    client: str = Query(..., description="The client's identifier"),
    db: Database = Depends(get_db),
) -> CsrfToken:
    """Issue (or refresh) the CSRF token of ``client``."""
    settings = request.app.state.settings
    if not settings.server_csrf_protection_enabled:
        raise HTTPException(422, detail="CSRF protection is disabled.")
    expiration = now_utc() + timedelta(seconds=settings.server_csrf_token_expiration)
    token = secrets.token_hex(32)
    async with db.session() as session:
        stmt = dialects.insert(db.dialect, t.CsrfToken).values(
            client=client, token=token, expiration=expiration
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.CsrfToken.client],
            set_={"token": token, "expiration": expiration, "updated": now_utc()},
        )
        await session.execute(stmt)
        row = (
            await session.execute(sa.select(t.CsrfToken).where(t.CsrfToken.client == client))
        ).scalar_one()
        return CsrfToken.model_validate(row)
