"""Queries on concurrency leases: slots held on limits until the holder releases them or the lease expires.

A lease row records who holds how many slots and until when; its rows in
``concurrency_lease_limit`` name the limits those slots are on. Releasing a lease
(by its holder, or by the expiry service once it lapses) gives its slots back in
the same transaction that deletes it, so a slot is never freed twice nor leaked by
a holder that died.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.concurrency import ConcurrencyLeaseHolder
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store import concurrency as limits

Lease = t.ConcurrencyLease
links = t.concurrency_lease_limit
NO_SYNC = limits.NO_SYNC

#: Leases taken through the v1 API: its clients cannot renew, so they hold until released.
V1_LEASE_SECONDS = 100 * 365 * 24 * 3600.0


async def create(
    session: AsyncSession,
    limit_ids: Iterable[UUID],
    slots: int,
    duration: float,
    now: datetime,
    holder: ConcurrencyLeaseHolder | None = None,
) -> UUID:
    """A lease on ``slots`` of each limit (already taken), expiring ``duration`` seconds from ``now``."""
    lease_id = uuid.uuid4()
    await session.execute(
        sa.insert(Lease).values(
            id=lease_id,
            created=now,
            updated=now,
            expiration=now + timedelta(seconds=duration),
            slots=slots,
            holder_type=holder.type if holder else None,
            holder_id=holder.id if holder else None,
        )
    )
    rows = [{"lease_id": lease_id, "limit_id": limit_id} for limit_id in sorted(set(limit_ids))]
    if rows:
        await session.execute(sa.insert(links), rows)
    return lease_id


async def acquire(
    session: AsyncSession,
    limit_ids: Iterable[UUID],
    slots: int,
    now: datetime,
    *,
    lease_duration: float | None = None,
    hold: bool = True,
    holder: ConcurrencyLeaseHolder | None = None,
) -> UUID | None | limits.Refusal:
    """Take ``slots`` on every limit, or record the refusal.

    Args:
        limit_ids: the active limits to take slots on.
        lease_duration: if given, the slots are held under a new lease of this many seconds.
        hold: whether releasing the lease gives the slots back (rate-limited slots decay instead).
        holder: who holds the lease.

    Returns:
        The new lease's id (``None`` without ``lease_duration``), or a :class:`Refusal`.
    """
    ids = sorted(set(limit_ids))
    if not await limits.take_all(session, ids, slots, now):
        return await limits.deny(session, ids, slots, now)
    if lease_duration is None:
        return None
    return await create(session, ids if hold else [], slots, lease_duration, now, holder)


async def renew(session: AsyncSession, lease_id: UUID, duration: float, now: datetime) -> bool:
    """Push an unexpired lease's expiration to ``duration`` seconds from ``now``; False if it is gone."""
    result = await session.execute(
        sa.update(Lease)
        .where(Lease.id == lease_id, Lease.expiration > now)
        .values(expiration=now + timedelta(seconds=duration), updated=now)
        .execution_options(**NO_SYNC)
    )
    return dialects.rowcount(result) == 1


