"""A base for services that consume a bus topic and write what they receive in batches.

The service collects items until it has ``batch_size`` of them or ``window`` seconds
have passed since the first, then writes them in one call (one transaction). A batch
that fails is split in halves so that one bad item cannot hold back the rest; an item
that fails on its own, or that ``write`` defers (say, because something it refers to
does not exist yet), is parked and retried with a growing delay, and dropped with an
error after ``max_attempts``. ``drain`` writes everything still queued or parked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowplane.server.events.bus import EventBus

logger = logging.getLogger("flowplane.server.services")


@dataclass
class _Pending:
    item: Any
    attempts: int = 0
    due: float = 0.0


@dataclass
class WriterStats:
    """Counters a test or a health check can read."""

    received: int = 0
    batches: int = 0
    written: int = 0
    failures: int = 0
    dropped: int = 0
    deferred: int = 0
    ignored: int = 0


@dataclass
class BatchSettings:
    batch_size: int = 500
    window: float = 0.5
    max_attempts: int = 12
    retry_delay: float = 0.5
    max_retry_delay: float = 30.0
    #: Parked items beyond this many push out the oldest (memory stays bounded).
    max_parked: int = 100_000
    clock: Callable[[], float] = field(default=time.monotonic)


class BatchWriter:
    """Consume ``topic`` and hand batches to :meth:`write`; subclasses implement ``write``."""

    name = "batch-writer"
    topic = "events"

    def __init__(self, bus: EventBus, settings: BatchSettings | None = None) -> None:
        self.settings = settings or BatchSettings()
        # Subscribing here, not in run(), so nothing published before the task starts is missed.
        self.subscription = bus.subscribe(self.topic)
        self.stats = WriterStats()
        self._buffer: list[_Pending] = []
        self._parked: list[_Pending] = []
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None

    # --- to implement ----------------------------------------------------------------

    def accepts(self, item: Any) -> bool:
        """Whether this writer wants ``item`` at all (others are ignored)."""
        return True

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        """Write ``items`` in one transaction; return the ones to retry later."""
        raise NotImplementedError

    # --- the loop ----------------------------------------------------------------------

    @property
    def parked(self) -> int:
        return len(self._parked)

    async def run(self) -> None:
        while True:
            await self._collect()
            self._inflight = asyncio.ensure_future(self.flush())
            # Shielded: a shutdown lets the batch in hand finish; drain() waits for it.
            await asyncio.shield(self._inflight)

    def _take(self, item: Any) -> None:
        self.stats.received += 1
        if self.accepts(item):
            self._buffer.append(_Pending(item))
        else:
            self.stats.ignored += 1

    async def _collect(self) -> None:
        """Fill the buffer: wait for a first item (or a parked one falling due), then a window."""
        settings = self.settings
        while not self._buffer:
            wait = self._next_due()
            if wait is not None and wait <= 0:
                return
            try:
                if wait is None:
                    self._take(await self.subscription.get())
                else:
                    self._take(await asyncio.wait_for(self.subscription.get(), wait))
            except asyncio.TimeoutError:
                return
        deadline = settings.clock() + settings.window
        while len(self._buffer) < settings.batch_size:
            for item in self.subscription.drain_nowait(settings.batch_size - len(self._buffer)):
                self._take(item)
            if len(self._buffer) >= settings.batch_size:
                return
            remaining = deadline - settings.clock()
            if remaining <= 0:
                return
            try:
                self._take(await asyncio.wait_for(self.subscription.get(), remaining))
            except asyncio.TimeoutError:
                return

    def _next_due(self) -> float | None:
        if not self._parked:
            return None
        return min(p.due for p in self._parked) - self.settings.clock()

    async def flush(self, *, retry_parked: bool = False) -> None:
        """Write everything received so far, and the parked items that are due.

        Args:
            retry_parked: retry every parked item now, due or not.
        """
        async with self._lock:
            for item in self.subscription.drain_nowait():
                self._take(item)
            now = self.settings.clock()
            due = [p for p in self._parked if retry_parked or p.due <= now]
            if due:
                self._parked = [p for p in self._parked if not (retry_parked or p.due <= now)]
            pending, self._buffer = self._buffer + due, []
            size = self.settings.batch_size
            for start in range(0, len(pending), size):
                await self._write_batch(pending[start : start + size])

    async def _write_batch(self, batch: list[_Pending]) -> None:
        self.stats.batches += 1
        try:
            deferred = await self.write([p.item for p in batch])
        except Exception:
            self.stats.failures += 1
            if len(batch) > 1:
                middle = len(batch) // 2
                await self._write_batch(batch[:middle])
                await self._write_batch(batch[middle:])
                return
            logger.warning(
                "%s: writing an item failed; it will be retried", self.name, exc_info=True
            )
            self._park(batch[0])
            return
        deferred_ids = {id(item) for item in deferred}
        for pending in batch:
            if id(pending.item) in deferred_ids:
                self.stats.deferred += 1
                self._park(pending)
            else:
                self.stats.written += 1

    def _park(self, pending: _Pending) -> None:
        pending.attempts += 1
        settings = self.settings
        if pending.attempts >= settings.max_attempts:
            self.stats.dropped += 1
            logger.error(
                "%s: giving up on item %s after %d attempts",
                self.name,
                getattr(pending.item, "id", "?"),
                pending.attempts,
            )
            return
        delay = min(settings.retry_delay * 2 ** (pending.attempts - 1), settings.max_retry_delay)
        pending.due = settings.clock() + delay
        self._parked.append(pending)
        if len(self._parked) > settings.max_parked:
            overflow = len(self._parked) - settings.max_parked
            self._parked = self._parked[overflow:]
            self.stats.dropped += overflow
            logger.error(
                "%s: too many items waiting for a retry; dropped the %d oldest", self.name, overflow
            )

    async def drain(self) -> None:
        """Finish the batch in hand, then write everything queued and parked."""
        if self._inflight is not None:
            try:
                await self._inflight
            except Exception:  # flush() handles its own errors; this is belt and braces
                logger.exception("%s: the last batch failed during shutdown", self.name)
        await self.flush(retry_parked=True)
        if self._parked:
            logger.error(
                "%s: %d item(s) could not be written before shutdown and are lost",
                self.name,
                len(self._parked),
            )
        self.subscription.close()
