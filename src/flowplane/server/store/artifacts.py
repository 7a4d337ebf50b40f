"""Queries on artifacts and on the latest artifact per key (``artifact_collection``).

Every keyed artifact written also writes its key's collection row in the same
transaction: creating one makes it the latest; updating the latest updates the
copy; deleting the latest makes the newest remaining artifact of the key the
latest (or drops the row when none remains).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowplane.schemas import filters as f
from flowplane.schemas.artifacts import (
    ArtifactCollectionFilter,
    ArtifactCreate,
    ArtifactFilter,
    ArtifactSort,
    ArtifactUpdate,
)
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import (
    RunLinks,
    compile_filter,
    flow_run_where,
    task_run_where,
)

A = t.Artifact
C = t.ArtifactCollection
NO_SYNC = {"synchronize_session": False}
COPIED = ("type", "description", "data", "metadata_", "flow_run_id", "task_run_id")


def _sorts(table: Any) -> dict[ArtifactSort, list[Any]]:
    return {
        ArtifactSort.CREATED_DESC: [table.created.desc(), table.id],
        ArtifactSort.UPDATED_DESC: [table.updated.desc(), table.id],
        ArtifactSort.ID_DESC: [table.id.desc()],
        ArtifactSort.KEY_DESC: [table.key.desc().nulls_last(), table.created.desc(), table.id],
        ArtifactSort.KEY_ASC: [table.key.asc().nulls_last(), table.created.desc(), table.id],
    }


SORTS = {A: _sorts(A), C: _sorts(C)}


def _copy(row: t.Artifact) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COPIED}


async def _make_latest(session: AsyncSession, row: t.Artifact, now: datetime) -> None:
    """Make the new artifact ``row`` the latest of its key, unless a newer one is.

    Of two artifacts created at once, the older one's transaction may reach this
    statement last, and it must not take the key back.
    """
    dialect = dialects.dialect_name(session)
    values = {**_copy(row), "latest_id": row.id, "latest_created": row.created, "updated": now}
    stmt = dialects.insert(dialect, C).values(id=uuid.uuid4(), key=row.key, created=now, **values)
    # A column of the row itself, not a subquery: PostgreSQL re-checks the condition on
    # the row version a concurrent transaction committed, but runs subqueries on the
    # snapshot taken before it, which does not yet hold that transaction's artifact.
    newer = C.latest_created <= row.created
    stmt = stmt.on_conflict_do_update(index_elements=[C.key], set_=values, where=newer)
    await session.execute(stmt)


async def create(session: AsyncSession, artifact: ArtifactCreate, now: datetime) -> t.Artifact:
    row = A(id=uuid.uuid4(), created=now, updated=now, **artifact.model_dump())
    session.add(row)
    await session.flush()
    if row.key is not None:
        await _make_latest(session, row, now)
    return row


async def read(session: AsyncSession, artifact_id: UUID) -> t.Artifact | None:
    stmt = sa.select(A).where(A.id == artifact_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def read_latest(session: AsyncSession, key: str) -> t.Artifact | None:
    """The newest artifact with ``key``."""
    stmt = sa.select(A).join(C, C.latest_id == A.id).where(C.key == key)
    return (await session.execute(stmt)).scalar_one_or_none()


async def update(
    session: AsyncSession, artifact_id: UUID, changes: ArtifactUpdate, now: datetime
) -> t.Artifact | None:
    """Apply the fields set in ``changes``; ``None`` if there is no such artifact."""
    values = changes.model_dump(exclude_unset=True)
    row = await read(session, artifact_id)
    if row is None:
        return None
    for name, value in values.items():
        setattr(row, name, value)
    row.updated = now
    await session.flush()
    if row.key is not None:
        await session.execute(
            sa.update(C)
            .where(C.latest_id == row.id)
            .values(**_copy(row), updated=now)
            .execution_options(**NO_SYNC)
        )
    return row


async def delete(session: AsyncSession, artifact_id: UUID, now: datetime) -> bool:
    """Delete the artifact; if it was its key's latest, the newest one left takes over."""
    row = await read(session, artifact_id)
    if row is None:
        return False
    key = row.key
    await session.execute(sa.delete(A).where(A.id == artifact_id).execution_options(**NO_SYNC))
    if key is not None:
        newest = (
            await session.execute(
                sa.select(A).where(A.key == key).order_by(A.created.desc(), A.id).limit(1)
            )
        ).scalar_one_or_none()
        # Only while the collection still points at the deleted artifact: a newer one
        # created meanwhile keeps the key.
        still_latest = sa.and_(C.key == key, C.latest_id == artifact_id)
        if newest is None:
            stmt: Any = sa.delete(C).where(still_latest)
        else:
            stmt = (
                sa.update(C)
                .where(still_latest)
                .values(
                    **_copy(newest), latest_id=newest.id, latest_created=newest.created, updated=now
                )
            )
        await session.execute(stmt.execution_options(**NO_SYNC))
    return True


def where(
    dialect: str,
    table: Any,
    artifacts: ArtifactFilter | ArtifactCollectionFilter | None = None,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
) -> ColumnElement[bool]:
    """Artifacts (or latest artifacts) matching ``artifacts``, made by matching runs."""
    clause = compile_filter(dialect, table, artifacts)
    if flows is not None or flow_runs is not None or deployments is not None:
        links = RunLinks(deployments=deployments)
        runs = sa.select(t.FlowRun.id).where(flow_run_where(dialect, flows, flow_runs, None, links))
        clause = sa.and_(clause, table.flow_run_id.in_(runs))
    if task_runs is not None:
        tasks = sa.select(t.TaskRun.id).where(task_run_where(dialect, None, None, task_runs))
        clause = sa.and_(clause, table.task_run_id.in_(tasks))
    return clause


async def read_many(
    session: AsyncSession,
    table: Any,
    filters: dict[str, Any],
    *,
    sort: ArtifactSort = ArtifactSort.ID_DESC,
    offset: int = 0,
    limit: int | None = None,
) -> Sequence[Any]:
    """Rows of ``table`` (``Artifact`` or ``ArtifactCollection``) matching ``filters``."""
    clause = where(dialects.dialect_name(session), table, **filters)
    stmt = sa.select(table).where(clause).order_by(*SORTS[table][sort]).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


async def count(session: AsyncSession, table: Any, filters: dict[str, Any]) -> int:
    clause = where(dialects.dialect_name(session), table, **filters)
    stmt = sa.select(sa.func.count()).select_from(table).where(clause)
    return int((await session.execute(stmt)).scalar_one())
