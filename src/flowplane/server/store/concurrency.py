"""Queries on global concurrency limits: CRUD, and the atomic statements that take and give back slots.

Slot counts decay with time (:mod:`flowplane.core.concurrency`). Writes apply the
decay inside the UPDATE itself, from the clock the caller passes in, so that a slot
is taken by one conditional statement (``... WHERE decayed + n <= limit``) and two
clients racing for the last slot cannot both get it. Reads apply it in Python.

Elapsed time comes from the database's own date arithmetic: exact to the
microsecond on PostgreSQL, to the millisecond on SQLite.

Lock order, to keep PostgreSQL free of deadlocks: leases, then lease links, then
limits, and limits one statement at a time in ascending id order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowplane.core import concurrency as cc
from flowplane.schemas.concurrency import (
    ConcurrencyLimitV2,
    ConcurrencyLimitV2Create,
    ConcurrencyLimitV2Update,
    GlobalConcurrencyLimitResponse,
)
from flowplane.server.db import dialects
from flowplane.server.db import tables as t

L = t.ConcurrencyLimit
NO_SYNC = {"synchronize_session": False}


# --- decay in SQL (mirrors flowplane.core.concurrency) -------------------------------------


def _positive(expr: Any) -> ColumnElement[float]:
    return sa.case((expr > 0, expr), else_=sa.literal(0.0, sa.Float))


def _elapsed(dialect: str, now: datetime) -> ColumnElement[float]:
    """Seconds from ``slots_updated`` to ``now``, never negative (core: ``elapsed_seconds``)."""
    now_epoch = sa.literal(now.timestamp(), sa.Float)
    return _positive(
        now_epoch - sa.cast(dialects.epoch_seconds(dialect, L.slots_updated), sa.Float)
    )


def _denied_rate() -> ColumnElement[float]:
    """core: ``denied_decay_rate``."""
    occupancy = sa.case(
        (
            L.avg_slot_occupancy_seconds < cc.MIN_OCCUPANCY_SECONDS,
            sa.literal(cc.MIN_OCCUPANCY_SECONDS, sa.Float),
        ),
        (
            L.avg_slot_occupancy_seconds > cc.MAX_SLOT_WAIT_SECONDS,
            sa.literal(cc.MAX_SLOT_WAIT_SECONDS, sa.Float),
        ),
        else_=L.avg_slot_occupancy_seconds,
    )
    return sa.case(
        (L.slot_decay_per_second > 0, L.slot_decay_per_second),
        else_=sa.literal(1.0, sa.Float) / occupancy,
    )


def decayed_active(dialect: str, now: datetime) -> ColumnElement[float]:
    """``active_slots`` decayed to ``now`` (core: ``decay`` at ``slot_decay_per_second``)."""
    return _positive(L.active_slots - L.slot_decay_per_second * _elapsed(dialect, now))


def decayed_denied(dialect: str, now: datetime) -> ColumnElement[float]:
    """``denied_slots`` decayed to ``now`` (core: ``decay`` at ``denied_decay_rate``)."""
    return _positive(L.denied_slots - _denied_rate() * _elapsed(dialect, now))


def _at_now(dialect: str, now: datetime) -> dict[str, Any]:
    """SET values that bring both counts up to ``now``; every slot write starts from these."""
    return {
        "active_slots": decayed_active(dialect, now),
        "denied_slots": decayed_denied(dialect, now),
        "slots_updated": now,
        "updated": now,
    }


# --- reading ----------------------------------------------------------------------------


def facts(row: t.ConcurrencyLimit) -> cc.LimitFacts:
    """The arithmetic's view of a stored limit."""
    return cc.LimitFacts(
        limit=row.limit,
        active=row.active,
        active_slots=row.active_slots,
        denied_slots=row.denied_slots,
        slot_decay_per_second=row.slot_decay_per_second,
        avg_slot_occupancy_seconds=row.avg_slot_occupancy_seconds,
        slots_updated=row.slots_updated,
        name=row.name,
    )


