"""Queries on deployments and their schedules: upsert by flow and name, reads, filters, updates."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core import deployments as rules
from flowplane.core.states import StateType
from flowplane.schemas import filters as f
from flowplane.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
    DeploymentStatus,
    DeploymentUpdate,
)
from flowplane.schemas.schedules import Schedule
from flowplane.schemas.sorting import DeploymentSort
from flowplane.server.db import tables as t
from flowplane.server.store import work_pools as pools
from flowplane.server.store.filtering import compile_filter, flow_where, order_by
from flowplane.server.store.runs import dialect_name, execute_count

D = t.Deployment
S = t.DeploymentSchedule
R = t.FlowRun

_SCHEDULE: TypeAdapter[Any] = TypeAdapter(Schedule)

#: Columns a create or update copies straight from the body.
_PLAIN = (
    "version",
    "description",
    "paused",
    "concurrency_limit",
    "global_concurrency_limit_id",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "parameters",
    "tags",
    "job_variables",
    "pull_steps",
    "storage_document_id",
    "infrastructure_document_id",
    "path",
    "entrypoint",
)


class MissingWorkPool(Exception):
    """The deployment names a work pool that does not exist."""


# --- models -------------------------------------------------------------------------------


def schedule_model(row: S) -> DeploymentSchedule:
    return DeploymentSchedule(
        id=row.id,
        created=row.created,
        updated=row.updated,
        deployment_id=row.deployment_id,
        schedule=_SCHEDULE.validate_python(row.schedule),
        active=row.active,
        max_scheduled_runs=row.max_scheduled_runs,
        parameters=row.parameters or {},
        slug=row.slug,
    )


async def models(session: AsyncSession, rows: list[D], now: datetime) -> list[Deployment]:
    """Wire models with schedules, pool names and the derived status."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    schedules: dict[UUID, list[DeploymentSchedule]] = {i: [] for i in ids}
    stmt = sa.select(S).where(S.deployment_id.in_(ids)).order_by(S.created, S.id)
    for sched in (await session.execute(stmt)).scalars():
        schedules[sched.deployment_id].append(schedule_model(sched))
    queue_ids = {r.work_queue_id for r in rows if r.work_queue_id}
    pool_names: dict[UUID, str] = {}
    if queue_ids:
        join = sa.select(t.WorkQueue.id, t.WorkPool.name).join(
            t.WorkPool, t.WorkPool.id == t.WorkQueue.work_pool_id
        )
        pool_names = dict((await session.execute(join.where(t.WorkQueue.id.in_(queue_ids)))).all())  # type: ignore[arg-type]
    out = []
    for row in rows:
        data = {c.name: getattr(row, c.name) for c in D.__table__.columns}
        data["labels"] = data.get("labels") or {}
        data["schedules"] = schedules[row.id]
        data["work_pool_name"] = pool_names.get(row.work_queue_id) if row.work_queue_id else None
        data["status"] = (
            DeploymentStatus.READY
            if rules.recently_polled(row.last_polled, now)
            else DeploymentStatus.NOT_READY
        )
        out.append(Deployment.model_validate(data))
    return out


# --- reads --------------------------------------------------------------------------------


async def read(session: AsyncSession, deployment_id: UUID) -> D | None:
    return await session.get(D, deployment_id)


