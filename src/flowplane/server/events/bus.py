"""An in-process publish/subscribe bus: events and log lines fan out to every subscriber.

Publishing never blocks. Internal services subscribe with unbounded queues so they
see everything; websocket clients subscribe with a bound, and a subscriber that falls
that far behind is dropped (its socket is closed) rather than slowing the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class SubscriberOverflow(Exception):
    """A bounded subscriber fell too far behind and was cut off."""


class Subscription:
    """One subscriber's queue on one topic; iterate it to receive items."""

    def __init__(self, bus: EventBus, topic: str, maxsize: int) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def offer(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    async def get(self) -> Any:
        if self.overflowed and self.queue.empty():
            raise SubscriberOverflow(self.topic)
        return await self.queue.get()

    def close(self) -> None:
        self._bus._remove(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            yield await self.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Topics ("events", "logs") with any number of subscribers each."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(self, topic: str, maxsize: int = 0) -> Subscription:
        """A new subscription; ``maxsize=0`` means unbounded."""
        sub = Subscription(self, topic, maxsize)
        self._subscribers.setdefault(topic, set()).add(sub)
        return sub

    def publish(self, topic: str, items: list[Any]) -> None:
        """Hand ``items`` to every subscriber of ``topic``, in order, without waiting."""
        for sub in list(self._subscribers.get(topic, ())):
            for item in items:
                sub.offer(item)

    def subscriber_count(self, topic: str) -> int:
        return len(self._subscribers.get(topic, ()))

    def _remove(self, sub: Subscription) -> None:
        self._subscribers.get(sub.topic, set()).discard(sub)