def _fields(row: t.ConcurrencyLimit, now: datetime) -> dict[str, Any]:
    current = cc.at(facts(row), now)
    return {
        "id": row.id,
        "created": row.created,
        "updated": row.updated,
        "active": row.active,
        "name": row.name,
        "limit": row.limit,
        "active_slots": cc.whole_slots(current.active_slots),
        "denied_slots": cc.whole_slots(current.denied_slots),
        "slot_decay_per_second": row.slot_decay_per_second,
        "avg_slot_occupancy_seconds": row.avg_slot_occupancy_seconds,
    }


def full_view(row: t.ConcurrencyLimit, now: datetime) -> ConcurrencyLimitV2:
    """The limit with every counter, decayed to ``now``."""
    return ConcurrencyLimitV2(**_fields(row, now))


def view(row: t.ConcurrencyLimit, now: datetime) -> GlobalConcurrencyLimitResponse:
    """The limit as reads return it, decayed to ``now``."""
    return GlobalConcurrencyLimitResponse(**_fields(row, now))


def _by(id_or_name: UUID | str) -> ColumnElement[bool]:
    return L.id == id_or_name if isinstance(id_or_name, UUID) else L.name == id_or_name


async def read(session: AsyncSession, id_or_name: UUID | str) -> t.ConcurrencyLimit | None:
    """The limit with this id (a UUID) or name (a string)."""
    stmt = sa.select(L).where(_by(id_or_name)).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def read_by_names(session: AsyncSession, names: Iterable[str]) -> list[t.ConcurrencyLimit]:
    """The limits among ``names`` that exist, ordered by name."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    result = await session.execute(sa.select(L).where(L.name.in_(wanted)).order_by(L.name))
    return list(result.scalars().all())


async def read_many(
    session: AsyncSession,
    *,
    offset: int = 0,
    limit: int | None = None,
    name_prefix: str | None = None,
) -> Sequence[t.ConcurrencyLimit]:
    """Limits ordered by name, optionally only those whose name starts with ``name_prefix``."""
    stmt = sa.select(L).order_by(L.name).offset(offset)
    if name_prefix is not None:
        stmt = stmt.where(L.name.startswith(name_prefix, autoescape=True))
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()


# --- writing the limit ------------------------------------------------------------------


async def create(
    session: AsyncSession, limit: ConcurrencyLimitV2Create, now: datetime
) -> t.ConcurrencyLimit | None:
    """Create the limit; ``None`` if one with that name exists (nothing is written then)."""
    dialect = dialects.dialect_name(session)
    limit_id = uuid.uuid4()
    stmt = (
        dialects.insert(dialect, L)
        .values(
            **limit.model_dump(),
            id=limit_id,
            avg_slot_occupancy_seconds=2.0,
            slots_updated=now,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing(index_elements=[L.name])
    )
    if dialects.rowcount(await session.execute(stmt)) != 1:
        return None
    return await read(session, limit_id)


async def update(
    session: AsyncSession, id_or_name: UUID | str, changes: ConcurrencyLimitV2Update, now: datetime
) -> bool:
    """Apply ``changes``; False if there is no such limit.

    The counts are brought up to ``now`` under the old decay rate first, so changing
    the rate never re-times slots already decaying; explicit counts replace them.
    """
    values: dict[str, Any] = _at_now(dialects.dialect_name(session), now)
    values.update(
        {k: v for k, v in changes.model_dump(exclude_unset=True).items() if v is not None}
    )
    result = await session.execute(
        sa.update(L).where(_by(id_or_name)).values(**values).execution_options(**NO_SYNC)
    )
    return dialects.rowcount(result) > 0


async def delete(session: AsyncSession, limit_id: UUID) -> bool:
    """Delete the limit (its lease links go with it); False if there is none."""
    result = await session.execute(
        sa.delete(L).where(L.id == limit_id).execution_options(**NO_SYNC)
    )
    return dialects.rowcount(result) > 0


# --- slots ------------------------------------------------------------------------------


async def take(session: AsyncSession, limit_id: UUID, slots: int, now: datetime) -> bool:
    """Take ``slots`` on an active limit if they fit, in one conditional UPDATE."""
    dialect = dialects.dialect_name(session)
    active = decayed_active(dialect, now)
    values = _at_now(dialect, now)
    values["active_slots"] = active + slots
    result = await session.execute(
        sa.update(L)
        .where(L.id == limit_id, L.active.is_(True), active + slots <= L.limit + cc.EPSILON)
        .values(**values)
        .execution_options(**NO_SYNC)
    )
    return dialects.rowcount(result) == 1


async def take_all(
    session: AsyncSession, limit_ids: Iterable[UUID], slots: int, now: datetime
) -> bool:
    """Take ``slots`` on every limit, or on none: a refusal rolls back those already taken."""
    ids = sorted(set(limit_ids))
    if not ids:
        return True
    savepoint = await session.begin_nested()
    for limit_id in ids:
        if not await take(session, limit_id, slots, now):
            await savepoint.rollback()
            return False
    await savepoint.commit()
    return True


async def give_back(
    session: AsyncSession,
    slots_by_limit: dict[UUID, int],
    now: datetime,
    *,
    occupancy_seconds: dict[UUID, float] | None = None,
    only_active: bool = False,
) -> None:
    """Give back slots per limit (never below zero), feeding the occupancy average where known."""
    dialect = dialects.dialect_name(session)
    for limit_id in sorted(slots_by_limit):
        values = _at_now(dialect, now)
        remaining = decayed_active(dialect, now) - slots_by_limit[limit_id]
        values["active_slots"] = _positive(remaining)
        seconds = (occupancy_seconds or {}).get(limit_id)
        if seconds is not None:
            sample = max(seconds, cc.MIN_OCCUPANCY_SECONDS)
            weight = sa.case((L.limit < 1, 1), else_=L.limit) * cc.OCCUPANCY_SAMPLES_PER_SLOT
            values["avg_slot_occupancy_seconds"] = L.avg_slot_occupancy_seconds + (
                sa.literal(sample, sa.Float) - L.avg_slot_occupancy_seconds
            ) / sa.cast(weight, sa.Float)
        stmt = sa.update(L).where(L.id == limit_id)
        if only_active:
            stmt = stmt.where(L.active.is_(True))
        await session.execute(stmt.values(**values).execution_options(**NO_SYNC))


@dataclass(frozen=True)
class Refusal:
    """Why slots were refused: the limits that are full (their denied counts updated)."""

    blocking: list[cc.LimitFacts]


async def deny(
    session: AsyncSession, limit_ids: Iterable[UUID], slots: int, now: datetime
) -> Refusal:
    """Record a refused request on the limits that cannot take ``slots``, and return those limits."""
    dialect = dialects.dialect_name(session)
    ids = sorted(set(limit_ids))
    rows = (await session.execute(sa.select(L).where(L.id.in_(ids)))).scalars().all() if ids else []
    full = sorted((r for r in rows if cc.is_blocking(facts(r), slots, now)), key=lambda r: r.id)
    for row in full:
        values = _at_now(dialect, now)
        values["denied_slots"] = decayed_denied(dialect, now) + slots
        await session.execute(
            sa.update(L).where(L.id == row.id).values(**values).execution_options(**NO_SYNC)
        )
    blocking = []
    for row in full:
        current = cc.at(facts(row), now)
        blocking.append(replace(current, denied_slots=current.denied_slots + slots))
    return Refusal(blocking=blocking)


async def reset_slots(
    session: AsyncSession, limit_id: UUID, active_slots: int, now: datetime
) -> None:
    """Set the limit's occupied slots outright (its denied count decays as usual)."""
    values = _at_now(dialects.dialect_name(session), now)
    values["active_slots"] = float(active_slots)
    await session.execute(
        sa.update(L).where(L.id == limit_id).values(**values).execution_options(**NO_SYNC)
    )
