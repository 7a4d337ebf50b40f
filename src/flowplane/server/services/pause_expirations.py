"""The pause-expiration service: fails the paused flow runs whose pause timed out before anyone resumed them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind
from flowplane.schemas.base import now_utc
from flowplane.schemas.states import StateCreate
from flowplane.server import orchestration
from flowplane.server.db.session import Database
from flowplane.server.store import flow_runs as store

logger = logging.getLogger("flowplane.server.services.pause_expirations")

#: The message of the Failed state an expired pause ends in (Prefect's words for it).
EXPIRED_MESSAGE = "The flow was paused and never resumed."


async def fail_expired_pauses(
    db: Database, now: datetime, bus: Any = None, batch_size: int = 200
) -> int:
    """Move every flow run whose pause timed out by ``now`` to Failed; returns how many.

    Reads first, so an idle server never takes SQLite's write lock. Each failure is
    its own transaction, made only if the run is still in the state that expired (a
    run resumed meanwhile is left alone); its events are published after commit.
    """
    failed = 0
    after = None
    while True:
        async with db.read_session() as session:
            page = await store.paused_runs(session, after, batch_size)
        for run_id, state_id, timeout in page:
            if timeout is None or timeout >= now:
                continue
            if await _fail(db, run_id, state_id, now, bus):
                failed += 1
        if len(page) < batch_size:
            return failed
        after = page[-1][0]


async def _fail(db: Database, run_id: Any, state_id: Any, now: datetime, bus: Any) -> bool:
    async with db.session() as session:
        if await store.lock_state_id(session, run_id) != state_id:
            return False  # resumed (or changed) since it was read
        outcome = await orchestration.set_state(
            session,
            RunKind.FLOW,
            run_id,
            StateCreate(type=StateType.FAILED, message=EXPIRED_MESSAGE),
            force=True,
            now=now,
        )
    if outcome is None:
        return False
    if bus is not None:
        orchestration.publish(bus, [outcome])
    return outcome.written


class PauseExpirations:
    """Every ``interval`` seconds, fails the paused flow runs whose pause timed out."""

    name = "pause-expirations"

    def __init__(
        self,
        db: Database,
        bus: Any = None,
        interval: float = 5.0,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval
        self.clock = clock

    async def run_once(self) -> int:
        """One pass at the clock's current time; returns the number of runs failed."""
        failed = await fail_expired_pauses(self.db, self.clock(), self.bus)
        if failed:
            logger.info("Failed %d flow run(s) whose pause expired", failed)
        return failed

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def flush(self) -> None:
        """Nothing is buffered (tests flush every service before they look)."""

    async def drain(self) -> None:
        """Nothing is buffered: a pause that expires while stopped is failed on the next start."""
