"""The batching base: windows, splitting failed batches, parking, bounded retries, drain."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from flowplane.server.events.bus import EventBus
from flowplane.server.services.batching import BatchSettings, BatchWriter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder(BatchWriter):
    name = "test-writer"

    def __init__(self, bus: EventBus, settings: BatchSettings) -> None:
        super().__init__(bus, settings)
        self.calls: list[list[Any]] = []
        self.poison: set[Any] = set()
        self.defer: set[Any] = set()

    def accepts(self, item: Any) -> bool:
        return item != "ignored"

    async def write(self, items: Sequence[Any]) -> Sequence[Any]:
        if self.poison & set(items):
            raise RuntimeError("poisoned batch")
        self.calls.append(list(items))
        return [i for i in items if i in self.defer]

    @property
    def written(self) -> list[Any]:
        return [i for call in self.calls for i in call if i not in self.defer]


def make(
    batch_size: int = 100, window: float = 0.05, max_attempts: int = 3
) -> tuple[EventBus, Recorder, Clock]:
    bus, clock = EventBus(), Clock()
    settings = BatchSettings(
        batch_size=batch_size, window=window, max_attempts=max_attempts, retry_delay=1, clock=clock
    )
    return bus, Recorder(bus, settings), clock


async def test_flush_writes_everything_in_batches_of_batch_size() -> None:
    bus, writer, _ = make(batch_size=4)
    bus.publish("events", list(range(10)) + ["ignored"])
    await writer.flush()
    assert [len(c) for c in writer.calls] == [4, 4, 2]
    assert writer.written == list(range(10))
    assert writer.stats.ignored == 1 and writer.stats.written == 10


async def test_a_poisoned_item_is_isolated_and_the_rest_written() -> None:
    bus, writer, _ = make()
    writer.poison = {7}
    bus.publish("events", list(range(10)))
    await writer.flush()
    assert sorted(writer.written) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert writer.parked == 1
    writer.poison = set()
    await writer.flush(retry_parked=True)
    assert sorted(writer.written) == list(range(10))
    assert writer.parked == 0


async def test_deferred_items_wait_until_due_and_are_dropped_after_max_attempts() -> None:
    bus, writer, clock = make(max_attempts=3)
    writer.defer = {"later"}
    bus.publish("events", ["now", "later"])
    await writer.flush()
    assert writer.parked == 1 and writer.stats.deferred == 1
    calls = len(writer.calls)
    await writer.flush()  # not due yet
    assert len(writer.calls) == calls
    clock.now += 1.5
    await writer.flush()  # due: second attempt, deferred again
    assert len(writer.calls) == calls + 1 and writer.parked == 1
    clock.now += 10
    await writer.flush()  # third attempt: given up
    assert writer.parked == 0 and writer.stats.dropped == 1


async def test_the_run_loop_collects_a_window_then_writes_once() -> None:
    bus, writer, _ = make(window=0.2)
    task = asyncio.ensure_future(writer.run())
    try:
        bus.publish("events", [1])
        await asyncio.sleep(0.05)
        bus.publish("events", [2, 3])
        for _ in range(100):
            if writer.calls:
                break
            await asyncio.sleep(0.02)
        assert writer.calls == [[1, 2, 3]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_run_loop_writes_a_full_batch_without_waiting_for_the_window() -> None:
    bus, writer, _ = make(batch_size=5, window=60)
    task = asyncio.ensure_future(writer.run())
    try:
        bus.publish("events", list(range(5)))
        for _ in range(100):
            if writer.calls:
                break
            await asyncio.sleep(0.01)
        assert writer.calls == [[0, 1, 2, 3, 4]]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_drain_writes_what_is_queued_after_cancellation() -> None:
    bus, writer, _ = make(window=60)
    task = asyncio.ensure_future(writer.run())
    bus.publish("events", [1, 2])
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    bus.publish("events", [3])
    await writer.drain()
    assert sorted(writer.written) == [1, 2, 3]
    assert bus.subscriber_count("events") == 0


async def test_the_number_of_parked_items_is_bounded() -> None:
    bus, clock = EventBus(), Clock()
    writer = Recorder(bus, BatchSettings(max_parked=3, retry_delay=1, clock=clock))
    writer.defer = set(range(5))
    bus.publish("events", list(range(5)))
    await writer.flush()
    assert writer.parked == 3 and writer.stats.dropped == 2
    writer.defer = set()
    await writer.flush(retry_parked=True)
    assert writer.calls[-1] == [2, 3, 4]