async def read_by_name(session: AsyncSession, flow_name: str, name: str) -> D | None:
    stmt = (
        sa.select(D)
        .join(t.Flow, t.Flow.id == D.flow_id)
        .where(t.Flow.name == flow_name, D.name == name)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def where(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
) -> Any:
    """Deployments matching ``deployments`` whose flow, runs, pool and queue match the rest."""
    dialect = dialect_name(session)
    clause = compile_filter(dialect, D, deployments)
    if flows is not None or flow_runs is not None or task_runs is not None:
        if flow_runs is not None or task_runs is not None:
            from flowplane.server.store.filtering import flow_run_where

            runs = sa.select(R.deployment_id).where(
                flow_run_where(dialect, flows, flow_runs, task_runs)
            )
            clause = sa.and_(clause, D.id.in_(runs))
        else:
            clause = sa.and_(
                clause, D.flow_id.in_(sa.select(t.Flow.id).where(flow_where(dialect, flows)))
            )
    if work_pools is not None:
        queues = (
            sa.select(t.WorkQueue.id)
            .join(t.WorkPool, t.WorkPool.id == t.WorkQueue.work_pool_id)
            .where(compile_filter(dialect, t.WorkPool, work_pools))
        )
        clause = sa.and_(clause, D.work_queue_id.in_(queues))
    if work_pool_queues is not None:
        queues = sa.select(t.WorkQueue.id).where(
            compile_filter(dialect, t.WorkQueue, work_pool_queues)
        )
        clause = sa.and_(clause, D.work_queue_id.in_(queues))
    return clause


async def read_many(
    session: AsyncSession,
    clause: Any,
    *,
    sort: DeploymentSort = DeploymentSort.NAME_ASC,
    offset: int = 0,
    limit: int | None = None,
) -> list[D]:
    stmt = sa.select(D).where(clause).order_by(*order_by(sort)).offset(offset).limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def count(session: AsyncSession, clause: Any) -> int:
    stmt = sa.select(sa.func.count()).select_from(D).where(clause)
    return int((await session.execute(stmt)).scalar_one())


# --- writes -------------------------------------------------------------------------------


async def _queue_for(
    session: AsyncSession, pool_name: str | None, queue_name: str | None, now: datetime
) -> t.WorkQueue | None:
    """The queue a deployment's runs wait in, created in its pool if it does not exist yet.

    Raises:
        MissingWorkPool: ``pool_name`` names no pool.
    """
    from flowplane.schemas.workers import WorkQueueCreate

    if pool_name is None and queue_name is None:
        return None
    if pool_name is None:
        queue = await pools.read_queue_by_name_anywhere(session, queue_name or "")
        if queue is not None:
            return queue
        pool = await pools.ensure_pool(session, pools.DEFAULT_AGENT_POOL, now)
    else:
        found = await pools.read_pool(session, pool_name)
        if found is None:
            raise MissingWorkPool(pool_name)
        pool = found
        if queue_name is None:
            return await pools.read_queue_by_id(session, pool.default_queue_id)  # type: ignore[arg-type]
    assert queue_name is not None
    queue = await pools.read_queue(session, pool.id, queue_name)
    if queue is None:
        queue = await pools.create_queue(session, pool, WorkQueueCreate(name=queue_name), now)
    return queue


async def upsert(session: AsyncSession, body: DeploymentCreate, now: datetime) -> D | None:
    """Create the deployment, or replace the one with the same flow and name.

    Returns:
        The row, or None when the flow does not exist.

    Raises:
        MissingWorkPool: the body names a pool that does not exist.
    """
    if await session.get(t.Flow, body.flow_id) is None:
        return None
    queue = await _queue_for(session, body.work_pool_name, body.work_queue_name, now)
    values: dict[str, Any] = {k: getattr(body, k) for k in _PLAIN}
    values["paused"] = bool(body.paused)
    values["enforce_parameter_schema"] = (
        True if body.enforce_parameter_schema is None else body.enforce_parameter_schema
    )
    values.update(
        version_info=body.version_info.model_dump(mode="json") if body.version_info else None,
        concurrency_options=(
            body.concurrency_options.model_dump(mode="json") if body.concurrency_options else None
        ),
        labels=body.labels or {},
        work_queue_id=queue.id if queue else None,
        work_queue_name=queue.name if queue else None,
        updated=now,
    )
    existing = (
        await session.execute(sa.select(D).where(D.flow_id == body.flow_id, D.name == body.name))
    ).scalar_one_or_none()
    if existing is None:
        row = D(id=uuid.uuid4(), flow_id=body.flow_id, name=body.name, created=now, **values)
        session.add(row)
        await session.flush()
    else:
        row = existing
        for key, value in values.items():
            setattr(row, key, value)
        await session.execute(sa.delete(S).where(S.deployment_id == row.id))
        await delete_future_auto_runs(session, row.id)
        await session.flush()
    await add_schedules(session, row.id, body.schedules, now)
    return row


async def update(session: AsyncSession, row: D, body: DeploymentUpdate, now: datetime) -> None:
    """Apply the fields the client set; ``schedules`` replaces them (matched by slug).

    Raises:
        MissingWorkPool: the body names a pool that does not exist.
        ValueError: a new schedule without its rule.
    """
    fields = body.model_fields_set
    for key in _PLAIN:
        if key in fields:
            value = getattr(body, key)
            if value is None and key in (
                "paused",
                "enforce_parameter_schema",
                "parameters",
                "tags",
                "job_variables",
            ):
                continue
            setattr(row, key, value)
    if "version_info" in fields:
        row.version_info = body.version_info.model_dump(mode="json") if body.version_info else None
    if "concurrency_options" in fields:
        options = body.concurrency_options
        row.concurrency_options = options.model_dump(mode="json") if options else None
    if "work_pool_name" in fields or "work_queue_name" in fields:
        pool_name = body.work_pool_name if "work_pool_name" in fields else None
        queue = await _queue_for(session, pool_name, body.work_queue_name, now)
        row.work_queue_id = queue.id if queue else None
        row.work_queue_name = queue.name if queue else None
    if body.paused:
        await delete_future_auto_runs(session, row.id)
    if "schedules" in fields and body.schedules is not None:
        await _replace_schedules(session, row.id, body.schedules, now)
        await delete_future_auto_runs(session, row.id)
    row.updated = now
    await session.flush()


async def set_paused(session: AsyncSession, row: D, paused: bool, now: datetime) -> None:
    row.paused = paused
    row.updated = now
    if paused:
        await delete_future_auto_runs(session, row.id)
    await session.flush()


async def delete(session: AsyncSession, row: D) -> None:
    await delete_future_auto_runs(session, row.id)
    await session.delete(row)
    await session.flush()


async def delete_many(session: AsyncSession, clause: Any, limit: int) -> list[UUID]:
    ids = list((await session.execute(sa.select(D.id).where(clause).limit(limit))).scalars())
    for deployment_id in ids:
        await delete_future_auto_runs(session, deployment_id)
    if ids:
        await session.execute(sa.delete(D).where(D.id.in_(ids)))
    return ids


async def delete_future_auto_runs(session: AsyncSession, deployment_id: UUID) -> int:
    """Delete the Scheduled runs the scheduler made that have not run yet (not those made by
    hand, nor retries or runs waiting for a concurrency slot); the scheduler makes new ones."""
    stmt = sa.delete(R).where(
        R.deployment_id == deployment_id,
        R.auto_scheduled.is_(True),
        R.state_type == StateType.SCHEDULED.value,
        R.run_count == 0,
        sa.or_(R.state_name.is_(None), R.state_name != "AwaitingConcurrencySlot"),
    )
    return await execute_count(session, stmt)


async def mark_polled(session: AsyncSession, ids: list[UUID], now: datetime) -> None:
    if ids:
        await session.execute(
            sa.update(D)
            .where(D.id.in_(ids))
            .values(last_polled=now)
            .execution_options(synchronize_session=False)
        )


# --- schedules ------------------------------------------------------------------------------


async def add_schedules(
    session: AsyncSession,
    deployment_id: UUID,
    creates: list[DeploymentScheduleCreate],
    now: datetime,
) -> list[S]:
    rows = []
    for create in creates:
        row = S(
            id=uuid.uuid4(),
            deployment_id=deployment_id,
            schedule=create.schedule.model_dump(mode="json"),
            active=create.active,
            max_scheduled_runs=create.max_scheduled_runs,
            parameters=create.parameters,
            slug=create.slug,
            created=now,
            updated=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def read_schedules(session: AsyncSession, deployment_id: UUID) -> list[S]:
    stmt = sa.select(S).where(S.deployment_id == deployment_id).order_by(S.created, S.id)
    return list((await session.execute(stmt)).scalars().all())


async def read_schedule(session: AsyncSession, deployment_id: UUID, schedule_id: UUID) -> S | None:
    row = await session.get(S, schedule_id)
    return row if row is not None and row.deployment_id == deployment_id else None


def apply_schedule_update(row: S, body: DeploymentScheduleUpdate, now: datetime) -> None:
    fields = body.model_fields_set
    if body.schedule is not None:
        row.schedule = body.schedule.model_dump(mode="json")
    if body.active is not None:
        row.active = body.active
    if "max_scheduled_runs" in fields:
        row.max_scheduled_runs = body.max_scheduled_runs
    if body.parameters is not None:
        row.parameters = body.parameters
    if "slug" in fields:
        row.slug = body.slug
    row.updated = now


async def _replace_schedules(
    session: AsyncSession,
    deployment_id: UUID,
    updates: list[DeploymentScheduleUpdate],
    now: datetime,
) -> None:
    existing = {row.slug: row for row in await read_schedules(session, deployment_id) if row.slug}
    keep: set[UUID] = set()
    creates = []
    for upd in updates:
        match = existing.get(upd.slug) if upd.slug else None
        if match is not None:
            apply_schedule_update(match, upd, now)
            keep.add(match.id)
            continue
        if upd.schedule is None:
            raise ValueError("A new schedule needs its `schedule` (cron, interval or rrule).")
        creates.append(
            DeploymentScheduleCreate(
                schedule=upd.schedule,
                active=True if upd.active is None else upd.active,
                max_scheduled_runs=upd.max_scheduled_runs,
                parameters=upd.parameters or {},
                slug=upd.slug,
            )
        )
    await session.execute(
        sa.delete(S).where(
            S.deployment_id == deployment_id, S.id.not_in(keep) if keep else sa.true()
        )
    )
    await session.flush()
    await add_schedules(session, deployment_id, creates, now)


async def slug_taken(
    session: AsyncSession, deployment_id: UUID, slug: str | None, skip: UUID | None = None
) -> bool:
    if slug is None:
        return False
    stmt = sa.select(S.id).where(S.deployment_id == deployment_id, S.slug == slug)
    if skip is not None:
        stmt = stmt.where(S.id != skip)
    return (await session.execute(stmt)).first() is not None
