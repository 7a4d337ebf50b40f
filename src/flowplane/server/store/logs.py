"""Queries on log lines: bulk creation and filtered reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas import filters as f
from flowplane.schemas.base import now_utc
from flowplane.schemas.logs import Log, LogCreate
from flowplane.schemas.sorting import LogSort
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import compile_filter, order_by

_LOG = cast(sa.Table, t.Log.__table__)


async def create_many(session: AsyncSession, logs: Sequence[LogCreate]) -> list[Log]:
    """Insert ``logs`` with one multi-row INSERT (split only past the bind-parameter limit).

    Returns:
        The stored log lines, with their ids and creation times.
    """
    if not logs:
        return []
    now = now_utc()
    rows = [
        {**log.model_dump(), "id": uuid.uuid4(), "created": now, "updated": now} for log in logs
    ]
    dialect = dialects.dialect_name(session)
    # RETURNING makes SQLAlchemy send multi-row VALUES, as many rows a statement as fit.
    stmt = (
        sa.insert(_LOG)
        .returning(_LOG.c.id)
        .execution_options(
            insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(rows[0]))
        )
    )
    await session.execute(stmt, rows)
    return [Log.model_validate(row) for row in rows]


async def read_many(
    session: AsyncSession,
    *,
    logs: f.LogFilter | None = None,
    sort: LogSort = LogSort.TIMESTAMP_ASC,
    offset: int = 0,
    limit: int | None = None,
) -> Sequence[t.Log]:
    """Log lines matching ``logs``, in ``sort`` order."""
    where = compile_filter(dialects.dialect_name(session), t.Log, logs)
    stmt = sa.select(t.Log).where(where).order_by(*order_by(sort)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.execute(stmt)).scalars().all()
