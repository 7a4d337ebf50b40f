"""The late-runs service: marks scheduled flow runs that did not start on time as Late.

A flow run is late when it is still in the plain Scheduled state (not AwaitingRetry or
AwaitingConcurrencySlot, not already Late) more than ``after_seconds`` past its
scheduled start. Each pass reads the candidates with one
indexed query (a read, so an idle SQLite server never takes the write lock), then
proposes ``Late`` (type SCHEDULED, keeping the scheduled time) for a batch of them in one
transaction through :mod:`flowplane.server.orchestration`, which refuses the change for
any run that started or was cancelled in the meantime.
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
from flowplane.server.store import liveness

logger = logging.getLogger("flowplane.server.services.late_runs")


async def mark_late_runs(
    db: Database, bus: Any, now: datetime, after: timedelta, batch_size: int = 400
) -> int:
    """Mark every flow run overdue by more than ``after`` at ``now`` as Late; returns how many."""
    marked = 0
    while True:
        async with db.read_session() as session:
            late = await liveness.late_flow_runs(session, now - after, batch_size)
        if not late:
            return marked
        outcomes = []
        async with db.session() as session:
            for run_id, scheduled in late:
                proposed = StateCreate(
                    type=StateType.SCHEDULED,
                    name="Late",
                    state_details=StateDetails(scheduled_time=scheduled),
                )
                outcome = await orchestration.set_state(
                    session, RunKind.FLOW, run_id, proposed, now=now
                )
                if outcome is not None and outcome.written:
                    outcomes.append(outcome)
        orchestration.publish(bus, outcomes)
        marked += len(outcomes)
        # A batch where nothing could be marked would be read again: stop instead.
        if len(late) < batch_size or not outcomes:
            return marked


class LateRuns:
    """Every ``interval`` seconds, marks the flow runs more than ``after_seconds`` late as Late."""

    name = "late-runs"

    def __init__(
        self,
        db: Database,
        bus: Any,
        interval: float = 5.0,
        after_seconds: float = 15.0,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval
        self.after = timedelta(seconds=after_seconds)
        self.clock = clock

    async def run_once(self) -> int:
        """One pass at the clock's current time; returns the number of runs marked Late."""
        marked = await mark_late_runs(self.db, self.bus, self.clock(), self.after)
        if marked:
            logger.info("Marked %d flow run(s) as Late", marked)
        return marked

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        """Nothing is buffered."""

    async def drain(self) -> None:
        """Nothing is buffered."""
