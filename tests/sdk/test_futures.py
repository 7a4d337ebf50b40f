"""Futures and task runners: submit, map, wait_for, annotations, wait/as_completed, async tasks, process pool."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from sdk_support import task_runs_of

from flowplane import (
    ProcessPoolTaskRunner,
    ThreadPoolTaskRunner,
    allow_failure,
    as_completed,
    flow,
    get_run_logger,
    quote,
    task,
    unmapped,
    wait,
)
from flowplane.exceptions import (
    MappingLengthMismatch,
    MappingMissingIterable,
    UnfinishedRun,
    UpstreamTaskError,
)


@task
def inc(x: int) -> int:
    return x + 1


@task
def explode(x: Any = None) -> None:
    raise ValueError("upstream broke")


@task
def describe(value: Any) -> str:
    return type(value).__name__


def square(x: int) -> int:
    get_run_logger().info("squaring %s in %s", x, os.getpid())
    return x * x


def test_submit_returns_futures_with_ids_states_and_results(client: Any) -> None:
    @flow
    def f() -> Any:
        future = inc.submit(1)
        assert future.task_run_id is not None
        chained = inc.submit(future)  # a future as an argument is resolved to its result
        return future.result(), chained.result(), chained.state.name, future.task_run_id

    state = f(return_state=True)
    one, three, name, first_id = state.result()
    assert (one, three, name) == (2, 3, "Completed")
    runs = task_runs_of(client, state.state_details.flow_run_id, 2)
    second = next(r for r in runs if r.dynamic_key == "1")
    assert [i.id for i in second.task_inputs["x"]] == [first_id]


def test_future_result_of_a_failure_and_timeouts() -> None:
    @task
    def slow() -> int:
        time.sleep(0.5)
        return 1

    @flow
    def f() -> None:
        failing = explode.submit()
        with pytest.raises(ValueError, match="upstream broke"):
            failing.result()
        assert isinstance(failing.result(raise_on_failure=False), ValueError)
        assert failing.state.is_failed()
        pending = slow.submit()
        with pytest.raises(TimeoutError):
            pending.result(timeout=0.01)
        pending.wait(0.01)  # waiting with a timeout never raises
        assert pending.result() == 1

    f()


def test_map_with_unmapped_and_static_arguments(client: Any) -> None:
    @task
    def add(x: int, y: int, extra: list[int]) -> int:
        return x + y + sum(extra)

    @flow
    def f() -> list[int]:
        return add.map([1, 2, 3], [10, 20, 30], unmapped([100])).result()

    state = f(return_state=True)
    assert state.result() == [111, 122, 133]
    runs = task_runs_of(client, state.state_details.flow_run_id, 3)
    assert sorted(r.name for r in runs) == ["add-0", "add-1", "add-2"]


def test_map_argument_errors() -> None:
    @task
    def pair(a: int, b: int) -> int:
        return a + b

    @flow
    def mismatch() -> None:
        pair.map([1, 2], [3])

    @flow
    def nothing() -> None:
        inc.map(1)

    with pytest.raises(MappingLengthMismatch):
        mismatch()
    with pytest.raises(MappingMissingIterable):
        nothing()


def test_map_over_a_future_of_a_list() -> None:
    @task
    def numbers() -> list[int]:
        return [1, 2, 3]

    @flow
    def f() -> list[int]:
        return inc.map(numbers.submit()).result()

    assert f() == [2, 3, 4]


def test_failed_upstream_blocks_downstream_unless_allowed() -> None:
    @flow
    def f() -> tuple[Any, Any]:
        broken = explode.submit()
        blocked = inc.submit(broken)
        allowed = describe.submit(allow_failure(broken))
        blocked.wait()
        with pytest.raises(UpstreamTaskError):
            blocked.result()
        return blocked.state, allowed.result()

    blocked, allowed = f()
    assert blocked.is_pending() and blocked.name == "NotReady"
    assert allowed == "ValueError"
    with pytest.raises(UnfinishedRun):
        blocked.result()


def test_wait_for_orders_runs_and_records_the_dependency(client: Any) -> None:
    order: list[str] = []

    @task
    def first() -> None:
        time.sleep(0.2)
        order.append("first")

    @task
    def second() -> None:
        order.append("second")

    @flow
    def f() -> Any:
        a = first.submit()
        b = second.submit(wait_for=[a])
        b.result()
        return a.task_run_id

    state = f(return_state=True)
    assert order == ["first", "second"]
    runs = task_runs_of(client, state.state_details.flow_run_id, 2)
    second_run = next(r for r in runs if r.name.startswith("second"))
    assert [i.id for i in second_run.task_inputs["wait_for"]] == [state.result()]


def test_quote_passes_values_through_untouched() -> None:
    @flow
    def f() -> str:
        future = inc.submit(1)
        return describe(quote(future))

    assert f() == "PrefectConcurrentFuture"


def test_wait_and_as_completed() -> None:
    @task
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def f() -> tuple[int, int, list[float]]:
        futures = nap.map([0.6, 0.01, 0.2])
        done, not_done = wait(futures, timeout=0.4)
        finished = [fut.result() for fut in as_completed(futures)]
        return len(done), len(not_done), finished

    done, not_done, finished = f()
    assert (done, not_done) == (2, 1)
    assert sorted(finished[:2]) == [0.01, 0.2] and finished[2] == 0.6


def test_thread_pool_size_limits_concurrency() -> None:
    @task
    def nap(i: int) -> None:
        time.sleep(0.2)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def f() -> float:
        started = time.monotonic()
        nap.map(range(4)).wait()
        return time.monotonic() - started

    assert f() >= 0.38


def test_submitted_runs_finish_before_the_flow_does() -> None:
    finished: list[int] = []

    @task
    def late(i: int) -> None:
        time.sleep(0.2)
        finished.append(i)

    @flow
    def f() -> None:
        late.submit(1)
        late.submit(2)

    f()
    assert sorted(finished) == [1, 2]


# --- async --------------------------------------------------------------------------------


async def test_async_tasks_run_concurrently_in_an_async_flow(client: Any) -> None:
    inside = 0
    most_inside = 0

    @task
    async def nap(i: int) -> int:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0.3)
        inside -= 1
        return i

    @flow
    async def f() -> list[int]:
        return list(await asyncio.gather(*(nap(i) for i in range(5))))

    state = await f(return_state=True)
    assert most_inside == 5  # all five were asleep at once, on the flow's loop
    assert state.result() == [0, 1, 2, 3, 4]
    runs = await asyncio.to_thread(task_runs_of, client, state.state_details.flow_run_id, 5)
    assert len(runs) == 5


async def test_sync_tasks_and_futures_inside_an_async_flow() -> None:
    @task
    async def double(x: int) -> int:
        return x * 2

    @flow
    async def f() -> list[int]:
        direct = inc(1)
        submitted = double.submit(2)  # an async task on the thread pool
        awaited = await inc.submit(10)  # awaiting a future does not block the loop
        return [direct, submitted.result(), awaited]

    assert await f() == [2, 4, 11]


async def test_async_subflows_run_concurrently(client: Any) -> None:
    inside = 0
    most_inside = 0

    @flow
    async def child(i: int) -> int:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0.3)
        inside -= 1
        return i

    @flow
    async def parent() -> list[int]:
        return list(await asyncio.gather(child(1), child(2), child(3)))

    assert await parent() == [1, 2, 3]
    assert most_inside == 3  # all three were inside their sleep at once


async def test_async_flow_timeout() -> None:
    @flow(timeout_seconds=0.2)
    async def slow() -> None:
        await asyncio.sleep(5)

    state = await slow(return_state=True)
    assert state.name == "TimedOut"


def test_sync_flow_calling_async_subflow_and_task() -> None:
    @task
    async def atask() -> str:
        return "async task"

    @flow
    async def asub() -> str:
        return await atask()

    @flow
    def f() -> str:
        return asyncio.run(asub())

    assert f() == "async task"


# --- processes ------------------------------------------------------------------------------


@pytest.mark.slow
def test_process_pool_runs_tasks_in_children_and_ships_their_records(client: Any) -> None:
    squared = task(square)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def f() -> list[int]:
        return squared.map([1, 2, 3]).result()

    state = f(return_state=True)
    assert state.result() == [1, 4, 9]
    flow_run_id = state.state_details.flow_run_id
    runs = task_runs_of(client, flow_run_id, 3)
    assert all(r.state_name == "Completed" for r in runs)
    logs = client.read_logs({"flow_run_id": {"any_": [str(flow_run_id)]}})
    child_lines = [line for line in logs if line.message.startswith("squaring")]
    assert len(child_lines) == 3
    assert all(str(os.getpid()) not in line.message for line in child_lines)
    assert {line.task_run_id for line in child_lines} == {r.id for r in runs}
