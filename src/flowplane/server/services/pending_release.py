"""Releasing Pending runs whose worker died: back to Scheduled, for another worker to pick up.

A worker claims a run by moving it to Pending, then starts its process, which moves
it to Running. If the worker dies in between (killed, its machine lost), the run
would stay Pending forever: no worker offers Pending runs. The rule: a flow run that
has been Pending for more than ``after_seconds`` — counted from the later of entering
Pending and its scheduled start, since a worker may claim runs ahead of time — in a
work pool where no worker is ONLINE (no heartbeat within three of its intervals) is
proposed ``Scheduled`` for now, through orchestration, so the next poll of any
worker takes it. Each candidate is locked and checked again before the change, so a
run whose process started meanwhile is left alone.

Limitation: workers do not say which runs they claimed (Prefect's API carries no
worker on a flow run), so while any worker of the pool is alive, a dead worker's
Pending runs wait until the pool has no live worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind
from flowplane.schemas.base import now_utc
from flowplane.schemas.states import StateCreate, StateDetails
from flowplane.server import orchestration
from flowplane.server.db.session import Database
from flowplane.server.store import claims

logger = logging.getLogger("flowplane.server.services.pending_release")

RELEASED_MESSAGE = "Released: its worker stopped before starting it."


async def release_stranded_runs(
    db: Database, bus: Any, now: datetime, after: timedelta, batch_size: int = 200
) -> int:
    """Move every stranded Pending run (see the module docstring) back to Scheduled; how many."""
    cutoff = now - after
    released = 0
    while True:
        async with db.read_session() as session:
            candidates = await claims.stranded_pending_runs(session, cutoff, now, batch_size)
        if not candidates:
            return released
        outcomes = []
        async with db.session() as session:
            for run_id in candidates:
                if not await claims.lock_if_stranded(session, run_id, cutoff):
                    continue
                proposed = StateCreate(
                    type=StateType.SCHEDULED,
                    name="Scheduled",
                    message=RELEASED_MESSAGE,
                    state_details=StateDetails(scheduled_time=now),
                )
                outcome = await orchestration.set_state(
                    session, RunKind.FLOW, run_id, proposed, now=now
                )
                if outcome is not None and outcome.written:
                    outcomes.append(outcome)
        orchestration.publish(bus, outcomes)
        released += len(outcomes)
        if len(candidates) < batch_size or not outcomes:
            return released


class PendingRelease:
    """Every ``interval`` seconds, gives stranded Pending runs back to their pool."""

    name = "pending-release"

    def __init__(
        self,
        db: Database,
        bus: Any,
        interval: float = 10.0,
        after_seconds: float = 60.0,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval
        self.after = timedelta(seconds=after_seconds)
        self.clock = clock

    async def run_once(self) -> int:
        """One pass at the clock's current time; returns the number of runs released."""
        released = await release_stranded_runs(self.db, self.bus, self.clock(), self.after)
        if released:
            logger.warning("Released %d Pending flow run(s) whose worker is gone", released)
        return released

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.run_once()

    async def flush(self) -> None:
        """Nothing is buffered."""

    async def drain(self) -> None:
        """Nothing is buffered."""
