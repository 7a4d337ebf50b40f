"""Requests waiting for concurrency slots, woken the moment a release frees one.

A refused slot request may ask the server to hold it (``?wait=seconds`` on the
increment endpoints) instead of answering 423 at once. It then queues here, per
limit, oldest first. Whatever gives slots back on this server (a decrement, a
released or expired lease, a reset, a limit raised or deleted) wakes as many
waiters per limit as slots came free, and they try again immediately: a freed slot
goes to a waiting request within one round trip to the database, not after a
client's poll interval. Waiters also re-check on their own every
:data:`RECHECK_SECONDS`, which covers slots freed by another server process on the
same database and slots that free up by decay.

The waiters live on one event loop (the app's): everything here must be called on it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

#: A waiting request re-checks its limits at least this often, woken or not.
RECHECK_SECONDS = 1.0
#: The longest a client may ask the server to hold a refused request.
MAX_WAIT_SECONDS = 30.0
#: Wake everyone waiting on the limit (reset, limit raised, limit deleted).
ALL = 1 << 30


class SlotWaiters:
    """Per limit id, the futures of requests waiting for its slots, oldest first."""

    def __init__(self) -> None:
        self._queues: dict[UUID, deque[asyncio.Future[None]]] = {}

    def subscribe(self, limit_ids: Iterable[UUID]) -> asyncio.Future[None]:
        """A future that resolves when a slot on any of ``limit_ids`` may have come free."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for limit_id in limit_ids:
            self._queues.setdefault(limit_id, deque()).append(future)
        return future

    def unsubscribe(self, future: asyncio.Future[None], limit_ids: Iterable[UUID]) -> None:
        if not future.done():
            future.cancel()
        for limit_id in limit_ids:
            queue = self._queues.get(limit_id)
            if queue is None:
                continue
            try:
                queue.remove(future)
            except ValueError:
                pass
            if not queue:
                del self._queues[limit_id]

    def notify(self, freed: Mapping[UUID, int]) -> None:
        """Wake up to ``freed[limit_id]`` waiters of each limit, oldest first."""
        for limit_id, count in freed.items():
            queue = self._queues.get(limit_id)
            while queue and count > 0:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    count -= 1
            if queue is not None and not queue:
                del self._queues[limit_id]

    def notify_all(self, limit_ids: Iterable[UUID]) -> None:
        self.notify(dict.fromkeys(limit_ids, ALL))

    def waiting(self) -> int:
        """How many (limit, request) pairs are waiting; for tests and metrics."""
        return sum(len(q) for q in self._queues.values())


def waiters_for(app: Any) -> SlotWaiters:
    """The app's waiters, created on first use."""
    waiters = getattr(app.state, "slot_waiters", None)
    if waiters is None:
        waiters = app.state.slot_waiters = SlotWaiters()
    return waiters
