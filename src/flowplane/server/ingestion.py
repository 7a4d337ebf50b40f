"""Receiving events and log lines: the one path shared by the ``/events`` and ``/logs`` routers and the embedded transport.

Whether a batch arrives over HTTP, a websocket or, embedded, straight from the
process's background writer, it is validated by the same models and goes through
the same steps (backpressure, received time, storage, publication), so the
semantics cannot differ by transport.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from flowplane.schemas.base import now_utc
from flowplane.schemas.events import Event
from flowplane.schemas.logs import LogCreate
from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.store import logs as log_store

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
