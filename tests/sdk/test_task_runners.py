"""The thread pool's run queue: FIFO runs drained by at most ``max_workers`` threads, cancellation, nesting."""

from __future__ import annotations

import threading
from typing import Any

from flowplane import ThreadPoolTaskRunner, flow, task
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
