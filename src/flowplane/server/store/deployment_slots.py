"""Deployment concurrency limits: whether a run of a deployment may become Pending now.

Counted, not leased: the active runs of the deployment (Pending, Running, Cancelling)
are the slots in use, so a run that ends frees its slot with no bookkeeping. The
deployment's row is locked while counting, so two runs racing for the last slot on
PostgreSQL take turns (SQLite writers are serialized already).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.deployments import SlotDecision, deployment_slot
from flowplane.core.states import StateType
from flowplane.schemas.states import StateCreate, StateDetails
from flowplane.server.db import tables as t

D = t.Deployment
R = t.FlowRun

#: How long an ENQUEUEd run waits before it is offered to workers again (Prefect's default).
SLOT_WAIT = timedelta(seconds=30)
REASON = "Deployment concurrency limit reached."
_ACTIVE = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)


async def gate(
    session: AsyncSession, run: dict[str, Any], now: datetime
) -> tuple[StateCreate, str] | None:
    """The state to put ``run`` in instead of Pending, with the reason; None to let it start."""
    row = (
        await session.execute(
            sa.select(D.concurrency_limit, D.concurrency_options)
            .where(D.id == run["deployment_id"])
            .with_for_update()
        )
    ).first()
    if row is None or row.concurrency_limit is None:
        return None
    active = (
        await session.execute(
            sa.select(sa.func.count())
            .select_from(R)
            .where(
                R.deployment_id == run["deployment_id"],
                R.state_type.in_(_ACTIVE),
                R.id != run["id"],
            )
        )
    ).scalar_one()
    strategy = (row.concurrency_options or {}).get("collision_strategy")
    decision = deployment_slot(row.concurrency_limit, active, strategy)
    if decision is SlotDecision.ACCEPT:
        return None
    if decision is SlotDecision.CANCEL:
        return StateCreate(type=StateType.CANCELLED, name="Cancelled", message=REASON), REASON
    wait = StateCreate(
        type=StateType.SCHEDULED,
        name="AwaitingConcurrencySlot",
        state_details=StateDetails(scheduled_time=now + SLOT_WAIT),
    )
    return wait, REASON
