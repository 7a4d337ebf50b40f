"""The scheduler service: keeps Scheduled flow runs ahead for every active deployment schedule.

Two loops share one pass function. The full pass walks every unpaused deployment with
an active schedule, in batches of ``batch_size`` deployments (one transaction each), and
tops up each schedule's runs to the horizon (Prefect's min/max runs and min/max
scheduled time). The fast pass, every ``recent_interval`` seconds, does the same for
deployments whose row or schedules changed lately, so a new, updated or resumed
deployment gets runs within seconds instead of at the next full pass.

Changing a deployment's schedules, pausing or deleting it removes its auto-scheduled
runs that have not run (``store.deployments.delete_future_auto_runs``); the next fast
pass creates the right ones. All writes are idempotent (see
:mod:`flowplane.server.store.scheduling`), so two servers on one database, or a pass
racing a redeploy, never make a run twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from flowplane.core.schedules import CatchUp, Horizon
from flowplane.schemas.base import now_utc
from flowplane.server import orchestration
from flowplane.server.db.session import Database
from flowplane.server.store import scheduling

logger = logging.getLogger("flowplane.server.services.scheduler")


class Scheduler:
    """Creates the runs deployments' schedules call for, every ``interval`` seconds."""

    name = "scheduler"

    def __init__(
        self,
        db: Database,
        bus: Any,
        *,
        interval: float = 60.0,
        recent_interval: float = 5.0,
        batch_size: int = 100,
        horizon: Horizon = Horizon(),
        catch_up: scheduling.CatchUpPolicy = scheduling.CatchUpPolicy(),
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval
        self.recent_interval = recent_interval
        self.batch_size = batch_size
        self.horizon = horizon
        self.catch_up = catch_up
        self.clock = clock

    @classmethod
    def from_settings(cls, db: Database, bus: Any, settings: Any) -> Scheduler:
        """The service as the ``FLOWPLANE_SERVER_SERVICES_SCHEDULER_*`` settings describe it."""
        prefix = "server_services_scheduler_"

        def get(name: str) -> Any:
            return getattr(settings, prefix + name)

        return cls(
            db,
            bus,
            interval=get("loop_seconds"),
            recent_interval=get("recent_deployments_loop_seconds"),
            batch_size=get("deployment_batch_size"),
            horizon=Horizon(
                min_runs=get("min_runs"),
                max_runs=get("max_runs"),
                min_time=timedelta(seconds=get("min_scheduled_time")),
                max_time=timedelta(seconds=get("max_scheduled_time")),
            ),
            catch_up=scheduling.CatchUpPolicy(
                policy=CatchUp(get("catch_up")),
                max_missed=get("catch_up_max_runs"),
                late_after=timedelta(seconds=settings.server_services_late_runs_after_seconds),
            ),
        )

    async def run_once(self, changed_since: datetime | None = None) -> int:
        """One pass at the clock's current time; returns the number of runs created.

        Args:
            changed_since: only deployments changed since then (the fast loop).
        """
        now = self.clock()
        created = 0
        after: UUID | None = None
        while True:
            async with self.db.read_session() as session:
                ids = await scheduling.deployments_to_schedule(
                    session, after=after, limit=self.batch_size, changed_since=changed_since
                )
                if not ids:
                    break
                plan = await scheduling.plan_runs(
                    session, ids, now, self.horizon, catch_up_policy=self.catch_up
                )
            if plan.runs:  # only then take the write lock
                async with self.db.session() as session:
                    done = await scheduling.insert_planned(session, plan, now)
                orchestration.publish(self.bus, done.outcomes)
                created += done.created
            if len(ids) < self.batch_size:
                break
            after = ids[-1]
        if created:
            logger.info("Scheduled %d flow run(s)", created)
        return created

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        started = self.clock()
        await self.run_once()
        next_full = loop.time() + self.interval
        while True:
            await asyncio.sleep(min(self.recent_interval, max(0.0, next_full - loop.time())))
            if loop.time() >= next_full:
                started = self.clock()
                await self.run_once()
                next_full = loop.time() + self.interval
            else:
                # A little overlap: a change committed while the last pass ran is not missed.
                since = started - timedelta(seconds=1)
                started = self.clock()
                await self.run_once(changed_since=since)

    async def flush(self) -> None:
        """Nothing is buffered."""

    async def drain(self) -> None:
        """Nothing is buffered."""
