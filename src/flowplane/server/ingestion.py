"""Receiving events and log lines: the one path shared by the ``/events`` and ``/logs`` routers and the embedded transport.

Whether a batch arrives over HTTP, a websocket or, embedded, straight from the
process's background writer, it is validated by the same models and goes through
the same steps (backpressure, received time, storage, publication), so the
semantics cannot differ by transport.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import exc as sa_exc

from flowplane.schemas.base import now_utc
from flowplane.schemas.events import Event
from flowplane.schemas.logs import LogCreate
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services import task_run_recorder
from flowplane.server.store import logs as log_store
from flowplane.server.store import task_run_changes

logger = logging.getLogger("flowplane.server.ingestion")

#: Validates a parsed ``POST /events`` body (what FastAPI does for the router's ``list[Event]``).
EVENTS = TypeAdapter(list[Event])
#: Validates a parsed ``POST /logs/`` body.
LOGS = TypeAdapter(list[LogCreate])


async def ingest_events(bus: EventBus, events: list[Event]) -> None:
    """Publish received ``events`` once the services storing them have room (they are stored
    and acted on in the background)."""
    await bus.wait_for_room("events")
    received = now_utc()
    bus.publish("events", [event.receive(received) for event in events])


async def ingest_logs(db: Database, bus: EventBus, logs: list[LogCreate]) -> None:
    """Store ``logs`` (all or none), then hand them to live subscribers."""
    async with db.session() as session:
        stored = await log_store.create_many(session, logs)
    bus.publish("logs", stored)


def validate(kind: str, body: Any) -> list[Any]:
    """A parsed request body of ``kind`` ("events" or "logs") as the route's models.

    Raises:
        pydantic.ValidationError: the body is not what the route accepts.
    """
    return (EVENTS if kind == "events" else LOGS).validate_python(body)


async def ingest(app: Any, kind: str, items: list[Any]) -> None:
    """Ingest validated ``items`` of ``kind`` for ``app``, as its router would."""
    state = app.state
    if kind == "events":
        await ingest_events(state.bus, items)
    else:
        await ingest_logs(state.db, state.bus, items)


async def record_task_run_changes(app: Any, changes: Sequence[TaskRunChange]) -> None:
    """Record task-run state changes handed over in process (embedded mode).

    New runs are inserted and open ones continued in bulk; runs stored otherwise (their
    natural key is taken, or they finished already) go through the task-run recorder's
    general path, as their events would. Changes of a flow run that no longer exists are
    dropped, with a warning.
    """
    db = app.state.db
    open_runs: set[Any] | None = getattr(app.state, "open_task_runs", None)
    if open_runs is None:
        open_runs = app.state.open_task_runs = set()
    try:
        async with db.session() as session:
            recorded = await task_run_changes.record_changes(session, changes, open_runs)
            if recorded.rest:
                await task_run_recorder.record_task_runs(
                    session, [task_run_recorder.record_from_change(c) for c in recorded.rest]
                )
        recorded.apply(open_runs)
        return
    except sa_exc.IntegrityError:  # a flow run named is gone: sort them out one by one
        pass
    records = [task_run_recorder.record_from_change(c) for c in changes]
    async with db.session() as session:
        ready, missing = await task_run_recorder.split_by_flow_run(session, records)
        await task_run_recorder.record_task_runs(session, ready)
    open_runs.difference_update(c.id.int for c in changes)  # the recorder has them now
    if missing:
        logger.warning(
            "Dropped %d task-run state changes whose flow run no longer exists", len(missing)
        )
