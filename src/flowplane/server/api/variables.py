"""Variable endpoints (``/variables``): create, read by id or name, filter, count, update, delete."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, status

from flowplane.schemas.base import now_utc
from flowplane.schemas.variables import (
    Variable,
    VariableCreate,
    VariableFilter,
    VariableSort,
    VariableUpdate,
)
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import MAX_LIMIT, conflict, get_db, not_found, page_limit
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db.session import Database
from flowplane.server.store import variables as store

router = APIRouter(prefix=f"{API_PREFIX}/variables", tags=["Variables"], route_class=LazyAPIRoute)


def _taken(name: str) -> None:
    conflict(f"A variable with the name {name!r} already exists.")


@router.post("/", response_model=Variable, status_code=status.HTTP_201_CREATED)
async def create_variable(variable: VariableCreate, db: Database = Depends(get_db)) -> Variable:
    async with db.session() as session:
        row = await store.create(session, variable, now_utc())
    if row is None:
        _taken(variable.name)
    return Variable.model_validate(row)


@router.post("/filter", response_model=list[Variable])
async def read_variables(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    variables: VariableFilter | None = None,
    sort: VariableSort | None = Body(None),
    db: Database = Depends(get_db),
) -> list[Variable]:
    async with db.read_session() as session:
        rows = await store.read_many(
            session,
            variables,
            sort=sort or VariableSort.NAME_ASC,
            offset=offset or 0,
            limit=page_limit(limit),
        )
    return [Variable.model_validate(r) for r in rows]


@router.post("/count")
async def count_variables(
    variables: VariableFilter | None = Body(None, embed=True), db: Database = Depends(get_db)
) -> int:
    async with db.read_session() as session:
        return await store.count(session, variables)


async def _read(db: Database, ident: UUID | str) -> Variable:
    async with db.read_session() as session:
        row = await store.read(session, ident)
    if row is None:
        not_found("Variable", ident)
    return Variable.model_validate(row)


async def _update(db: Database, ident: UUID | str, changes: VariableUpdate) -> None:
    async with db.session() as session:
        updated = await store.update(session, ident, changes, now_utc())
    if updated is None:
        _taken(changes.name or "")
    if not updated:
        not_found("Variable", ident)


async def _delete(db: Database, ident: UUID | str) -> None:
    async with db.session() as session:
        deleted = await store.delete(session, ident)
    if not deleted:
        not_found("Variable", ident)


@router.get("/name/{name}", response_model=Variable)
async def read_variable_by_name(name: str = Path(...), db: Database = Depends(get_db)) -> Variable:
    return await _read(db, name)


@router.patch("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def update_variable_by_name(
    variable: VariableUpdate, name: str = Path(...), db: Database = Depends(get_db)
) -> None:
    await _update(db, name, variable)


@router.delete("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable_by_name(name: str = Path(...), db: Database = Depends(get_db)) -> None:
    await _delete(db, name)


@router.get("/{id}", response_model=Variable)
async def read_variable(id: UUID = Path(...), db: Database = Depends(get_db)) -> Variable:
    return await _read(db, id)


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_variable(
    variable: VariableUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    await _update(db, id, variable)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    await _delete(db, id)
