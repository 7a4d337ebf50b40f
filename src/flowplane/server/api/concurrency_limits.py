"""Task-run tag concurrency limit endpoints (``/concurrency_limits``, the v1 API).

A tag's limit is the global limit named ``tag:<tag>``: the same row the task engine
takes slots on through ``/v2/concurrency_limits/increment-with-lease``, so the v1 CLI
and the v2 engine always agree. A v1 limit's ``active_slots`` are the task runs
holding unexpired leases on it. v1 clients cannot renew leases, so slots taken
through ``/concurrency_limits/increment`` are held until released or reset.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core import concurrency as cc
from flowplane.schemas.base import now_utc
from flowplane.schemas.concurrency import (
    ConcurrencyLeaseHolder,
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    ConcurrencyLimitV2Create,
    ConcurrencyLimitV2Update,
    MinimalConcurrencyLimitResponse,
    TagSlots,
)
from flowplane.server.api import API_PREFIX
from flowplane.server.api.concurrency_limits_v2 import WaitQuery, acquire_slots, get_waiters
from flowplane.server.api.deps import MAX_LIMIT, get_db, not_found, page_limit
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.slot_waiters import SlotWaiters
from flowplane.server.store import concurrency as store
from flowplane.server.store import concurrency_leases as leases

router = APIRouter(
    prefix=f"{API_PREFIX}/concurrency_limits", tags=["Concurrency Limits"], route_class=LazyAPIRoute
)


def tag_view(row: t.ConcurrencyLimit, holders: dict[UUID, list[UUID]]) -> ConcurrencyLimit:
    return ConcurrencyLimit(
        id=row.id,
        created=row.created,
        updated=row.updated,
        tag=cc.tag_of(row.name) or row.name,
        concurrency_limit=row.limit,
        active_slots=holders.get(row.id, []),
    )


def tag_minimal(rows: list[t.ConcurrencyLimit]) -> list[MinimalConcurrencyLimitResponse]:
    return [
        MinimalConcurrencyLimitResponse(id=r.id, name=cc.tag_of(r.name) or r.name, limit=r.limit)
        for r in rows
    ]


async def _read_tag_limit(session: AsyncSession, ident: UUID | str) -> t.ConcurrencyLimit | None:
    """The tag limit with this id, or for this tag; global limits that are not tag limits are not found."""
    key = ident if isinstance(ident, UUID) else cc.tag_limit_name(ident)
    row = await store.read(session, key)
    return row if row is not None and cc.tag_of(row.name) is not None else None


@router.post("/", response_model=ConcurrencyLimit, status_code=status.HTTP_201_CREATED)
async def create_concurrency_limit(
    concurrency_limit: ConcurrencyLimitCreate, response: Response, db: Database = Depends(get_db)
) -> ConcurrencyLimit:
    """Create the tag's limit (201), or set the limit of the existing one (200)."""
    name = cc.tag_limit_name(concurrency_limit.tag)
    now = now_utc()
    async with db.session() as session:
        row = await store.create(
            session,
            ConcurrencyLimitV2Create(name=name, limit=concurrency_limit.concurrency_limit),
            now,
        )
        if row is None:
            response.status_code = status.HTTP_200_OK
            changes = ConcurrencyLimitV2Update(limit=concurrency_limit.concurrency_limit)
            await store.update(session, name, changes, now)
            row = await store.read(session, name)
        assert row is not None
        holders = await leases.task_run_holders(session, [row.id], now)
    return tag_view(row, holders)


@router.get("/{id}", response_model=ConcurrencyLimit)
async def read_concurrency_limit(
    id: UUID = Path(...), db: Database = Depends(get_db)
) -> ConcurrencyLimit:
    async with db.read_session() as session:
        row = await _read_tag_limit(session, id)
        holders = await leases.task_run_holders(session, [row.id], now_utc()) if row else {}
    if row is None:
        not_found("Concurrency limit", id)
    return tag_view(row, holders)


