"""Work pool endpoints: pools, their queues and workers, and claiming Scheduled runs for workers."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, HTTPException, Path, status

from flowplane.schemas import filters as f
from flowplane.schemas.base import UTCDateTime, now_utc
from flowplane.schemas.workers import (
    Worker,
    WorkerFlowRunResponse,
    WorkPool,
    WorkPoolConcurrencyStatus,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueConcurrencyStatusDetail,
    WorkQueueCreate,
    WorkQueueUpdate,
)
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import MAX_LIMIT, conflict, get_db, not_found, page_limit, pages
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.store import claims
from flowplane.server.store import work_pools as store

router = APIRouter(prefix=f"{API_PREFIX}/work_pools", tags=["Work Pools"], route_class=LazyAPIRoute)

#: Pool names Prefect keeps for itself.
RESERVED_PREFIX = "prefect"


async def _pool(session: object, name: str, *, lock: bool = False) -> t.WorkPool:
    pool = await store.read_pool(session, name, lock=lock)  # type: ignore[arg-type]
    if pool is None:
        not_found("Work pool", name)
    return pool


# --- pools ------------------------------------------------------------------------------


@router.post("/", response_model=WorkPool, status_code=status.HTTP_201_CREATED)
async def create_work_pool(work_pool: WorkPoolCreate, db: Database = Depends(get_db)) -> WorkPool:
    if work_pool.name.lower().startswith(RESERVED_PREFIX):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="Work pools starting with 'Prefect' are reserved for internal use.",
        )
    now = now_utc()
    async with db.session() as session:
        try:
            pool = await store.create_pool(session, work_pool, now)
        except store.Conflict:
            conflict(f"A work pool named {work_pool.name!r} already exists.")
        return (await store.pool_models(session, [pool], now))[0]


@router.get("/{name}", response_model=WorkPool)
async def read_work_pool(name: str = Path(...), db: Database = Depends(get_db)) -> WorkPool:
    now = now_utc()
    async with db.read_session() as session:
        pool = await _pool(session, name)
        return (await store.pool_models(session, [pool], now))[0]


@router.post("/filter", response_model=list[WorkPool])
async def read_work_pools(
    work_pools: f.WorkPoolFilter | None = None,
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[WorkPool]:
    now = now_utc()
    async with db.read_session() as session:
        rows = await store.read_pools(session, work_pools, offset or 0, page_limit(limit))
        return await store.pool_models(session, rows, now)


@router.post("/count")
async def count_work_pools(
    work_pools: f.WorkPoolFilter | None = Body(None, embed=True), db: Database = Depends(get_db)
) -> int:
    async with db.read_session() as session:
        return await store.count_pools(session, work_pools)


@router.patch("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def update_work_pool(
    work_pool: WorkPoolUpdate, name: str = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        pool = await _pool(session, name)
        await store.update_pool(session, pool, work_pool, now_utc())


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_work_pool(name: str = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        pool = await _pool(session, name)
        await store.delete_pool(session, pool)


@router.post("/{name}/get_scheduled_flow_runs", response_model=list[WorkerFlowRunResponse])
async def get_scheduled_flow_runs(
    name: str = Path(...),
    work_queue_names: list[str] | None = Body(None),
    scheduled_before: UTCDateTime | None = Body(None),
    scheduled_after: UTCDateTime | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    db: Database = Depends(get_db),
) -> list[WorkerFlowRunResponse]:
    """Claim the pool's due Scheduled runs for the calling worker (no run goes to two callers)."""
    now = now_utc()
    async with db.session() as session:
        pool = await _pool(session, name, lock=True)
        claimed = await claims.claim_from_pool(
            session,
            pool,
            work_queue_names,
            before=scheduled_before,
            after=scheduled_after,
            limit=page_limit(limit),
            now=now,
        )
    return [
        WorkerFlowRunResponse(
            work_pool_id=c.work_pool_id, work_queue_id=c.work_queue_id, flow_run=c.flow_run
        )
        for c in claimed
    ]


