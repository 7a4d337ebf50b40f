"""Request-scoped access to what ``create_app`` put on ``app.state``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn
from uuid import UUID

from fastapi import HTTPException, Request, Response, status
from pydantic import BaseModel, TypeAdapter

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


_ANY_LIST: TypeAdapter[list[Any]] = TypeAdapter(list[Any])


def json_response(content: BaseModel | list[Any], status_code: int = 200) -> Response:
    """Serialize with pydantic directly (FastAPI's encoder is slow for nested models)."""
    if isinstance(content, BaseModel):
        body = content.model_dump_json()
    else:
        body = _ANY_LIST.dump_json(content).decode()
    return Response(content=body, media_type="application/json", status_code=status_code)


def history_interval(seconds: float) -> timedelta:
    if seconds < 1:
        raise HTTPException(
            422,
            detail="History interval must not be less than 1 second.",
        )
    return timedelta(seconds=seconds)
