"""The event persister: stores the events published on the bus, in batches.

Client-orchestrated task-run state events are the exception: the task-run recorder
keeps each as a ``task_run_state`` row, and reads give them back from there (see
:mod:`flowplane.server.store.task_run_events`), so they are not stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings, BatchWriter
from flowplane.server.store import events as store
from flowplane.server.store.task_run_events import is_synthesized


class EventPersister(BatchWriter):
    """Writes events and their resource rows; an event already stored (same id) is skipped."""

    name = "event-persister"
    topic = "events"

    def __init__(self, db: Database, bus: EventBus, settings: BatchSettings | None = None) -> None:
        super().__init__(bus, settings or BatchSettings(batch_size=500, window=0.5))
        self.db = db

    def accepts(self, item: Any) -> bool:
        return not is_synthesized(item)

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        async with self.db.session() as session:
            await store.write_many(session, items)
        return ()
