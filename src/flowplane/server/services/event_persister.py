"""The event persister: stores every event published on the bus, in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowplane.server.db.session import Database
from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings, BatchWriter
from flowplane.server.store import events as store


class EventPersister(BatchWriter):
    """Writes events and their resource rows; an event already stored (same id) is skipped."""

    name = "event-persister"
    topic = "events"

    def __init__(self, db: Database, bus: EventBus, settings: BatchSettings | None = None) -> None:
        super().__init__(bus, settings or BatchSettings(batch_size=500, window=0.5))
        self.db = db

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        async with self.db.session() as session:
            await store.write_many(session, items)
        return ()
