"""Queries for run liveness: overdue scheduled runs, flow-run heartbeats, and runs whose heartbeats stopped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.states import StateType
from flowplane.server.db import tables as t
from flowplane.server.store.runs import execute_count

_RUN = cast(sa.Table, t.FlowRun.__table__)
_SCHEDULED = StateType.SCHEDULED.value
_RUNNING = StateType.RUNNING.value


async def late_flow_runs(
    session: AsyncSession, due_before: datetime, limit: int
) -> list[tuple[UUID, datetime]]:
    """Flow runs in the plain Scheduled state whose start time is at or before ``due_before``.

    Returns (id, scheduled start) pairs, oldest first (index on the scheduled start).
    """
    rows = await session.execute(
        sa.select(_RUN.c.id, _RUN.c.next_scheduled_start_time)
        .where(
            _RUN.c.state_type == _SCHEDULED,
            _RUN.c.next_scheduled_start_time <= due_before,
            # Only plain Scheduled runs: not those already Late, nor AwaitingRetry or
            # AwaitingConcurrencySlot (Prefect's server marks the same ones).
            _RUN.c.state_name == "Scheduled",
        )
        .order_by(_RUN.c.next_scheduled_start_time)
        .limit(limit)
    )
    return [(row[0], row[1]) for row in rows]


@dataclass(frozen=True)
class Heartbeat:
    """One flow run's latest heartbeat in a batch: when it was sent and when it expires."""

    flow_run_id: UUID
    occurred: datetime
    expires: datetime


_RECORD = (
    sa.update(_RUN)
    .where(
        _RUN.c.id == sa.bindparam("run_id"),
        sa.or_(_RUN.c.last_heartbeat.is_(None), _RUN.c.last_heartbeat < sa.bindparam("occurred")),
    )
    .values(last_heartbeat=sa.bindparam("occurred"), heartbeat_expires=sa.bindparam("expires"))
)


async def last_heartbeats(session: AsyncSession, run_ids: Sequence[UUID]) -> dict[UUID, datetime]:
    """The stored last heartbeat of each of ``run_ids`` that has one."""
    if not run_ids:
        return {}
    rows = await session.execute(
        sa.select(_RUN.c.id, _RUN.c.last_heartbeat).where(
            _RUN.c.id.in_(run_ids), _RUN.c.last_heartbeat.is_not(None)
        )
    )
    return {row[0]: row[1] for row in rows}


async def record_heartbeats(session: AsyncSession, beats: Sequence[Heartbeat]) -> None:
    """Store each run's heartbeat unless a later one is stored already (out-of-order safe)."""
    if not beats:
        return
    params = [
        {"run_id": b.flow_run_id, "occurred": b.occurred, "expires": b.expires} for b in beats
    ]
    await session.execute(_RECORD, params)


def _zombie_filter(now: datetime) -> list[Any]:
    """RUNNING runs whose heartbeat expired, and whose current Running state began no
    later than that heartbeat (a run that re-entered Running since, say after a pause,
    waits for a heartbeat of its own)."""
    return [
        _RUN.c.state_type == _RUNNING,
        _RUN.c.heartbeat_expires < now,
        _RUN.c.state_timestamp <= _RUN.c.last_heartbeat,
    ]


async def zombie_flow_runs(session: AsyncSession, now: datetime, limit: int) -> list[UUID]:
    """Running flow runs whose heartbeats stopped (expired before ``now``).

    Runs that never sent a heartbeat have no expiry and are never returned.
    """
    rows = await session.execute(
        sa.select(_RUN.c.id)
        .where(*_zombie_filter(now))
        .order_by(_RUN.c.heartbeat_expires)
        .limit(limit)
    )
    return list(rows.scalars())


async def lock_if_zombie(session: AsyncSession, run_id: UUID, now: datetime) -> bool:
    """Lock the run and say whether it is still a zombie (a heartbeat may have arrived since)."""
    row = await session.execute(
        sa.select(_RUN.c.id)
        .where(_RUN.c.id == run_id, *_zombie_filter(now))
        .with_for_update(of=_RUN)
    )
    return row.first() is not None


async def any_expiring_before(session: AsyncSession, until: datetime) -> bool:
    """Whether a running run's heartbeat expires before ``until`` (a read, to skip a write)."""
    row = await session.execute(
        sa.select(_RUN.c.id)
        .where(_RUN.c.state_type == _RUNNING, _RUN.c.heartbeat_expires < until)
        .limit(1)
    )
    return row.first() is not None


async def extend_expired_heartbeats(session: AsyncSession, until: datetime) -> int:
    """Give running runs whose heartbeats look expired until ``until`` to send another.

    Used when the reaper starts: heartbeats sent while the server was down were lost,
    so an expiry that passed during the downtime proves nothing.
    """
    return await execute_count(
        session,
        sa.update(_RUN)
        .where(_RUN.c.state_type == _RUNNING, _RUN.c.heartbeat_expires < until)
        .values(heartbeat_expires=until),
    )
