"""Queries on variables: create (refusing a taken name), read by id or name, list, count, update, delete."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowplane.schemas.variables import VariableCreate, VariableFilter, VariableSort, VariableUpdate
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import compile_filter

V = t.Variable

SORTS: dict[VariableSort, list[Any]] = {
    VariableSort.CREATED_DESC: [V.created.desc(), V.id],
    VariableSort.UPDATED_DESC: [V.updated.desc(), V.id],
    VariableSort.NAME_ASC: [V.name.asc()],
    VariableSort.NAME_DESC: [V.name.desc()],
}


def _by(id_or_name: UUID | str) -> ColumnElement[bool]:
    return V.id == id_or_name if isinstance(id_or_name, UUID) else V.name == id_or_name


async def create(
    session: AsyncSession, variable: VariableCreate, now: datetime
) -> t.Variable | None:
    """Create the variable; ``None`` if its name is taken (nothing is written then)."""
    dialect = dialects.dialect_name(session)
    variable_id = uuid.uuid4()
    stmt = (
        dialects.insert(dialect, V)
        .values(
            id=variable_id,
            name=variable.name,
            value=variable.value,
            tags=variable.tags,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing(index_elements=[V.name])
    )
    if dialects.rowcount(await session.execute(stmt)) != 1:
        return None
    return await read(session, variable_id)


async def read(session: AsyncSession, id_or_name: UUID | str) -> t.Variable | None:
    """The variable with this id (a UUID) or name (a string)."""
    stmt = sa.select(V).where(_by(id_or_name)).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def read_many(
    session: AsyncSession,
    variables: VariableFilter | None = None,
    *,
    sort: VariableSort = VariableSort.NAME_ASC,
    offset: int = 0,
    limit: int | None = None,
) -> Sequence[t.Variable]:
    where = compile_filter(dialects.dialect_name(session), V, variables)
    stmt = sa.select(V).where(where).order_by(*SORTS[sort]).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count(session: AsyncSession, variables: VariableFilter | None = None) -> int:
    where = compile_filter(dialects.dialect_name(session), V, variables)
    stmt = sa.select(sa.func.count()).select_from(V).where(where)
    return int((await session.execute(stmt)).scalar_one())


async def update(
    session: AsyncSession, id_or_name: UUID | str, changes: VariableUpdate, now: datetime
) -> bool | None:
    """Apply the fields set in ``changes``.

    Returns:
        True if updated, False if there is no such variable, None if the new name is taken.
    """
    values = changes.model_dump(exclude_unset=True)
    for key in ("name", "tags"):
        if key in values and values[key] is None:
            del values[key]  # null means "leave as is" for these; only the value may be null
    new_name = values.get("name")
    if new_name is not None:
        taken = await read(session, new_name)
        if taken is not None and not (
            taken.id == id_or_name if isinstance(id_or_name, UUID) else taken.name == id_or_name
        ):
            return None
    result = await session.execute(
        sa.update(V)
        .where(_by(id_or_name))
        .values(**values, updated=now)
        .execution_options(synchronize_session=False)
    )
    return dialects.rowcount(result) > 0


async def delete(session: AsyncSession, id_or_name: UUID | str) -> bool:
    result = await session.execute(
        sa.delete(V).where(_by(id_or_name)).execution_options(synchronize_session=False)
    )
    return dialects.rowcount(result) > 0
