"""An in-process publish/subscribe bus: events and log lines fan out to every subscriber.

Publishing never blocks. Internal services subscribe with unbounded queues so they
see everything; websocket clients subscribe with a bound (and usually a predicate, so
only what they asked for is queued), and a subscriber that falls that far behind is
cut off (its socket is closed) rather than slowing the server. The bus also keeps the
last few items of some topics so that a new subscriber can catch up on what was
published but may not be stored yet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

#: Topics whose most recent items are retained, and how many.
DEFAULT_RETAIN: Mapping[str, int] = {"events": 1000}


class SubscriberOverflow(Exception):
    """A bounded subscriber fell too far behind and was cut off."""


class Subscription:
    """One subscriber's queue on one topic; iterate it to receive items."""

    def __init__(
        self,
        bus: EventBus,
        topic: str,
        maxsize: int,
        predicate: Callable[[Any], bool] | None = None,
    ) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.predicate = predicate
        self.overflowed = False
        self.closed = False

    def offer(self, item: Any) -> None:
        """Queue ``item`` if it passes the predicate; cut the subscriber off when full."""
        if self.closed:
            return
        if self.predicate is not None:
            try:
                if not self.predicate(item):
                    return
            except Exception:  # a broken predicate must not break publishing
                return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    async def get(self) -> Any:
        """The next item; raises :class:`SubscriberOverflow` once cut off and drained."""
        if self.overflowed and self.queue.empty():
            raise SubscriberOverflow(self.topic)
        item = await self.queue.get()
        self._bus._room.set()
        return item

    def get_nowait(self) -> Any:
        """The next item if one is queued; raises ``asyncio.QueueEmpty`` otherwise."""
        item = self.queue.get_nowait()
        self._bus._room.set()
        return item

    def drain_nowait(self, limit: int | None = None) -> list[Any]:
        """Every queued item (at most ``limit``), without waiting."""
        items: list[Any] = []
        while limit is None or len(items) < limit:
            try:
                items.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        if items:
            self._bus._room.set()
        return items

    def pending(self) -> int:
        return self.queue.qsize()

    def close(self) -> None:
        self.closed = True
        self._bus._remove(self)
        self._bus._room.set()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Items an internal subscriber may have queued before ingestion waits (see ``wait_for_room``).
DEFAULT_BACKLOG_LIMIT = 2_000


class EventBus:
    """Topics ("events", "logs") with any number of subscribers each."""

    def __init__(self, retain: Mapping[str, int] | None = None) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        #: Set whenever a subscriber takes items off its queue (wakes ``wait_for_room``).
        self._room = asyncio.Event()
        sizes = DEFAULT_RETAIN if retain is None else retain
        self._recent: dict[str, deque[Any]] = {
            topic: deque(maxlen=n) for topic, n in sizes.items() if n > 0
        }

    def subscribe(
        self,
        topic: str,
        maxsize: int = 0,
        predicate: Callable[[Any], bool] | None = None,
    ) -> Subscription:
        """A new subscription.

        Args:
            topic: the topic to follow.
            maxsize: queue bound; ``0`` means unbounded.
            predicate: only items for which it returns true are queued.
        """
        sub = Subscription(self, topic, maxsize, predicate)
        self._subscribers.setdefault(topic, set()).add(sub)
        return sub

    def publish(self, topic: str, items: list[Any]) -> None:
        """Hand ``items`` to every subscriber of ``topic``, in order, without waiting."""
        recent = self._recent.get(topic)
        if recent is not None:
            recent.extend(items)
        for sub in list(self._subscribers.get(topic, ())):
            for item in items:
                sub.offer(item)

    async def wait_for_room(self, topic: str, limit: int = DEFAULT_BACKLOG_LIMIT) -> None:
        """Wait while an internal (unbounded) subscriber of ``topic`` has ``limit`` items queued.

        Ingestion calls this before publishing, so that producers faster than the services
        that store their items are slowed down (their requests take longer) instead of
        growing the server's memory until items are lost. Bounded subscribers (websocket
        clients) are not waited for: they are cut off when they fall behind.
        """
        while any(
            sub.queue.maxsize == 0 and sub.queue.qsize() >= limit
            for sub in self._subscribers.get(topic, ())
        ):
            self._room.clear()
            await self._room.wait()

    def recent(self, topic: str) -> list[Any]:
        """The last items published on ``topic``, oldest first (empty if not retained)."""
        return list(self._recent.get(topic, ()))

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.get(sub.topic, set()).discard(sub)