@router.post("/{name}/concurrency_status", response_model=WorkPoolConcurrencyStatus)
async def read_work_pool_concurrency_status(
    name: str = Path(...),
    page: int = Body(1, ge=1),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    flow_run_limit: int = Body(10, ge=0),
    db: Database = Depends(get_db),
) -> WorkPoolConcurrencyStatus:
    now = now_utc()
    size = page_limit(limit)
    async with db.read_session() as session:
        pool = await _pool(session, name)
        model = (await store.pool_models(session, [pool], now))[0]
        every = await store.read_queues(session, pool.id, None, 0, 10_000)
        rows = every[(page - 1) * size : page * size]
        queues = await store.queue_models(session, rows, now)
    return WorkPoolConcurrencyStatus(
        concurrency_limit=pool.concurrency_limit,
        active_slots=model.active_slots or 0,
        queues=[
            WorkQueueConcurrencyStatusDetail(
                queue_id=q.id,
                queue_name=q.name,
                concurrency_limit=q.concurrency_limit,
                active_slots=q.active_slots or 0,
                flow_run_count=q.active_slots or 0,
            )
            for q in queues
        ],
        count=len(every),
        limit=size,
        page=page,
        pages=pages(len(every), size),
    )


# --- queues in a pool ---------------------------------------------------------------------


@router.post(
    "/{work_pool_name}/queues", response_model=WorkQueue, status_code=status.HTTP_201_CREATED
)
async def create_work_queue(
    work_queue: WorkQueueCreate,
    work_pool_name: str = Path(...),
    db: Database = Depends(get_db),
) -> WorkQueue:
    now = now_utc()
    async with db.session() as session:
        pool = await _pool(session, work_pool_name)
        try:
            queue = await store.create_queue(session, pool, work_queue, now)
        except store.Conflict:
            conflict(f"A work queue named {work_queue.name!r} already exists in {pool.name!r}.")
        return (await store.queue_models(session, [queue], now))[0]


@router.post("/{work_pool_name}/queues/filter", response_model=list[WorkQueue])
async def read_work_queues(
    work_pool_name: str = Path(...),
    work_queues: f.WorkQueueFilter | None = None,
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[WorkQueue]:
    now = now_utc()
    async with db.read_session() as session:
        pool = await _pool(session, work_pool_name)
        rows = await store.read_queues(
            session, pool.id, work_queues, offset or 0, page_limit(limit)
        )
        return await store.queue_models(session, rows, now)


async def _queue(session: object, pool: t.WorkPool, name: str) -> t.WorkQueue:
    queue = await store.read_queue(session, pool.id, name)  # type: ignore[arg-type]
    if queue is None:
        not_found("Work queue", f"{pool.name}/{name}")
    return queue


@router.get("/{work_pool_name}/queues/{name}", response_model=WorkQueue)
async def read_work_queue(
    work_pool_name: str = Path(...), name: str = Path(...), db: Database = Depends(get_db)
) -> WorkQueue:
    now = now_utc()
    async with db.read_session() as session:
        queue = await _queue(session, await _pool(session, work_pool_name), name)
        return (await store.queue_models(session, [queue], now))[0]


@router.patch("/{work_pool_name}/queues/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def update_work_queue(
    work_queue: WorkQueueUpdate,
    work_pool_name: str = Path(...),
    name: str = Path(...),
    db: Database = Depends(get_db),
) -> None:
    async with db.session() as session:
        queue = await _queue(session, await _pool(session, work_pool_name), name)
        try:
            await store.update_queue(session, queue, work_queue, now_utc())
        except store.Conflict as exc:
            conflict(f"A work queue named {str(exc)!r} already exists in {work_pool_name!r}.")


@router.delete("/{work_pool_name}/queues/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_work_queue(
    work_pool_name: str = Path(...), name: str = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        pool = await _pool(session, work_pool_name)
        queue = await _queue(session, pool, name)
        if queue.id == pool.default_queue_id:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST, detail="A work pool's default queue cannot be deleted."
            )
        await store.delete_queue(session, queue)


# --- workers ----------------------------------------------------------------------------


@router.post("/{work_pool_name}/workers/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
async def worker_heartbeat(
    work_pool_name: str = Path(...),
    name: str = Body(..., min_length=1),
    heartbeat_interval_seconds: int | None = Body(None, ge=1),
    db: Database = Depends(get_db),
) -> None:
    async with db.session() as session:
        pool = await _pool(session, work_pool_name)
        await store.heartbeat(session, pool.id, name, heartbeat_interval_seconds, now_utc())


@router.post("/{work_pool_name}/workers/filter", response_model=list[Worker])
async def read_workers(
    work_pool_name: str = Path(...),
    workers: f.WorkerFilter | None = None,
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[Worker]:
    async with db.read_session() as session:
        pool = await _pool(session, work_pool_name)
        return await store.read_workers(
            session, pool.id, workers, offset or 0, page_limit(limit), now_utc()
        )


@router.delete("/{work_pool_name}/workers/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_worker(
    work_pool_name: str = Path(...), name: str = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        pool = await _pool(session, work_pool_name)
        if not await store.delete_worker(session, pool.id, name):
            not_found("Worker", f"{work_pool_name}/{name}")
