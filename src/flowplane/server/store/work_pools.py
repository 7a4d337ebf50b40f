"""Queries on work pools, their queues and workers (each pool is born with a ``default`` queue)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core import deployments as rules
from flowplane.core.states import StateType
from flowplane.schemas import filters as f
from flowplane.schemas.workers import (
    Worker,
    WorkerStatus,
    WorkPool,
    WorkPoolCreate,
    WorkPoolStatus,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueStatus,
    WorkQueueUpdate,
)
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import compile_filter
from flowplane.server.store.runs import dialect_name, execute_count

P = t.WorkPool
Q = t.WorkQueue
W = t.Worker
R = t.FlowRun

#: The pool ``POST /work_queues/`` puts queues in when none is named (as Prefect does).
DEFAULT_AGENT_POOL = "default-agent-pool"
DEFAULT_QUEUE = "default"
#: States of runs that occupy a pool or queue concurrency slot.
ACTIVE_STATES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)


class Conflict(Exception):
    """The name is taken."""


def occupying(now: datetime) -> Any:
    """Runs holding a slot: active, or Scheduled but claimed by a worker that has not started it."""
    return sa.or_(
        R.state_type.in_(ACTIVE_STATES),
        sa.and_(R.state_type == StateType.SCHEDULED.value, R.claimed_until > now),
    )


# --- pools ------------------------------------------------------------------------------


async def _workers_online(session: AsyncSession, pool_ids: list[UUID], now: datetime) -> set[UUID]:
    rows = (
        await session.execute(
            sa.select(W.work_pool_id, W.last_heartbeat_time, W.heartbeat_interval_seconds).where(
                W.work_pool_id.in_(pool_ids)
            )
        )
    ).all()
    return {
        r.work_pool_id
        for r in rows
        if rules.worker_online(r.last_heartbeat_time, r.heartbeat_interval_seconds, now)
    }


async def _active_by_pool(session: AsyncSession, pool_ids: list[UUID], now: datetime) -> dict:
    stmt = (
        sa.select(Q.work_pool_id, sa.func.count(R.id))
        .select_from(R.__table__.join(Q.__table__, Q.id == R.work_queue_id))
        .where(Q.work_pool_id.in_(pool_ids), occupying(now))
        .group_by(Q.work_pool_id)
    )
    return dict((await session.execute(stmt)).all())  # type: ignore[arg-type]


async def pool_models(session: AsyncSession, rows: list[P], now: datetime) -> list[WorkPool]:
    ids = [r.id for r in rows]
    online = await _workers_online(session, ids, now) if ids else set()
    active = await _active_by_pool(session, ids, now) if ids else {}
    out = []
    for row in rows:
        if row.is_paused:
            status = WorkPoolStatus.PAUSED
        elif row.id in online:
            status = WorkPoolStatus.READY
        else:
            status = WorkPoolStatus.NOT_READY
        model = WorkPool.model_validate(row)
        out.append(
            model.model_copy(update={"status": status, "active_slots": active.get(row.id, 0)})
        )
    return out


async def read_pool(session: AsyncSession, name: str, *, lock: bool = False) -> P | None:
    stmt = sa.select(P).where(P.name == name)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def read_pool_by_id(session: AsyncSession, pool_id: UUID) -> P | None:
    return await session.get(P, pool_id)


async def create_pool(session: AsyncSession, body: WorkPoolCreate, now: datetime) -> P:
    """Create a pool and its default queue.

    Raises:
        Conflict: a pool has that name.
    """
    if await read_pool(session, body.name) is not None:
        raise Conflict(body.name)
    pool = P(
        id=uuid.uuid4(),
        name=body.name,
        description=body.description,
        type=body.type,
        base_job_template=body.base_job_template,
        is_paused=body.is_paused,
        concurrency_limit=body.concurrency_limit,
        storage_configuration=body.storage_configuration.model_dump(mode="json"),
        created=now,
        updated=now,
    )
    session.add(pool)
    await session.flush()
    queue = Q(
        id=uuid.uuid4(),
        name=DEFAULT_QUEUE,
        description="The work pool's default queue.",
        priority=1,
        work_pool_id=pool.id,
        is_paused=False,
        created=now,
        updated=now,
    )
    session.add(queue)
    await session.flush()
    pool.default_queue_id = queue.id
    await session.flush()
    return pool


async def ensure_pool(session: AsyncSession, name: str, now: datetime) -> P:
    """The named pool, created (type ``prefect-agent``) if missing."""
    pool = await read_pool(session, name)
    if pool is None:
        pool = await create_pool(session, WorkPoolCreate(name=name), now)
    return pool


def pool_where(session: AsyncSession, pools: f.WorkPoolFilter | None) -> Any:
    return compile_filter(dialect_name(session), P, pools)


async def read_pools(
    session: AsyncSession, pools: f.WorkPoolFilter | None, offset: int, limit: int
) -> list[P]:
    stmt = sa.select(P).where(pool_where(session, pools)).order_by(P.name).offset(offset)
    return list((await session.execute(stmt.limit(limit))).scalars().all())


async def count_pools(session: AsyncSession, pools: f.WorkPoolFilter | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(P).where(pool_where(session, pools))
    return int((await session.execute(stmt)).scalar_one())


async def update_pool(session: AsyncSession, pool: P, body: WorkPoolUpdate, now: datetime) -> None:
    values = body.model_dump(exclude_unset=True)
    if "storage_configuration" in values and body.storage_configuration is not None:
        values["storage_configuration"] = body.storage_configuration.model_dump(mode="json")
    for key, value in values.items():
        if key in ("is_paused", "base_job_template", "storage_configuration") and value is None:
            continue
        setattr(pool, key, value)
    pool.updated = now
    await session.flush()


async def delete_pool(session: AsyncSession, pool: P) -> None:
    """Delete the pool with its queues and workers; its runs stay, unqueued."""
    queue_ids = sa.select(Q.id).where(Q.work_pool_id == pool.id).scalar_subquery()
    await session.execute(
        sa.update(R)
        .where(R.work_queue_id.in_(queue_ids))
        .values(work_queue_id=None, work_pool_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(sa.delete(Q).where(Q.work_pool_id == pool.id))
    await session.execute(sa.delete(W).where(W.work_pool_id == pool.id))
    await session.delete(pool)
    await session.flush()


# --- queues -----------------------------------------------------------------------------


async def queue_models(session: AsyncSession, rows: list[Q], now: datetime) -> list[WorkQueue]:
    pool_ids = {r.work_pool_id for r in rows}
    names = dict((await session.execute(sa.select(P.id, P.name).where(P.id.in_(pool_ids)))).all())
    active: dict[UUID, int] = {}
    if rows:
        stmt = (
            sa.select(R.work_queue_id, sa.func.count(R.id))
            .where(R.work_queue_id.in_([r.id for r in rows]), occupying(now))
            .group_by(R.work_queue_id)
        )
        active = dict((await session.execute(stmt)).all())  # type: ignore[arg-type]
    out = []
    for row in rows:
        if row.is_paused:
            status = WorkQueueStatus.PAUSED
        elif rules.recently_polled(row.last_polled, now):
            status = WorkQueueStatus.READY
        else:
            status = WorkQueueStatus.NOT_READY
        model = WorkQueue.model_validate(row)
        out.append(
            model.model_copy(
                update={
                    "status": status,
                    "work_pool_name": names.get(row.work_pool_id),
                    "active_slots": active.get(row.id, 0),
                }
            )
        )
    return out


async def read_queue(session: AsyncSession, pool_id: UUID, name: str) -> Q | None:
    stmt = sa.select(Q).where(Q.work_pool_id == pool_id, Q.name == name)
    return (await session.execute(stmt)).scalar_one_or_none()


async def read_queue_by_id(session: AsyncSession, queue_id: UUID) -> Q | None:
    return await session.get(Q, queue_id)


async def read_queue_by_name_anywhere(session: AsyncSession, name: str) -> Q | None:
    """A queue by name: the default agent pool's first, else the oldest queue of that name."""
    stmt = (
        sa.select(Q)
        .join(P, P.id == Q.work_pool_id)
        .where(Q.name == name)
        .order_by((P.name == DEFAULT_AGENT_POOL).desc(), Q.created)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _make_room(
    session: AsyncSession, pool_id: UUID, priority: int, skip: UUID | None
) -> None:
    """Move queues at ``priority`` and below down one, so priorities stay distinct."""
    taken = (
        await session.execute(
            sa.select(Q.id).where(Q.work_pool_id == pool_id, Q.priority == priority, Q.id != skip)
        )
    ).first()
    if taken is not None:
        await session.execute(
            sa.update(Q)
            .where(Q.work_pool_id == pool_id, Q.priority >= priority, Q.id != skip)
            .values(priority=Q.priority + 1)
            .execution_options(synchronize_session=False)
        )


async def create_queue(session: AsyncSession, pool: P, body: WorkQueueCreate, now: datetime) -> Q:
    """Create a queue in ``pool`` (last in priority unless ``priority`` is given).

    Raises:
        Conflict: the pool has a queue of that name.
    """
    if await read_queue(session, pool.id, body.name) is not None:
        raise Conflict(body.name)
    if body.priority is None:
        lowest = (
            await session.execute(
                sa.select(sa.func.max(Q.priority)).where(Q.work_pool_id == pool.id)
            )
        ).scalar()
        priority = (lowest or 0) + 1
    else:
        priority = body.priority
        await _make_room(session, pool.id, priority, None)
    queue = Q(
        id=uuid.uuid4(),
        name=body.name,
        description=body.description,
        is_paused=body.is_paused,
        concurrency_limit=body.concurrency_limit,
        priority=priority,
        work_pool_id=pool.id,
        filter=body.filter.model_dump(mode="json") if body.filter else None,
        created=now,
        updated=now,
    )
    session.add(queue)
    await session.flush()
    return queue


async def read_queues(
    session: AsyncSession,
    pool_id: UUID | None,
    queues: f.WorkQueueFilter | None,
    offset: int,
    limit: int,
) -> list[Q]:
    stmt = sa.select(Q).where(compile_filter(dialect_name(session), Q, queues))
    if pool_id is not None:
        stmt = stmt.where(Q.work_pool_id == pool_id)
    stmt = stmt.order_by(Q.priority, Q.name).offset(offset).limit(limit)
    return list((await session.execute(stmt)).scalars().all())


async def update_queue(
    session: AsyncSession, queue: Q, body: WorkQueueUpdate, now: datetime
) -> None:
    """Apply the fields the client set.

    Raises:
        Conflict: renaming onto a name the pool already has.
    """
    values = body.model_dump(exclude_unset=True)
    values.pop("work_pool_name", None)
    name = values.get("name")
    if name and name != queue.name and await read_queue(session, queue.work_pool_id, name):
        raise Conflict(name)
    if values.get("priority") is not None and values["priority"] != queue.priority:
        await _make_room(session, queue.work_pool_id, values["priority"], queue.id)
    for key, value in values.items():
        if key in ("name", "priority", "is_paused") and value is None:
            continue
        if key == "filter":
            value = body.filter.model_dump(mode="json") if body.filter else None
        setattr(queue, key, value)
    queue.updated = now
    await session.flush()


async def delete_queue(session: AsyncSession, queue: Q) -> None:
    await session.execute(
        sa.update(R)
        .where(R.work_queue_id == queue.id)
        .values(work_queue_id=None)
        .execution_options(synchronize_session=False)
    )
    await session.delete(queue)
    await session.flush()


async def mark_polled(session: AsyncSession, queue_ids: list[UUID], now: datetime) -> None:
    """Record that workers polled these queues (and so the deployments that use them)."""
    if not queue_ids:
        return
    await session.execute(
        sa.update(Q)
        .where(Q.id.in_(queue_ids))
        .values(last_polled=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        sa.update(t.Deployment)
        .where(t.Deployment.work_queue_id.in_(queue_ids))
        .values(last_polled=now)
        .execution_options(synchronize_session=False)
    )


# --- workers ----------------------------------------------------------------------------


async def heartbeat(
    session: AsyncSession, pool_id: UUID, name: str, interval: int | None, now: datetime
) -> None:
    """Record a worker's heartbeat, registering it on its first."""
    values: dict[str, Any] = {"last_heartbeat_time": now, "updated": now}
    if interval is not None:
        values["heartbeat_interval_seconds"] = interval
    changed = await execute_count(
        session, sa.update(W).where(W.work_pool_id == pool_id, W.name == name).values(**values)
    )
    if changed == 0:
        session.add(
            W(
                id=uuid.uuid4(),
                name=name,
                work_pool_id=pool_id,
                created=now,
                **values,
            )
        )
        await session.flush()


def worker_model(row: W, now: datetime) -> Worker:
    online = rules.worker_online(row.last_heartbeat_time, row.heartbeat_interval_seconds, now)
    return Worker.model_validate(row).model_copy(
        update={"status": WorkerStatus.ONLINE if online else WorkerStatus.OFFLINE}
    )


async def read_workers(
    session: AsyncSession,
    pool_id: UUID,
    workers: f.WorkerFilter | None,
    offset: int,
    limit: int,
    now: datetime,
) -> list[Worker]:
    stmt = sa.select(W).where(W.work_pool_id == pool_id)
    if workers is not None and workers.last_heartbeat_time is not None:
        stmt = stmt.where(compile_filter(dialect_name(session), W, workers.last_heartbeat_time))
    stmt = stmt.order_by(W.last_heartbeat_time.desc(), W.name)
    models = [worker_model(r, now) for r in (await session.execute(stmt)).scalars().all()]
    if workers is not None and workers.status is not None:
        if workers.status.any_ is not None:
            models = [m for m in models if m.status.value in workers.status.any_]
        if workers.status.not_any_ is not None:
            models = [m for m in models if m.status.value not in workers.status.not_any_]
    return models[offset : offset + limit]


async def delete_worker(session: AsyncSession, pool_id: UUID, name: str) -> bool:
    stmt = sa.delete(W).where(W.work_pool_id == pool_id, W.name == name)
    return await execute_count(session, stmt) > 0


async def resolve_queue(
    session: AsyncSession, pool_name: str | None, queue_name: str | None
) -> tuple[P, Q] | None:
    """The pool and queue a run names (the pool's default queue when no queue is named).

    With only a queue name, the queue is looked up as ``/work_queues/name/{name}`` does.
    None when either does not exist.
    """
    if pool_name is None:
        if queue_name is None:
            return None
        queue = await read_queue_by_name_anywhere(session, queue_name)
        if queue is None:
            return None
        pool = await read_pool_by_id(session, queue.work_pool_id)
        return None if pool is None else (pool, queue)
    pool = await read_pool(session, pool_name)
    if pool is None:
        return None
    if queue_name is None:
        found = (
            await read_queue_by_id(session, pool.default_queue_id)
            if pool.default_queue_id
            else None
        )
    else:
        found = await read_queue(session, pool.id, queue_name)
    return None if found is None else (pool, found)