@router.get("/tag/{tag}", response_model=ConcurrencyLimit)
async def read_concurrency_limit_by_tag(
    tag: str = Path(...), db: Database = Depends(get_db)
) -> ConcurrencyLimit:
    async with db.read_session() as session:
        row = await _read_tag_limit(session, tag)
        holders = await leases.task_run_holders(session, [row.id], now_utc()) if row else {}
    if row is None:
        not_found("Concurrency limit for tag", tag)
    return tag_view(row, holders)


@router.post("/filter", response_model=list[ConcurrencyLimit])
async def read_concurrency_limits(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[ConcurrencyLimit]:
    async with db.read_session() as session:
        rows = await store.read_many(
            session, offset=offset or 0, limit=page_limit(limit), name_prefix=cc.TAG_PREFIX
        )
        holders = await leases.task_run_holders(session, [r.id for r in rows], now_utc())
    return [tag_view(row, holders) for row in rows]


@router.post("/tag/{tag}/reset")
async def reset_concurrency_limit_by_tag(
    tag: str = Path(...),
    slot_override: list[UUID] | None = Body(None, embed=True),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    """Free every slot of the tag's limit, or hand them to the task runs in ``slot_override``."""
    now = now_utc()
    holders = list(dict.fromkeys(slot_override or []))
    async with db.session() as session:
        row = await _read_tag_limit(session, tag)
        if row is not None:
            await leases.detach_limit(session, row.id)
            await store.reset_slots(session, row.id, len(holders), now)
            for task_run_id in holders:
                holder = ConcurrencyLeaseHolder(type="task_run", id=task_run_id)
                await leases.create(session, [row.id], 1, leases.V1_LEASE_SECONDS, now, holder)
    if row is None:
        not_found("Concurrency limit for tag", tag)
    waiters.notify_all([row.id])


async def _delete(db: Database, ident: UUID | str, waiters: SlotWaiters) -> bool:
    async with db.session() as session:
        row = await _read_tag_limit(session, ident)
        if row is None:
            return False
        await leases.detach_limit(session, row.id)
        await store.delete(session, row.id)
    waiters.notify_all([row.id])  # their next try finds no limit and goes ahead
    return True


@router.delete("/{id}")
async def delete_concurrency_limit(
    id: UUID = Path(...),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    if not await _delete(db, id, waiters):
        not_found("Concurrency limit", id)


@router.delete("/tag/{tag}")
async def delete_concurrency_limit_by_tag(
    tag: str = Path(...),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    if not await _delete(db, tag, waiters):
        not_found("Concurrency limit for tag", tag)


@router.post("/increment", response_model=list[MinimalConcurrencyLimitResponse])
async def increment_concurrency_limits_v1(
    body: TagSlots,
    wait: float = WaitQuery,
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> list[MinimalConcurrencyLimitResponse]:
    """Take one slot on each tag's active limit for a task run, held until ``/decrement``.

    423 with Retry-After when one is full; 423 without it when a limit is 0 (the
    task would never run, and v1 clients abort on that answer).
    """
    rows, _ = await acquire_slots(
        db,
        [cc.tag_limit_name(tag) for tag in body.names],
        1,
        lease_duration=leases.V1_LEASE_SECONDS,
        holder=ConcurrencyLeaseHolder(type="task_run", id=body.task_run_id),
        v1=True,
        wait=wait,
        waiters=waiters,
    )
    return tag_minimal(rows)


@router.post("/decrement", response_model=list[MinimalConcurrencyLimitResponse])
async def decrement_concurrency_limits_v1(
    body: TagSlots, db: Database = Depends(get_db), waiters: SlotWaiters = Depends(get_waiters)
) -> list[MinimalConcurrencyLimitResponse]:
    """Release the task run's leases on these tags' limits (and so their slots)."""
    names = [cc.tag_limit_name(tag) for tag in body.names]
    async with db.read_session() as session:
        rows = await store.read_by_names(session, names)
        held = await leases.held_by_task_run(session, body.task_run_id, [r.id for r in rows])
    if held:
        freed: dict[UUID, int] = {}
        async with db.session() as session:
            await leases.release(session, held, now_utc(), freed=freed)
        waiters.notify(freed)
    return tag_minimal(rows)