async def release(
    session: AsyncSession,
    lease_ids: Iterable[UUID],
    now: datetime,
    *,
    expired_only: bool = False,
    record_occupancy: bool = True,
    freed: dict[UUID, int] | None = None,
) -> list[UUID]:
    """Delete leases and give back their slots; returns the ids actually released.

    Args:
        expired_only: release only leases whose expiration is at or before ``now``
            (a lease renewed meanwhile is kept).
        record_occupancy: feed how long the slots were held into each limit's
            occupancy average (not for expired leases: their holders went away).
    """
    ids = sorted(set(lease_ids))
    if not ids:
        return []
    query = sa.select(Lease.id, Lease.slots, Lease.created).where(Lease.id.in_(ids))
    if expired_only:
        query = query.where(Lease.expiration <= now)
    # Lock the leases first (in id order), then links, then limits: see store.concurrency.
    leases = (await session.execute(query.order_by(Lease.id).with_for_update())).all()
    if not leases:
        return []
    held = {row.id: (row.slots, row.created) for row in leases}
    linked = (
        await session.execute(
            sa.delete(links)
            .where(links.c.lease_id.in_(list(held)))
            .returning(links.c.lease_id, links.c.limit_id)
        )
    ).all()
    await session.execute(
        sa.delete(Lease).where(Lease.id.in_(list(held))).execution_options(**NO_SYNC)
    )
    slots_by_limit: dict[UUID, int] = defaultdict(int)
    durations: dict[UUID, list[float]] = defaultdict(list)
    for lease_id, limit_id in linked:
        slots, created = held[lease_id]
        slots_by_limit[limit_id] += slots
        durations[limit_id].append((now - created).total_seconds())
    occupancy = {k: sum(v) / len(v) for k, v in durations.items()} if record_occupancy else None
    await limits.give_back(session, dict(slots_by_limit), now, occupancy_seconds=occupancy)
    if freed is not None:
        for limit_id, slots in slots_by_limit.items():
            freed[limit_id] = freed.get(limit_id, 0) + slots
    return list(held)


async def expired_ids(session: AsyncSession, now: datetime, limit: int = 100) -> list[UUID]:
    """Up to ``limit`` leases whose expiration is at or before ``now``, oldest first."""
    result = await session.execute(
        sa.select(Lease.id).where(Lease.expiration <= now).order_by(Lease.expiration).limit(limit)
    )
    return list(result.scalars().all())


async def exists(session: AsyncSession, lease_id: UUID) -> bool:
    result = await session.execute(sa.select(Lease.id).where(Lease.id == lease_id))
    return result.scalar_one_or_none() is not None


async def task_run_holders(
    session: AsyncSession, limit_ids: Iterable[UUID], now: datetime
) -> dict[UUID, list[UUID]]:
    """Per limit, the task runs holding unexpired leases on it, oldest lease first."""
    ids = list(set(limit_ids))
    holders: dict[UUID, list[UUID]] = {limit_id: [] for limit_id in ids}
    if not ids:
        return holders
    result = await session.execute(
        sa.select(links.c.limit_id, Lease.holder_id)
        .join(Lease, Lease.id == links.c.lease_id)
        .where(
            links.c.limit_id.in_(ids),
            Lease.expiration > now,
            Lease.holder_type == "task_run",
            Lease.holder_id.is_not(None),
        )
        .order_by(Lease.created, Lease.id)
    )
    for limit_id, holder_id in result.all():
        holders[limit_id].append(holder_id)
    return holders


async def held_by_task_run(
    session: AsyncSession, task_run_id: UUID, limit_ids: Iterable[UUID]
) -> list[UUID]:
    """The leases a task run holds on any of the limits."""
    ids = list(set(limit_ids))
    if not ids:
        return []
    result = await session.execute(
        sa.select(Lease.id)
        .join(links, links.c.lease_id == Lease.id)
        .where(
            Lease.holder_type == "task_run",
            Lease.holder_id == task_run_id,
            links.c.limit_id.in_(ids),
        )
        .distinct()
    )
    return list(result.scalars().all())


async def detach_limit(session: AsyncSession, limit_id: UUID) -> None:
    """Forget every lease's slots on a limit (without giving them back); leases left holding nothing are revoked.

    For deleting a limit or resetting its slots: the holders' leases on other limits stay.
    """
    lease_ids = sorted(
        (await session.execute(sa.select(links.c.lease_id).where(links.c.limit_id == limit_id)))
        .scalars()
        .all()
    )
    if not lease_ids:
        return
    await session.execute(
        sa.select(Lease.id).where(Lease.id.in_(lease_ids)).order_by(Lease.id).with_for_update()
    )
    await session.execute(sa.delete(links).where(links.c.limit_id == limit_id))
    still_linked = sa.exists().where(links.c.lease_id == Lease.id)
    await session.execute(
        sa.delete(Lease).where(Lease.id.in_(lease_ids), ~still_linked).execution_options(**NO_SYNC)
    )
