"""Global concurrency limit endpoints (``/v2/concurrency_limits``): CRUD, slots, and leases on slots."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from uuid import UUID, uuid4

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, status

from flowplane.core import concurrency as cc
from flowplane.schemas.base import now_utc
from flowplane.schemas.concurrency import (
    DEFAULT_LEASE_DURATION,
    ConcurrencyLeaseHolder,
    ConcurrencyLimitV2,
    ConcurrencyLimitV2Create,
    ConcurrencyLimitV2Update,
    ConcurrencyLimitWithLeaseResponse,
    GlobalConcurrencyLimitResponse,
    MinimalConcurrencyLimitResponse,
    SlotsDecrement,
    SlotsIncrement,
    SlotsIncrementWithLease,
)
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import MAX_LIMIT, conflict, get_db, not_found, page_limit
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.slot_waiters import (
    MAX_WAIT_SECONDS,
    RECHECK_SECONDS,
    SlotWaiters,
    waiters_for,
)
from flowplane.server.store import concurrency as store
from flowplane.server.store import concurrency_leases as leases

router = APIRouter(
    prefix=f"{API_PREFIX}/v2/concurrency_limits",
    tags=["Concurrency Limits V2"],
    route_class=LazyAPIRoute,
)


def get_waiters(request: Request) -> SlotWaiters:
    return waiters_for(request.app)


#: ``?wait=seconds``, a flowplane extension: hold a refused request until slots free up.
WaitQuery = Query(
    0.0,
    ge=0,
    le=MAX_WAIT_SECONDS,
    description="Seconds the server may hold a refused request for slots to come free "
    "before answering 423 (flowplane only; Prefect clients poll instead).",
)


def id_or_name(value: str) -> UUID | str:
    """A path segment that names a limit: its id if it parses as a UUID, else its name."""
    try:
        return UUID(value)
    except ValueError:
        return value


def minimal(rows: Sequence[t.ConcurrencyLimit]) -> list[MinimalConcurrencyLimitResponse]:
    return [MinimalConcurrencyLimitResponse(id=r.id, name=r.name, limit=r.limit) for r in rows]


def locked(refusal: store.Refusal, slots: int) -> HTTPException:
    """The 423 for a refused request, with the Retry-After the client sleeps for."""
    seconds = cc.retry_after(refusal.blocking, slots, random.random())
    names = ", ".join(repr(f.name) for f in refusal.blocking) or "the requested limits"
    return HTTPException(
        status.HTTP_423_LOCKED,
        detail=f"No free slots on {names}; retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


async def acquire_slots(
    db: Database,
    names: Sequence[str],
    slots: int,
    mode: cc.Mode = cc.Mode.CONCURRENCY,
    *,
    lease_duration: float | None = None,
    holder: ConcurrencyLeaseHolder | None = None,
    v1: bool = False,
    wait: float = 0.0,
    waiters: SlotWaiters | None = None,
) -> tuple[list[t.ConcurrencyLimit], UUID | None]:
    """Take ``slots`` on the named limits (all or none), answering 422/423 as Prefect does.

    With no such limits nothing is written (this is every tagged task's first call).
    ``v1`` treats inactive limits as missing and refuses limits of 0 outright.
    With ``wait`` and ``waiters``, a refused request waits up to ``wait`` seconds,
    trying again whenever a release on this server frees one of its limits' slots
    (and every ``RECHECK_SECONDS`` regardless), before it is answered 423.

    Returns:
        The limits found (by name; inactive ones too unless ``v1``), and the new
        lease's id when ``lease_duration`` is given and a lease was needed.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        rows, ids = await _admissible(db, names, slots, mode, v1)
        if not rows:
            return rows, None
        # Queue before trying, so a release between the refusal and the wait is not missed.
        woken = waiters.subscribe(ids) if waiters is not None and wait > 0 else None
        try:
            async with db.session() as session:
                outcome = await leases.acquire(
                    session,
                    ids,
                    slots,
                    now_utc(),
                    lease_duration=lease_duration,
                    hold=mode is cc.Mode.CONCURRENCY,
                    holder=holder,
                )
            if not isinstance(outcome, store.Refusal):
                return rows, outcome
            remaining = deadline - loop.time()
            if woken is None or remaining <= 0:
                raise locked(outcome, slots)
            pause = min(remaining, RECHECK_SECONDS, _decay_wait(outcome, slots))
            # Woken or not, the next round reads the limits again (changed, deleted...).
            await asyncio.wait({woken}, timeout=pause)
        finally:
            if woken is not None:
                waiters.unsubscribe(woken, ids)  # type: ignore[union-attr]


async def _admissible(
    db: Database, names: Sequence[str], slots: int, mode: cc.Mode, v1: bool
) -> tuple[list[t.ConcurrencyLimit], list[UUID]]:
    """The named limits and the ids of the active ones; 422/423 for requests that can never fit."""
    async with db.read_session() as session:
        rows = await store.read_by_names(session, names)
    if v1:
        rows = [r for r in rows if r.active]
    if not rows:
        return rows, []
    active = [r for r in rows if r.active]
    if v1:
        zero = [r.name for r in active if r.limit == 0]
        if zero:
            # No Retry-After: v1 clients take that as "abort", not "wait".
            raise HTTPException(
                status.HTTP_423_LOCKED,
                detail=f"The concurrency limit on {', '.join(zero)} is 0 and would deadlock the task.",
            )
    problem = cc.request_problem([store.facts(r) for r in rows], slots, mode)
    if problem:
        raise HTTPException(422, detail=problem)
    return rows, [r.id for r in active]


def _decay_wait(refusal: store.Refusal, slots: int) -> float:
    """Seconds until decay alone frees enough slots on every blocking limit (inf if it never does)."""
    longest = 0.0
    for facts in refusal.blocking:
        if facts.slot_decay_per_second <= 0:
            return float("inf")
        excess = facts.active_slots + slots - facts.limit
        longest = max(longest, excess / facts.slot_decay_per_second)
    return max(longest, 0.01)


@router.post("/", response_model=ConcurrencyLimitV2, status_code=status.HTTP_201_CREATED)
async def create_concurrency_limit_v2(
    concurrency_limit: ConcurrencyLimitV2Create, db: Database = Depends(get_db)
) -> ConcurrencyLimitV2:
    now = now_utc()
    async with db.session() as session:
        row = await store.create(session, concurrency_limit, now)
    if row is None:
        conflict(f"A concurrency limit named {concurrency_limit.name!r} already exists.")
    return store.full_view(row, now)


@router.get("/{id_or_name}", response_model=GlobalConcurrencyLimitResponse)
async def read_concurrency_limit_v2(
    ident: str = Path(..., alias="id_or_name"), db: Database = Depends(get_db)
) -> GlobalConcurrencyLimitResponse:
    async with db.read_session() as session:
        row = await store.read(session, id_or_name(ident))
    if row is None:
        not_found("Concurrency limit", ident)
    return store.view(row, now_utc())


@router.post("/filter", response_model=list[GlobalConcurrencyLimitResponse])
async def read_all_concurrency_limits_v2(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[GlobalConcurrencyLimitResponse]:
    async with db.read_session() as session:
        rows = await store.read_many(session, offset=offset or 0, limit=page_limit(limit))
    now = now_utc()
    return [store.view(row, now) for row in rows]


@router.patch("/{id_or_name}", status_code=status.HTTP_204_NO_CONTENT)
async def update_concurrency_limit_v2(
    concurrency_limit: ConcurrencyLimitV2Update,
    ident: str = Path(..., alias="id_or_name"),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    async with db.session() as session:
        row = await store.read(session, id_or_name(ident))
        if row is not None:
            await store.update(session, row.id, concurrency_limit, now_utc())
    if row is None:
        not_found("Concurrency limit", ident)
    waiters.notify_all([row.id])  # a raised limit or a reactivated one may admit waiters


@router.delete("/{id_or_name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_concurrency_limit_v2(
    ident: str = Path(..., alias="id_or_name"),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    async with db.session() as session:
        row = await store.read(session, id_or_name(ident))
        if row is not None:
            await leases.detach_limit(session, row.id)
            await store.delete(session, row.id)
    if row is None:
        not_found("Concurrency limit", ident)
    waiters.notify_all([row.id])  # their next try finds no limit and goes ahead


@router.post("/increment", response_model=list[MinimalConcurrencyLimitResponse])
async def bulk_increment_active_slots(
    body: SlotsIncrement,
    wait: float = WaitQuery,
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> list[MinimalConcurrencyLimitResponse]:
    """Take slots with no lease: the caller gives them back with ``/decrement`` (or they decay)."""
    rows, _ = await acquire_slots(db, body.names, body.slots, body.mode, wait=wait, waiters=waiters)
    return minimal(rows)


@router.post("/increment-with-lease", response_model=ConcurrencyLimitWithLeaseResponse)
async def bulk_increment_active_slots_with_lease(
    body: SlotsIncrementWithLease,
    wait: float = WaitQuery,
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> ConcurrencyLimitWithLeaseResponse:
    """Take slots under a lease the holder renews; if it lapses, the expiry service frees them."""
    rows, lease_id = await acquire_slots(
        db,
        body.names,
        body.slots,
        body.mode,
        lease_duration=body.lease_duration,
        holder=body.holder,
        wait=wait,
        waiters=waiters,
    )
    # With no limits there is nothing to hold: the id is fresh and no lease is stored.
    return ConcurrencyLimitWithLeaseResponse(lease_id=lease_id or uuid4(), limits=minimal(rows))


@router.post("/decrement", response_model=list[MinimalConcurrencyLimitResponse])
async def bulk_decrement_active_slots(
    body: SlotsDecrement,
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> list[MinimalConcurrencyLimitResponse]:
    """Give back slots taken with ``/increment`` on the named active limits."""
    async with db.read_session() as session:
        rows = await store.read_by_names(session, body.names)
    if rows:
        ids = [r.id for r in rows]
        occupancy = {i: body.occupancy_seconds for i in ids} if body.occupancy_seconds else None
        async with db.session() as session:
            await store.give_back(
                session,
                dict.fromkeys(ids, body.slots),
                now_utc(),
                occupancy_seconds=occupancy,
                only_active=True,
            )
        waiters.notify(dict.fromkeys(ids, body.slots))
    return minimal(rows)


@router.post("/decrement-with-lease", status_code=status.HTTP_204_NO_CONTENT)
async def bulk_decrement_active_slots_with_lease(
    lease_id: UUID = Body(..., embed=True),
    db: Database = Depends(get_db),
    waiters: SlotWaiters = Depends(get_waiters),
) -> None:
    """Release a lease and give back its slots; an unknown (already released) lease is no error."""
    freed: dict[UUID, int] = {}
    async with db.session() as session:
        await leases.release(session, [lease_id], now_utc(), freed=freed)
    waiters.notify(freed)


@router.post("/leases/{lease_id}/renew", status_code=status.HTTP_204_NO_CONTENT)
async def renew_concurrency_lease(
    lease_id: UUID = Path(...),
    lease_duration: float = Body(DEFAULT_LEASE_DURATION, ge=60, le=60 * 60 * 24, embed=True),
    db: Database = Depends(get_db),
) -> None:
    """Extend a lease; 410 Gone (as Prefect answers) when it expired or was released."""
    async with db.session() as session:
        renewed = await leases.renew(session, lease_id, lease_duration, now_utc())
    if not renewed:
        raise HTTPException(
            status.HTTP_410_GONE, detail=f"Lease {lease_id} not found: it expired or was released."
        )
