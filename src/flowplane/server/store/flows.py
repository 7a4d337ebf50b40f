"""Queries on flows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas import filters as f
from flowplane.schemas.base import now_utc
from flowplane.schemas.flows import FlowCreate, FlowUpdate
from flowplane.schemas.sorting import FlowSort
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import flow_where, order_by


async def create(session: AsyncSession, flow: FlowCreate) -> tuple[t.Flow, bool]:
    """Create the flow, or return the one with that name. The flag says it was created."""
    dialect = dialects.dialect_name(session)
    now = now_utc()
    stmt = (
        dialects.insert(dialect, t.Flow)
        .values(**flow.model_dump(), id=uuid.uuid4(), created=now, updated=now)
        .on_conflict_do_nothing(index_elements=[t.Flow.name])
    )
    result = await session.execute(stmt)
    created = dialects.rowcount(result) == 1
    row = await read_by_name(session, flow.name)
    assert row is not None
    return row, created


async def read(session: AsyncSession, flow_id: UUID) -> t.Flow | None:
    return await session.get(t.Flow, flow_id)


async def read_by_name(session: AsyncSession, name: str) -> t.Flow | None:
    result = await session.execute(sa.select(t.Flow).where(t.Flow.name == name))
    return result.scalar_one_or_none()


async def update(session: AsyncSession, flow_id: UUID, flow: FlowUpdate) -> bool:
    values = flow.model_dump(exclude_unset=True)
    if not values:
        return await read(session, flow_id) is not None
    result = await session.execute(
        sa.update(t.Flow).where(t.Flow.id == flow_id).values(**values, updated=now_utc())
    )
    return dialects.rowcount(result) > 0


async def delete(session: AsyncSession, flow_id: UUID) -> bool:
    result = await session.execute(sa.delete(t.Flow).where(t.Flow.id == flow_id))
    return dialects.rowcount(result) > 0


def _where(session: AsyncSession, filters: dict[str, Any]) -> Any:
    return flow_where(
        dialects.dialect_name(session),
        flows=filters.get("flows"),
        flow_runs=filters.get("flow_runs"),
        task_runs=filters.get("task_runs"),
    )


async def read_many(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    sort: FlowSort = FlowSort.NAME_ASC,
    offset: int = 0,
    limit: int | None = None,
) -> Sequence[t.Flow]:
    where = _where(session, {"flows": flows, "flow_runs": flow_runs, "task_runs": task_runs})
    stmt = sa.select(t.Flow).where(where).order_by(*order_by(sort)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
) -> int:
    where = _where(session, {"flows": flows, "flow_runs": flow_runs, "task_runs": task_runs})
    return (
        await session.execute(sa.select(sa.func.count()).select_from(t.Flow).where(where))
    ).scalar_one()


async def delete_many(session: AsyncSession, flows: f.FlowFilter | None, limit: int) -> list[UUID]:
    where = _where(session, {"flows": flows})
    ids = (await session.execute(sa.select(t.Flow.id).where(where).limit(limit))).scalars().all()
    if ids:
        await session.execute(sa.delete(t.Flow).where(t.Flow.id.in_(ids)))
    return list(ids)
