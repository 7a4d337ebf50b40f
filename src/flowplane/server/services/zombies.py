"""Zombie flow runs: record flow-run heartbeats, and mark Running runs whose heartbeats stopped as Crashed.

Two services share the work. The **heartbeat recorder** consumes
``prefect.flow-run.heartbeat`` events from the bus and keeps, per flow run, the time
of its latest heartbeat and when that heartbeat expires (``flow_run.last_heartbeat``
and ``flow_run.heartbeat_expires``): the time it was received plus the larger of the
``after_seconds`` setting and two of the run's own heartbeat intervals (flowplane's
engine puts its interval in the payload; for a client that does not, such as the real
Prefect client, the interval is the gap between its last two heartbeats, and Prefect's
default of 180 s until there are two). The **reaper** finds, with
one indexed query, RUNNING runs whose heartbeat expired and proposes Crashed for each
through :mod:`flowplane.server.orchestration` after locking the run and checking again.

No false positives, by construction: a run that never sent a heartbeat has no expiry
and is never reaped; a run that finished is not RUNNING (and orchestration refuses to
move a terminal run anyway); a heartbeat that arrived between the query and the change
is seen by the locked re-check; a run that entered Running after its last heartbeat
(resumed, retried elsewhere) waits for a heartbeat of its own; and when the reaper
starts, expiries that passed while the server was down are pushed out by one grace
period, because heartbeats sent during the downtime were lost, not missing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind
from flowplane.schemas.base import now_utc
from flowplane.schemas.events import ReceivedEvent
from flowplane.schemas.states import StateCreate
from flowplane.server import orchestration
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings, BatchWriter
from flowplane.server.store import liveness

logger = logging.getLogger("flowplane.server.services.zombies")

HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
FLOW_RUN_PREFIX = "prefect.flow-run."
#: The heartbeat interval assumed when a heartbeat does not state its own (Prefect's default).
ASSUMED_INTERVAL = 180.0
#: Heartbeats that may be missed before a run is a zombie.
MISSED_HEARTBEATS = 2.0
CRASHED_MESSAGE = "Flow run marked as crashed due to missing heartbeats."


def stated_interval(event: ReceivedEvent) -> float | None:
    """The heartbeat interval an event states in its payload (flowplane's engine does)."""
    stated = (event.payload or {}).get("heartbeat_interval_seconds")
    if isinstance(stated, int | float) and not isinstance(stated, bool) and stated > 0:
        return float(stated)
    return None


def flow_run_of(event: ReceivedEvent) -> UUID | None:
    """The flow run a heartbeat event is about, or None if it names none."""
    resource_id = event.resource.get("prefect.resource.id", "")
    if not resource_id.startswith(FLOW_RUN_PREFIX):
        return None
    try:
        return UUID(resource_id[len(FLOW_RUN_PREFIX) :])
    except ValueError:
        return None


def plan_heartbeats(
    events: Sequence[ReceivedEvent],
    stored: Mapping[UUID, datetime],
    after_seconds: float,
) -> list[liveness.Heartbeat]:
    """Each run's latest heartbeat in ``events`` and when it expires.

    The run's interval is the one its heartbeats state; otherwise the gap since its
    previous heartbeat (in this batch, or the stored one); otherwise
    :data:`ASSUMED_INTERVAL`. A run counts as alive until the latest heartbeat's receipt
    plus the larger of ``after_seconds`` and :data:`MISSED_HEARTBEATS` intervals.
    """
    by_run: dict[UUID, list[ReceivedEvent]] = {}
    for event in events:
        run_id = flow_run_of(event)
        if run_id is not None:
            by_run.setdefault(run_id, []).append(event)
    beats = []
    for run_id, mine in by_run.items():
        mine.sort(key=lambda e: e.occurred)
        latest = mine[-1]
        interval = stated_interval(latest)
        if interval is None:
            previous = mine[-2].occurred if len(mine) > 1 else stored.get(run_id)
            gap = (latest.occurred - previous).total_seconds() if previous else 0.0
            interval = gap if gap > 0 else ASSUMED_INTERVAL
        grace = timedelta(seconds=max(after_seconds, MISSED_HEARTBEATS * interval))
        beats.append(liveness.Heartbeat(run_id, latest.occurred, latest.received + grace))
    return beats


class HeartbeatRecorder(BatchWriter):
    """Stores each flow run's latest heartbeat from the bus, in batches."""

    name = "heartbeat-recorder"
    topic = "events"

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        after_seconds: float = 60.0,
        settings: BatchSettings | None = None,
    ) -> None:
        super().__init__(bus, settings or BatchSettings(batch_size=500, window=0.2))
        self.db = db
        self.after_seconds = after_seconds

    def accepts(self, item: Any) -> bool:
        return isinstance(item, ReceivedEvent) and item.event == HEARTBEAT_EVENT

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        named = [(event, run_id) for event in items if (run_id := flow_run_of(event)) is not None]
        if not named:
            return ()
        unstated = {run_id for event, run_id in named if stated_interval(event) is None}
        async with self.db.session() as session:
            # Only heartbeats that do not state their interval need the previous one.
            stored = await liveness.last_heartbeats(session, sorted(unstated))
            beats = plan_heartbeats(items, stored, self.after_seconds)
            await liveness.record_heartbeats(session, beats)
        return ()  # a heartbeat for an unknown run names nothing to keep alive


