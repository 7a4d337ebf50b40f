"""Workers claiming Scheduled runs from a pool: each run goes to one poller, within the limits.

Only worker-shaped polls claim: those that give ``scheduled_before`` within
:data:`MAX_CLAIM_AHEAD` of now (Prefect's worker sends now + its prefetch). A poll
without it, or looking further ahead, is a preview (``prefect work-pool preview``
uses this same endpoint with no time): it reads the runs and claims nothing.
Claims are an efficiency, not the last line of defence: a run already Pending
cannot be made Pending again, so at most one worker ever starts it.

A poll locks the pool's row (PostgreSQL; SQLite writers are serialized anyway), so
concurrent polls of one pool take turns: each sees the claims of those before it.
A claim marks the run ``claimed_until`` a short lease; the worker then proposes
Pending as usual. If it never does (it died), the lease lapses and the run is
offered again. Claimed runs count against pool and queue concurrency limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core import deployments as rules
from flowplane.core.states import StateType
from flowplane.schemas.flow_runs import FlowRun
from flowplane.server.db import tables as t
from flowplane.server.store import runs
from flowplane.server.store import work_pools as pools
from flowplane.server.store.runs import FLOW_RUNS, execute_count

R = t.FlowRun
Q = t.WorkQueue

#: How long a claimed run is held for its worker before another poll may take it.
CLAIM_LEASE = timedelta(seconds=30)
#: Polls for runs due further ahead than this are previews: they claim nothing.
MAX_CLAIM_AHEAD = timedelta(minutes=5)


@dataclass(frozen=True)
class ClaimedRun:
    work_pool_id: UUID
    work_queue_id: UUID
    flow_run: FlowRun


def _claimable(now: datetime, before: datetime | None, after: datetime | None) -> list:
    clauses = [
        R.state_type == StateType.SCHEDULED.value,
        sa.or_(R.claimed_until.is_(None), R.claimed_until <= now),
    ]
    if before is not None:
        clauses.append(R.next_scheduled_start_time <= before)
    if after is not None:
        clauses.append(R.next_scheduled_start_time >= after)
    return clauses


async def _active_counts(
    session: AsyncSession, queue_ids: list[UUID], now: datetime
) -> dict[UUID, int]:
    stmt = (
        sa.select(R.work_queue_id, sa.func.count(R.id))
        .where(R.work_queue_id.in_(queue_ids), pools.occupying(now))
        .group_by(R.work_queue_id)
    )
    return dict((await session.execute(stmt)).all())  # type: ignore[arg-type]


async def claim_from_pool(
    session: AsyncSession,
    pool: t.WorkPool,
    queue_names: list[str] | None,
    *,
    before: datetime | None,
    after: datetime | None,
    limit: int,
    now: datetime,
) -> list[ClaimedRun]:
    """Claim up to ``limit`` runs from the pool's unpaused queues, highest priority first.

    The caller has locked the pool row (``read_pool(..., lock=True)``) in this transaction.
    """
    claim = before is not None and before <= now + MAX_CLAIM_AHEAD
    stmt = sa.select(Q).where(Q.work_pool_id == pool.id)
    if queue_names:
        stmt = stmt.where(Q.name.in_(queue_names))
    queues = list((await session.execute(stmt.order_by(Q.priority, Q.name))).scalars().all())
    await pools.mark_polled(session, [q.id for q in queues], now)
    if pool.is_paused or not queues:
        return []
    all_queue_ids = list(
        (await session.execute(sa.select(Q.id).where(Q.work_pool_id == pool.id))).scalars()
    )
    active = await _active_counts(session, all_queue_ids, now)
    pool_room = rules.available_slots(pool.concurrency_limit, sum(active.values()))
    remaining = limit
    claimed: list[tuple[UUID, UUID]] = []
    for queue in queues:
        if queue.is_paused:
            continue
        room = [remaining]
        if pool_room is not None:
            room.append(pool_room)
        queue_room = rules.available_slots(queue.concurrency_limit, active.get(queue.id, 0))
        if queue_room is not None:
            room.append(queue_room)
        wanted = min(room)
        if wanted <= 0:
            continue
        ids = list(
            (
                await session.execute(
                    sa.select(R.id)
                    .where(R.work_queue_id == queue.id, *_claimable(now, before, after))
                    .order_by(R.next_scheduled_start_time, R.id)
                    .limit(wanted)
                )
            ).scalars()
        )
        if not ids:
            continue
        if not claim:
            claimed.extend((run_id, queue.id) for run_id in ids)
            remaining -= len(ids)
            if remaining <= 0:
                break
            continue
        # Re-checked in the UPDATE: a run proposed Pending meanwhile is not claimed.
        taken = await execute_count(
            session,
            sa.update(R)
            .where(R.id.in_(ids), *_claimable(now, None, None))
            .values(claimed_until=now + CLAIM_LEASE)
            .execution_options(synchronize_session=False),
        )
        if taken != len(ids):
            ids = list(
                (
                    await session.execute(
                        sa.select(R.id).where(R.id.in_(ids), R.claimed_until == now + CLAIM_LEASE)
                    )
                ).scalars()
            )
        claimed.extend((run_id, queue.id) for run_id in ids)
        remaining -= len(ids)
        if pool_room is not None:
            pool_room -= len(ids)
        if remaining <= 0:
            break
    if not claimed:
        return []
    models = {
        m.id: m
        for m in runs.models_from_rows(
            FLOW_RUNS,
            (
                await session.execute(
                    runs.select_runs(FLOW_RUNS).where(R.id.in_([c[0] for c in claimed]))
                )
            ).all(),
            now,
        )
    }
    return [ClaimedRun(pool.id, queue_id, models[run_id]) for run_id, queue_id in claimed]


async def scheduled_in_queue(
    session: AsyncSession, queue: t.WorkQueue, before: datetime | None, limit: int, now: datetime
) -> list[FlowRun]:
    """A queue's Scheduled runs due by ``before`` (read only: nothing is claimed)."""
    if queue.is_paused:
        return []
    stmt = (
        runs.select_runs(FLOW_RUNS)
        .where(R.work_queue_id == queue.id, R.state_type == StateType.SCHEDULED.value)
        .order_by(R.next_scheduled_start_time, R.id)
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(R.next_scheduled_start_time <= before)
    return runs.models_from_rows(FLOW_RUNS, (await session.execute(stmt)).all(), now)


# --- Pending runs whose worker died ----------------------------------------------------------

W = t.Worker


def _stranded(cutoff: datetime) -> list:
    return [
        R.state_type == StateType.PENDING.value,
        R.state_timestamp <= cutoff,
        sa.or_(R.expected_start_time.is_(None), R.expected_start_time <= cutoff),
        R.work_queue_id.is_not(None),
    ]


async def stranded_pending_runs(
    session: AsyncSession, cutoff: datetime, now: datetime, limit: int
) -> list[UUID]:
    """Pending runs of work pools with no ONLINE worker, Pending (and due) since before ``cutoff``.

    A run a worker claimed is Pending until its process proposes Running, normally
    moments after its scheduled time. One still Pending well after both, in a pool
    where no worker has sent a heartbeat lately, was claimed by a worker that died
    before starting it: nobody is going to run it.
    """
    rows = (
        await session.execute(
            sa.select(R.id, Q.work_pool_id)
            .join(Q, Q.id == R.work_queue_id)
            .where(*_stranded(cutoff))
            .order_by(R.state_timestamp)
            .limit(limit)
        )
    ).all()
    if not rows:
        return []
    pool_ids = {row[1] for row in rows}
    workers = await session.execute(
        sa.select(W.work_pool_id, W.last_heartbeat_time, W.heartbeat_interval_seconds).where(
            W.work_pool_id.in_(pool_ids)
        )
    )
    staffed = {
        pool_id
        for pool_id, last, interval in workers.all()
        if rules.worker_online(last, interval, now)
    }
    return [run_id for run_id, pool_id in rows if pool_id not in staffed]


async def lock_if_stranded(session: AsyncSession, run_id: UUID, cutoff: datetime) -> bool:
    """Lock the run and say whether it is still Pending since before ``cutoff``."""
    row = await session.execute(
        sa.select(R.id).where(R.id == run_id, *_stranded(cutoff)).with_for_update()
    )
    return row.first() is not None
