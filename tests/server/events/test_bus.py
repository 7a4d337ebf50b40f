"""The in-process bus: fan-out, predicates, bounds and the retained recent items."""

from __future__ import annotations

import asyncio

import pytest

from flowplane.server.events.bus import EventBus, SubscriberOverflow


async def test_every_subscriber_gets_every_item_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe("events"), bus.subscribe("events")
    bus.publish("events", [1, 2, 3])
    assert a.drain_nowait() == [1, 2, 3]
    assert [await b.get(), await b.get(), await b.get()] == [1, 2, 3]


async def test_topics_are_separate_and_closing_unsubscribes() -> None:
    bus = EventBus()
    logs = bus.subscribe("logs")
    with bus.subscribe("events") as events:
        bus.publish("events", ["e"])
        assert bus.subscriber_count("events") == 1
    assert bus.subscriber_count("events") == 0
    bus.publish("events", ["later"])
    assert events.drain_nowait() == ["e"]
    assert logs.pending() == 0


async def test_predicate_filters_before_queueing() -> None:
    bus = EventBus()
    evens = bus.subscribe("events", predicate=lambda n: n % 2 == 0)
    broken = bus.subscribe("events", predicate=lambda n: 1 / 0)
    bus.publish("events", [1, 2, 3, 4])
    assert evens.drain_nowait() == [2, 4]
    assert broken.pending() == 0


async def test_a_bounded_subscriber_is_cut_off_when_full() -> None:
    bus = EventBus()
    slow = bus.subscribe("events", maxsize=2)
    bus.publish("events", [1, 2, 3])
    assert slow.overflowed
    assert bus.subscriber_count("events") == 0
    assert [await slow.get(), await slow.get()] == [1, 2]
    with pytest.raises(SubscriberOverflow):
        await slow.get()


async def test_unbounded_subscribers_never_overflow() -> None:
    bus = EventBus()
    sub = bus.subscribe("events")
    bus.publish("events", list(range(50_000)))
    assert sub.pending() == 50_000 and not sub.overflowed


async def test_recent_items_are_retained_per_topic() -> None:
    bus = EventBus(retain={"events": 3})
    bus.publish("events", [1, 2])
    bus.publish("events", [3, 4])
    bus.publish("logs", ["x"])
    assert bus.recent("events") == [2, 3, 4]
    assert bus.recent("logs") == []


async def test_get_waits_for_a_publish() -> None:
    bus = EventBus()
    sub = bus.subscribe("events")
    waiter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish("events", ["hello"])
    assert await asyncio.wait_for(waiter, 1) == "hello"


async def test_ingestion_waits_while_an_internal_subscriber_is_behind() -> None:
    import asyncio

    from flowplane.server.events.bus import EventBus

    bus = EventBus()
    internal = bus.subscribe("events")  # unbounded: a service that must see everything
    bus.subscribe("events", maxsize=5)  # a websocket client: never waited for
    bus.publish("events", list(range(10)))
    waiter = asyncio.create_task(bus.wait_for_room("events", limit=10))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # ten queued, limit ten: ingestion holds back
    internal.drain_nowait(limit=1)
    await asyncio.wait_for(waiter, timeout=1)  # nine queued: room again
    await asyncio.wait_for(bus.wait_for_room("other-topic", limit=1), timeout=1)
