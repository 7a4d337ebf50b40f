"""Queries on task runs: creation (one run per flow run, task key and dynamic key), reads, aggregates."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.transitions import RunKind
from flowplane.schemas import filters as f
from flowplane.schemas.flow_runs import HistoryResponse
from flowplane.schemas.sorting import TaskRunSort
from flowplane.schemas.task_runs import TaskRun, TaskRunCreate, TaskRunUpdate
from flowplane.server import orchestration
from flowplane.server.db import tables as t
from flowplane.server.store import runs
from flowplane.server.store.filtering import RunLinks, task_run_where
from flowplane.server.store.runs import (
    FLOW_RUNS,
    TASK_RUNS,
    dialect_name,
    random_run_name,
)

_RUN = TASK_RUNS.run


def where(
    session: AsyncSession,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> Any:
    """The WHERE clause selecting task runs that match all three filters."""
    return task_run_where(dialect_name(session), flows, flow_runs, task_runs, links)


async def _read_existing(
    session: AsyncSession, body: TaskRunCreate, now: datetime
) -> TaskRun | None:
    """The run with the body's identity: same flow run, task key and dynamic key (or same id)."""
    same_key = sa.and_(
        _RUN.c.flow_run_id.is_(None)
        if body.flow_run_id is None
        else _RUN.c.flow_run_id == body.flow_run_id,
        _RUN.c.task_key == body.task_key,
        _RUN.c.dynamic_key == body.dynamic_key,
    )
    clause = same_key if body.id is None else sa.or_(same_key, _RUN.c.id == body.id)
    stmt = runs.select_runs(TASK_RUNS).where(clause).order_by(_RUN.c.created).limit(1)
    row = (await session.execute(stmt)).first()
    return None if row is None else runs.models_from_rows(TASK_RUNS, [row], now)[0]


async def create(
    session: AsyncSession, body: TaskRunCreate, now: datetime
) -> tuple[TaskRun, bool] | None:
    """Create a task run in its initial state (Pending unless the body says otherwise).

    A task run is identified by its flow run, task key and dynamic key: asking for one
    that exists returns it instead (as does reusing an id).

    Returns:
        ``(run, created)``, or None when the flow run does not exist.
    """
    labels: dict[str, Any] = {}
    if body.flow_run_id is not None:
        flow_run = FLOW_RUNS.run
        row = (
            await session.execute(
                sa.select(flow_run.c.labels).where(flow_run.c.id == body.flow_run_id)
            )
        ).first()
        if row is None:
            return None
        labels = {**(row.labels or {}), "prefect.flow-run.id": str(body.flow_run_id)}
    else:
        # NULLs never conflict in a unique constraint, so runs outside a flow run are
        # matched here rather than by the database.
        existing = await _read_existing(session, body, now)
        if existing is not None:
            return existing, False
    values: dict[str, Any] = {
        "id": body.id or uuid.uuid4(),
        "created": now,
        "updated": now,
        "name": body.name or random_run_name(),
        "flow_run_id": body.flow_run_id,
        "task_key": body.task_key,
        "dynamic_key": body.dynamic_key,
        "cache_key": body.cache_key,
        "cache_expiration": body.cache_expiration,
        "task_version": body.task_version,
        "empirical_policy": body.empirical_policy.model_dump(mode="json"),
        "tags": body.tags,
        "labels": {**labels, **(body.labels or {})},
        "task_inputs": {
            key: [item.model_dump(mode="json") for item in items]
            for key, items in body.task_inputs.items()
        },
        "run_count": 0,
        "flow_run_run_count": 0,
        "total_run_time": 0.0,
    }
    outcome = await orchestration.insert_run(
        session, RunKind.TASK, values, body.state, ignore_conflicts=True, now=now
    )
    if outcome is None:
        existing = await _read_existing(session, body, now)
        assert existing is not None
        return existing, False
    return runs.run_model(TASK_RUNS, outcome.run, outcome.result.state, now), True  # type: ignore[return-value]


async def read(session: AsyncSession, run_id: UUID, now: datetime) -> TaskRun | None:
    return await runs.read(session, TASK_RUNS, run_id, now)


async def read_many(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
    sort: TaskRunSort = TaskRunSort.ID_DESC,
    offset: int = 0,
    limit: int | None = None,
    now: datetime,
) -> list[TaskRun]:
    clause = where(session, flows, flow_runs, task_runs, links)
    return await runs.read_many(
        session, TASK_RUNS, clause, sort=sort, offset=offset, limit=limit, now=now
    )


async def count(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> int:
    return await runs.count(session, TASK_RUNS, where(session, flows, flow_runs, task_runs, links))


async def update(session: AsyncSession, run_id: UUID, body: TaskRunUpdate, now: datetime) -> bool:
    return await runs.update(session, TASK_RUNS, run_id, body.model_dump(exclude_unset=True), now)


async def delete(session: AsyncSession, run_id: UUID) -> bool:
    """Delete the run (its states go with it) and its log lines."""
    if not await runs.delete(session, TASK_RUNS, run_id):
        return False
    await session.execute(sa.delete(t.Log).where(t.Log.task_run_id == run_id))
    return True


async def history(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    interval: timedelta,
    flows: f.FlowFilter | None,
    flow_runs: f.FlowRunFilter | None,
    task_runs: f.TaskRunFilter | None,
    now: datetime,
    links: RunLinks | None = None,
) -> list[HistoryResponse]:
    clause = where(session, flows, flow_runs, task_runs, links)
    return await runs.history(
        session, TASK_RUNS, clause, start=start, end=end, interval=interval, now=now
    )
