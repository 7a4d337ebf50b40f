"""Queries on recorded states of flow runs and task runs (writing them is orchestration's job)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.transitions import RunKind
from flowplane.schemas.states import State
from flowplane.server.store.runs import tables_for


def state_from_state_row(row: Any) -> State:
    """A state from a row of a state table."""
    return State.model_validate(
        {
            "id": row.id,
            "type": row.type,
            "name": row.name,
            "timestamp": row.timestamp,
            "message": row.message,
            "data": row.data,
            "state_details": row.state_details or {},
        }
    )


async def read_states(session: AsyncSession, kind: RunKind, run_id: UUID) -> list[State]:
    """Every state a run has had, oldest first (an unknown run has none)."""
    spec = tables_for(kind)
    table = spec.state
    stmt = (
        sa.select(table)
        .where(table.c[spec.state_fk] == run_id)
        .order_by(table.c.timestamp, table.c.created)
    )
    return [state_from_state_row(row) for row in (await session.execute(stmt)).all()]


async def read_state(session: AsyncSession, kind: RunKind, state_id: UUID) -> State | None:
    table = tables_for(kind).state
    row = (await session.execute(sa.select(table).where(table.c.id == state_id))).first()
    return None if row is None else state_from_state_row(row)
