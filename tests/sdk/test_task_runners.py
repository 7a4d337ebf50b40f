"""The thread pool's run queue: FIFO runs drained by at most ``max_workers`` threads, cancellation, nesting."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from flowplane import ThreadPoolTaskRunner, as_completed, flow, task, wait
from flowplane.core.states import StateType


def test_map_runs_every_item_once_with_at_most_max_workers_at_a_time() -> None:
    lock = threading.Lock()
    running = 0
    most = 0
    seen: list[int] = []

    @task
    def track(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.002)
        with lock:
            running -= 1
            seen.append(i)
        return i * 2

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def f() -> list[int]:
        return track.map(range(200)).result()

    assert f() == [i * 2 for i in range(200)]
    assert sorted(seen) == list(range(200))
    assert 1 <= most <= 3


def test_runs_start_in_submission_order_on_one_worker() -> None:
    order: list[int] = []

    @task
    def note(i: int) -> None:
        order.append(i)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def f() -> None:
        for i in range(50):
            note.submit(i)

    f()
    assert order == list(range(50))


def test_a_queued_run_can_be_cancelled_before_it_starts() -> None:
    gate = threading.Event()

    @task
    def hold() -> str:
        gate.wait(10)
        return "held"

    @task
    def never() -> str:
        return "ran"

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def f() -> tuple[bool, bool, str, bool]:
        first = hold.submit()
        queued = never.submit()
        cancelled = queued.wrapped_future.cancel()
        gate.set()
        return cancelled, queued.wrapped_future.cancelled(), first.result(), queued.done()

    assert f() == (True, True, "held", True)


def test_runs_submitted_from_inside_mapped_runs_complete() -> None:
    @task
    def leaf(i: int) -> int:
        return i + 100

    @task
    def branch(i: int) -> int:
        return leaf.submit(i).result()

    # (a run waiting on a run queued behind it needs a free thread, as with any pool)
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def f() -> list[int]:
        return branch.map(range(3)).result()

    assert f() == [100, 101, 102]


def test_a_crashing_run_resolves_its_future_with_a_crashed_state() -> None:
    @task
    def interrupt() -> None:
        raise KeyboardInterrupt

    @flow
    def f() -> Any:
        future = interrupt.submit()
        future.wait()
        return future.state.type, future.wrapped_future.exception()

    state_type, exc = f()
    assert state_type is StateType.CRASHED
    assert isinstance(exc, KeyboardInterrupt)


def test_the_runner_works_again_after_being_left() -> None:
    @task
    def one(i: int) -> int:
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def f(n: int) -> list[int]:
        return one.map(range(n)).result()

    assert f(5) == list(range(5))
    assert f(7) == list(range(7))


def test_map_binds_each_item_like_a_call() -> None:
    @task
    def join(a: int, b: str, c: str = "!") -> str:
        return f"{a}{b}{c}"

    @flow
    def f() -> tuple[list[str], list[str], list[str]]:
        every = join.map([1, 2], ["x", "y"], ["?", "."])  # all given: the direct path
        defaulted = join.map([1, 2], b="z")  # c from its default
        by_name = join.map(b=["p", "q"], a=[3, 4], c="-")
        return every.result(), defaulted.result(), by_name.result()

    assert f() == (["1x?", "2y."], ["1z!", "2z!"], ["3p-", "4q-"])


# --- the thread pool's futures (parts made only when someone waits) -------------------------


def test_lazy_future_completes_without_waiters_and_answers_afterwards() -> None:
    import concurrent.futures

    from flowplane.sdk.futures import _LazyFuture

    future = _LazyFuture()
    assert isinstance(future, concurrent.futures.Future)
    assert not future.done() and not future.running()
    assert future.set_running_or_notify_cancel() is True
    future.set_result(41)
    assert future.done() and future.result() == 41 and future.exception() is None
    called: list[Any] = []
    future.add_done_callback(called.append)  # already done: called at once
    assert called == [future]
    done, not_done = concurrent.futures.wait([future], timeout=0)
    assert done == {future} and not not_done


def test_lazy_future_wakes_waiters_callbacks_and_as_completed() -> None:
    import concurrent.futures

    from flowplane.sdk.futures import _LazyFuture

    futures = [_LazyFuture() for _ in range(3)]
    called: list[Any] = []
    futures[0].add_done_callback(called.append)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(futures[1].result(timeout=10)))
    waiter.start()
    order: list[Any] = []
    collector = threading.Thread(
        target=lambda: order.extend(concurrent.futures.as_completed(futures, timeout=10))
    )
    collector.start()
    threading.Event().wait(0.05)
    for i, future in enumerate(futures):
        assert future.set_running_or_notify_cancel()
        if i == 2:
            future.set_exception(ValueError("no"))
        else:
            future.set_result(i)
    waiter.join(10)
    collector.join(10)
    assert called == [futures[0]] and got == [1]
    assert set(order) == set(futures)
    assert isinstance(futures[2].exception(), ValueError)
    with pytest.raises(ValueError):
        futures[2].result()


def test_lazy_future_cancelled_before_it_runs_and_timeouts() -> None:
    import concurrent.futures

    from flowplane.sdk.futures import _LazyFuture

    future = _LazyFuture()
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.01)
    assert future.cancel() and future.cancelled()
    assert future.set_running_or_notify_cancel() is False
    with pytest.raises(concurrent.futures.CancelledError):
        future.result()
    running = _LazyFuture()
    assert running.set_running_or_notify_cancel()
    assert not running.cancel()  # a running future cannot be cancelled
    running.set_result(None)
    with pytest.raises(concurrent.futures.InvalidStateError):
        running.set_result(1)


def test_wait_and_as_completed_over_finished_and_unfinished_futures() -> None:
    import concurrent.futures

    gate = threading.Event()

    @task
    def quick(i: int) -> int:
        return i

    @task
    def slow() -> str:
        gate.wait(10)
        return "slow"

    @flow
    def f() -> tuple[int, int, list[Any], list[Any]]:
        fast = quick.map(range(3))
        fast.wait()
        held = slow.submit()
        done, not_done = wait([*fast, held, fast[0]], timeout=0.05)
        timed_out: list[Any] = []
        try:
            for future in as_completed([*fast, held], timeout=0.05):
                timed_out.append(future.result())
        except concurrent.futures.TimeoutError:
            timed_out.append("timeout")
        gate.set()
        every = [future.result() for future in as_completed([held, *fast])]
        return len(done), len(not_done), timed_out, sorted(every, key=str)

    assert f() == (3, 1, [0, 1, 2, "timeout"], [0, 1, 2, "slow"])


# --- async runs on the pool's threads ------------------------------------------------------


def test_async_mapped_runs_complete_and_tasks_they_leave_behind_are_cancelled() -> None:
    import asyncio

    from flowplane import get_run_context

    cancelled: list[int] = []

    async def linger(i: int) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    @task
    async def spawn(i: int) -> tuple[int, str]:
        asyncio.get_running_loop().create_task(linger(i))  # never awaited: cancelled at the end
        await asyncio.sleep(0)
        return i, get_run_context().task_run.name  # type: ignore[union-attr]

    @task
    async def boom(i: int) -> None:
        raise ValueError(f"bad {i}")

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def f() -> tuple[list[tuple[int, str]], list[Any]]:
        results = spawn.map(range(6)).result()
        failed = boom.map(range(2))
        failed.wait()
        return results, [future.state.type for future in failed]

    results, failed = f()
    assert [i for i, _ in results] == list(range(6))
    assert [name for _, name in results] == [f"spawn-{i}" for i in range(6)]
    assert sorted(cancelled) == list(range(6))
    assert failed == [StateType.FAILED, StateType.FAILED]


def test_a_run_queued_after_the_runner_is_left_is_refused_and_never_runs() -> None:
    import contextvars

    from flowplane.sdk.futures import _LazyFuture

    ran: list[int] = []
    runner = ThreadPoolTaskRunner(max_workers=1)
    with runner:
        queue = runner._runs()  # makes the pool; leaving shuts its executor down
    with pytest.raises(RuntimeError):
        queue.put((_LazyFuture(), contextvars.copy_context(), ran.append, (2,)))
    assert ran == [] and not queue._entries