async def reap_zombies(db: Database, bus: Any, now: datetime, batch_size: int = 200) -> int:
    """Mark Crashed every Running flow run whose heartbeat expired before ``now``; how many."""
    reaped = 0
    while True:
        async with db.read_session() as session:
            candidates = await liveness.zombie_flow_runs(session, now, batch_size)
        if not candidates:
            return reaped
        outcomes = []
        async with db.session() as session:
            for run_id in candidates:
                if not await liveness.lock_if_zombie(session, run_id, now):
                    continue
                proposed = StateCreate(type=StateType.CRASHED, message=CRASHED_MESSAGE)
                outcome = await orchestration.set_state(
                    session, RunKind.FLOW, run_id, proposed, now=now
                )
                if outcome is not None and outcome.written:
                    outcomes.append(outcome)
        orchestration.publish(bus, outcomes)
        reaped += len(outcomes)
        if len(candidates) < batch_size or not outcomes:
            return reaped


class ZombieReaper:
    """Every ``interval`` seconds, marks the Running flow runs whose heartbeats stopped as Crashed."""

    name = "zombie-reaper"

    def __init__(
        self,
        db: Database,
        bus: Any,
        interval: float = 5.0,
        after_seconds: float = 60.0,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.db = db
        self.bus = bus
        self.interval = interval
        self.after = timedelta(seconds=after_seconds)
        self.clock = clock

    async def grant_grace(self) -> int:
        """Push expiries that passed (while no reaper ran) one grace period into the future.

        The period is long enough for a client at Prefect's default heartbeat interval to
        be heard from again: a restart must not turn a slow heartbeat into a crash.
        """
        grace = max(self.after, timedelta(seconds=MISSED_HEARTBEATS * ASSUMED_INTERVAL))
        until = self.clock() + grace
        # Read first: a server (or embedded process) with nothing running never takes
        # SQLite's write lock on start.
        async with self.db.read_session() as session:
            if not await liveness.any_expiring_before(session, until):
                return 0
        async with self.db.session() as session:
            return await liveness.extend_expired_heartbeats(session, until)

    async def run_once(self) -> int:
        """One pass at the clock's current time; returns the number of runs marked Crashed."""
        reaped = await reap_zombies(self.db, self.bus, self.clock())
        if reaped:
            logger.warning("Marked %d flow run(s) Crashed: their heartbeats stopped", reaped)
        return reaped

    async def run(self) -> None:
        await self.grant_grace()
        while True:
            await asyncio.sleep(self.interval)
            await self.run_once()

    async def flush(self) -> None:
        """Nothing is buffered."""

    async def drain(self) -> None:
        """Nothing is buffered."""
