"""Tasks: runs recorded from events, retries and their delays, timeouts, hooks, names, calls outside flows."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sdk_support import eventually, task_runs_of

from flowplane import State, exponential_backoff, flow, get_run_context, get_run_logger, task
from flowplane.exceptions import ParameterBindError, TaskRunTimeoutError


def task_states(client: Any, task_run_id: Any) -> list[str]:
    return [s.name for s in client.read_task_run_states(task_run_id)]


def test_task_runs_are_recorded_from_events(client: Any) -> None:
    @task
    def add(a: int, b: int = 1) -> int:
        return a + b

    @flow
    def f() -> int:
        return add(add(1), b=5)

    state = f(return_state=True)
    assert state.result() == 7
    runs = task_runs_of(client, state.state_details.flow_run_id, 2)
    assert sorted(r.name for r in runs) == ["add-0", "add-1"]
    assert {r.dynamic_key for r in runs} == {"0", "1"}
    assert all(r.task_key == runs[0].task_key for r in runs)
    first = next(r for r in runs if r.dynamic_key == "0")
    assert task_states(client, first.id) == ["Pending", "Running", "Completed"]
    assert first.run_count == 1 and first.start_time is not None and first.end_time is not None


def test_calling_a_task_outside_a_flow_runs_it(client: Any) -> None:
    @task
    def alone(x: int) -> int:
        return x * 3

    assert alone(2) == 6
    state = alone(3, return_state=True)
    assert state.result() == 9
    from flowplane.sdk.writer import flush_all_writers

    flush_all_writers()
    run = eventually(lambda: client.read_task_runs(task_run_filter={"name": {"any_": ["alone"]}}))
    assert run and run[0].flow_run_id is None


def test_bad_arguments_raise_before_any_run() -> None:
    @task
    def t(x: int) -> int:
        return x

    @flow
    def f() -> None:
        t(1, 2)  # type: ignore[call-arg]

    with pytest.raises(ParameterBindError, match="too many positional"):
        f()


def test_retries_wait_the_configured_delays(client: Any) -> None:
    calls: list[float] = []

    @task(retries=2, retry_delay_seconds=[0.2, 0.4])
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ValueError(f"failure {len(calls)}")
        return "done"

    @flow
    def f() -> str:
        return flaky()

    state = f(return_state=True)
    assert state.result() == "done"
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4
    (run,) = task_runs_of(client, state.state_details.flow_run_id, 1)
    assert run.run_count == 3
    assert task_states(client, run.id) == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_retries_are_used_up_then_the_run_fails(client: Any) -> None:
    @task(retries=1)
    def always() -> None:
        raise RuntimeError("never works")

    captured: list[State[Any]] = []

    @flow
    def f() -> None:
        captured.append(always(return_state=True))

    flow_state = f(return_state=True)
    assert flow_state.is_completed()  # the state was not returned, so the flow is fine
    (task_state,) = captured
    assert task_state.is_failed()
    assert "RuntimeError: never works" in (task_state.message or "")
    (run,) = task_runs_of(client, flow_state.state_details.flow_run_id, 1)
    assert run.id == task_state.state_details.task_run_id
    assert run.run_count == 2 and run.state_name == "Failed"


def test_retry_condition_can_stop_retrying() -> None:
    calls: list[int] = []

    def only_value_errors(task: Any, task_run: Any, state: State[Any]) -> bool:
        return isinstance(state.result(raise_on_failure=False), ValueError)

    @task(retries=5, retry_condition_fn=only_value_errors)
    def t() -> None:
        calls.append(1)
        raise KeyError("not retried")

    @flow
    def f() -> None:
        t()

    assert f(return_state=True).is_failed()
    assert len(calls) == 1


def test_exponential_backoff_and_jitter_settings() -> None:
    @task(retries=4, retry_delay_seconds=exponential_backoff(2), retry_jitter_factor=0.5)
    def t() -> None:
        pass

    assert t.retry_delay_seconds == [2, 4, 8, 16]
    with pytest.raises(ValueError):
        task(retries=-1)(lambda: None)
    with pytest.raises(ValueError):
        task(retry_jitter_factor=-1)(lambda: None)


def test_task_timeout_in_the_main_thread_and_in_a_worker_thread(client: Any) -> None:
    finished: list[str] = []  # bodies that ran to their end (a timed-out one must not)

    @task(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(3)
        finished.append("slow")

    @task(timeout_seconds=0.2)
    def spin() -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            pass
        finished.append("spin")

    @flow
    def f() -> tuple[Any, Any]:
        direct = slow(return_state=True)
        submitted = spin.submit()
        submitted.wait()
        return direct, submitted.state

    started = time.monotonic()
    flow_state = f(return_state=True)
    assert flow_state.is_failed() and flow_state.message == "2/2 states failed."
    direct, submitted = flow_state.result(raise_on_failure=False)
    for state in (direct, submitted):
        assert state.name == "TimedOut"
        assert isinstance(state.result(raise_on_failure=False), TaskRunTimeoutError)
    # Both bodies were interrupted, not abandoned to finish in the background.
    time.sleep(max(0.0, started + 3.5 - time.monotonic()))
    assert finished == []


def test_task_hooks_and_run_names() -> None:
    seen: list[str] = []

    def done(tk: Any, task_run: Any, state: State[Any]) -> None:
        seen.append(f"{tk.name}:{task_run.name}:{state.name}")

    @task(task_run_name="square-{x}", on_completion=[done])
    def square(x: int) -> int:
        return x * x

    @square.on_failure
    def failed(tk: Any, task_run: Any, state: State[Any]) -> None:
        seen.append("failed")

    @task(task_run_name=lambda: "by-callable")
    def named() -> str:
        return get_run_context().task_run.name

    @flow
    def f() -> str:
        square(3)
        return named()

    assert f() == "by-callable"
    assert seen == ["square:square-3:Completed"]


def test_task_logger_lines_carry_the_task_run(client: Any) -> None:
    @task
    def talk() -> Any:
        get_run_logger().info("inside the task")
        return get_run_context().task_run.id

    @flow
    def f() -> Any:
        return talk()

    state = f(return_state=True)
    task_run_id = state.result()
    logs = client.read_logs({"task_run_id": {"any_": [str(task_run_id)]}})
    assert [line.message for line in logs] == ["inside the task"]
    assert logs[0].flow_run_id == state.state_details.flow_run_id


def test_tasks_called_from_threads_get_distinct_dynamic_keys(client: Any) -> None:
    @task
    def t(i: int) -> int:
        return i

    @flow
    def f() -> None:
        ctx_threads = []
        import contextvars

        for i in range(8):
            ctx = contextvars.copy_context()
            th = threading.Thread(target=ctx.run, args=(t, i))
            ctx_threads.append(th)
            th.start()
        for th in ctx_threads:
            th.join()

    state = f(return_state=True)
    runs = task_runs_of(client, state.state_details.flow_run_id, 8)
    assert sorted(int(r.dynamic_key) for r in runs) == list(range(8))
