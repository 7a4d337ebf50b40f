"""Work queue endpoints by id (``/work_queues``): CRUD, status, and the runs waiting in a queue."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, status

from flowplane.core.states import StateType
from flowplane.schemas import filters as f
from flowplane.schemas.base import UTCDateTime, now_utc
from flowplane.schemas.flow_runs import FlowRun
from flowplane.schemas.workers import (
    WorkQueue,
    WorkQueueConcurrencyStatus,
    WorkQueueCreate,
    WorkQueueHealthPolicy,
    WorkQueueStatusDetail,
    WorkQueueUpdate,
)
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import MAX_LIMIT, conflict, get_db, not_found, page_limit, pages
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.store import claims
from flowplane.server.store import work_pools as store

router = APIRouter(
    prefix=f"{API_PREFIX}/work_queues", tags=["Work Queues"], route_class=LazyAPIRoute
)


async def _queue(session: object, queue_id: UUID) -> t.WorkQueue:
    queue = await store.read_queue_by_id(session, queue_id)  # type: ignore[arg-type]
    if queue is None:
        not_found("Work queue", queue_id)
    return queue


@router.post("/", response_model=WorkQueue, status_code=status.HTTP_201_CREATED)
async def create_work_queue(
    work_queue: WorkQueueCreate, db: Database = Depends(get_db)
) -> WorkQueue:
    """Create a queue in ``work_pool_name`` (default: the default agent pool, made if missing)."""
    now = now_utc()
    async with db.session() as session:
        if work_queue.work_pool_name:
            pool = await store.read_pool(session, work_queue.work_pool_name)
            if pool is None:
                not_found("Work pool", work_queue.work_pool_name)
        else:
            pool = await store.ensure_pool(session, store.DEFAULT_AGENT_POOL, now)
        try:
            queue = await store.create_queue(session, pool, work_queue, now)
        except store.Conflict:
            conflict(f"A work queue named {work_queue.name!r} already exists in {pool.name!r}.")
        return (await store.queue_models(session, [queue], now))[0]


@router.get("/name/{name}", response_model=WorkQueue)
async def read_work_queue_by_name(
    name: str = Path(...), db: Database = Depends(get_db)
) -> WorkQueue:
    async with db.read_session() as session:
        queue = await store.read_queue_by_name_anywhere(session, name)
        if queue is None:
            not_found("Work queue", name)
        return (await store.queue_models(session, [queue], now_utc()))[0]


@router.post("/filter", response_model=list[WorkQueue])
async def read_work_queues(
    work_queues: f.WorkQueueFilter | None = None,
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[WorkQueue]:
    async with db.read_session() as session:
        rows = await store.read_queues(session, None, work_queues, offset or 0, page_limit(limit))
        return await store.queue_models(session, rows, now_utc())


@router.get("/{id}", response_model=WorkQueue)
async def read_work_queue(id: UUID = Path(...), db: Database = Depends(get_db)) -> WorkQueue:
    async with db.read_session() as session:
        queue = await _queue(session, id)
        return (await store.queue_models(session, [queue], now_utc()))[0]


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_work_queue(
    work_queue: WorkQueueUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        queue = await _queue(session, id)
        try:
            await store.update_queue(session, queue, work_queue, now_utc())
        except store.Conflict as exc:
            conflict(f"A work queue named {str(exc)!r} already exists in its pool.")


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_work_queue(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        queue = await _queue(session, id)
        pool = await store.read_pool_by_id(session, queue.work_pool_id)
        if pool is not None and pool.default_queue_id == queue.id:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail="A work pool's default queue cannot be deleted."
            )
        await store.delete_queue(session, queue)


@router.post("/{id}/get_runs", response_model=list[FlowRun])
async def read_work_queue_runs(
    id: UUID = Path(...),
    scheduled_before: UTCDateTime | None = Body(None, embed=True),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    db: Database = Depends(get_db),
) -> list[FlowRun]:
    """The queue's Scheduled runs due by ``scheduled_before``; marks the queue polled."""
    now = now_utc()
    async with db.session() as session:
        queue = await _queue(session, id)
        await store.mark_polled(session, [queue.id], now)
        return await claims.scheduled_in_queue(
            session, queue, scheduled_before, page_limit(limit), now
        )


@router.get("/{id}/status", response_model=WorkQueueStatusDetail)
async def read_work_queue_status(
    id: UUID = Path(...), db: Database = Depends(get_db)
) -> WorkQueueStatusDetail:
    """Healthy when polled within the last minute and no run is late."""
    import sqlalchemy as sa

    now = now_utc()
    policy = WorkQueueHealthPolicy()
    async with db.read_session() as session:
        queue = await _queue(session, id)
        late = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(t.FlowRun)
                .where(
                    t.FlowRun.work_queue_id == queue.id,
                    t.FlowRun.state_type == StateType.SCHEDULED.value,
                    t.FlowRun.state_name == "Late",
                )
            )
        ).scalar_one()
    polled_recently = queue.last_polled is not None and (
        (now - queue.last_polled).total_seconds() < (policy.maximum_seconds_since_last_polled or 60)
    )
    return WorkQueueStatusDetail(
        healthy=polled_recently and late <= (policy.maximum_late_runs or 0),
        late_runs_count=late,
        last_polled=queue.last_polled,
        health_check_policy=policy,
    )


@router.post("/{id}/concurrency_status", response_model=WorkQueueConcurrencyStatus)
async def read_work_queue_concurrency_status(
    id: UUID = Path(...),
    page: int = Body(1, ge=1),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    db: Database = Depends(get_db),
) -> WorkQueueConcurrencyStatus:
    import sqlalchemy as sa

    from flowplane.server.store import runs

    now = now_utc()
    size = page_limit(limit)
    async with db.read_session() as session:
        queue = await _queue(session, id)
        stmt = runs.select_runs(runs.FLOW_RUNS).where(
            t.FlowRun.work_queue_id == queue.id, store.occupying(now)
        )
        rows = (await session.execute(stmt.order_by(sa.desc(t.FlowRun.id)))).all()
        active = runs.models_from_rows(runs.FLOW_RUNS, rows, now)
    return WorkQueueConcurrencyStatus(
        concurrency_limit=queue.concurrency_limit,
        active_slots=len(active),
        flow_runs=active[(page - 1) * size : page * size],
        count=len(active),
        limit=size,
        page=page,
        pages=pages(len(active), size),
    )
