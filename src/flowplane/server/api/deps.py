"""Request-scoped access to what ``create_app`` put on ``app.state``."""

from __future__ import annotations

from typing import Any, NoReturn
from uuid import UUID

from fastapi import HTTPException, Request, status

from flowplane.server.db.session import Database


async def get_db(request: Request) -> Database:
    """The database of the app serving this request."""
    return request.app.state.db


async def get_bus(request: Request) -> Any:
    """The in-process event bus of the app serving this request."""
    return request.app.state.bus


def not_found(kind: str, ident: UUID | str) -> NoReturn:
    """Raise the API's 404 for a missing object."""
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{kind} {ident} not found")


def conflict(detail: str) -> NoReturn:
    """Raise the API's 409 for an object that already exists."""
    raise HTTPException(status.HTTP_409_CONFLICT, detail=detail)


def pages(count: int, limit: int) -> int:
    """How many pages of ``limit`` rows ``count`` rows make (at least one)."""
    return max((count + limit - 1) // limit, 1) if limit else 1


#: The most rows one list request returns (Prefect's default page size).
MAX_LIMIT = 200


def page_limit(limit: int | None) -> int:
    """The page size to use: clients send ``null`` to mean "the server's default"."""
    return MAX_LIMIT if limit is None else limit
