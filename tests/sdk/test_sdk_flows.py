"""Flows: definitions, runs recorded through the API, parameters, states, retries, hooks, timeouts, logs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sdk_support import eventually, task_runs_of

from flowplane import (
    Completed,
    Failed,
    State,
    flow,
    get_run_context,
    get_run_logger,
    tags,
    task,
)
from flowplane.exceptions import ParameterBindError, ParameterTypeError


def states_of(client: Any, flow_run_id: Any) -> list[str]:
    return [s.name for s in client.read_flow_run_states(flow_run_id)]


# --- definitions ---------------------------------------------------------------------------


def test_bare_and_called_decorators_keep_the_function_and_its_name() -> None:
    @flow
    def my_flow(x: int) -> int:
        """Doubles."""
        return x * 2

    @flow(name="custom", version="7", retries=2, retry_delay_seconds=3)
    def other() -> None:
        pass

    assert my_flow.name == "my-flow"
    assert my_flow.fn(2) == 4
    assert my_flow.__doc__ == "Doubles."
    assert my_flow.description == "Doubles."
    assert (other.name, other.version, other.retries, other.retry_delay_seconds) == (
        "custom",
        "7",
        2,
        3,
    )


def test_definitions_are_frozen_and_with_options_returns_a_copy() -> None:
    @flow(name="a", retries=1)
    def f() -> None:
        pass

    with pytest.raises(AttributeError):
        f.name = "b"  # type: ignore[misc]
    g = f.with_options(name="b", timeout_seconds=5)
    assert (f.name, f.timeout_seconds) == ("a", None)
    assert (g.name, g.retries, g.timeout_seconds) == ("b", 1, 5)
    with pytest.raises(TypeError):
        f.with_options(not_an_option=1)


def test_parameter_schema_describes_the_signature() -> None:
    @flow
    def f(x: int, name: str = "world", *, flag: bool = False) -> None:
        pass

    schema = f.parameters
    assert schema["type"] == "object"
    assert schema["required"] == ["x"]
    assert schema["properties"]["x"]["type"] == "integer"
    assert schema["properties"]["name"]["default"] == "world"
    assert [schema["properties"][k]["position"] for k in ("x", "name", "flag")] == [0, 1, 2]


# --- runs ---------------------------------------------------------------------------------


def test_a_flow_run_is_recorded_running_then_completed(client: Any) -> None:
    @flow(flow_run_name="run-{x}")
    def f(x: int) -> int:
        ctx = get_run_context()
        assert ctx.flow_run.name == f"run-{x}"
        return x + 1

    state = f(41, return_state=True)
    assert state.is_completed() and state.result() == 42
    run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "run-41"
    assert run.parameters == {"x": 41}
    assert run.state_type.value == "COMPLETED"
    assert states_of(client, run.id) == ["Running", "Completed"]


def test_parameters_are_validated_and_coerced(client: Any) -> None:
    @flow
    def f(x: int, items: list[int]) -> tuple[int, list[int]]:
        return x, items

    assert f("3", ["1", 2]) == (3, [1, 2])
    with pytest.raises(ParameterTypeError) as info:
        f("three", [1])
    assert "x" in str(info.value) and "integer" in str(info.value)
    with pytest.raises(ParameterBindError) as bind:
        f(1)  # type: ignore[call-arg]
    assert "items" in str(bind.value)
    assert client.count_flow_runs() == 1  # the bad calls created no run


def test_validation_can_be_switched_off() -> None:
    @flow(validate_parameters=False)
    def f(x: int) -> Any:
        return x

    assert f("not an int") == "not an int"


def test_an_exception_fails_the_run_and_is_raised(client: Any) -> None:
    @flow
    def f() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        f()
    state = f(return_state=True)
    assert state.is_failed()
    assert "ValueError: bad input" in (state.message or "")
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.state_name == "Failed"
    logs = client.read_logs({"flow_run_id": {"any_": [str(run.id)]}})
    errors = [line.message for line in logs if line.level >= 40]
    assert any("Traceback" in m and "bad input" in m for m in errors)


def test_returned_failed_task_state_fails_the_flow() -> None:
    @task
    def boom() -> None:
        raise RuntimeError("x")

    @flow
    def f() -> Any:
        return boom(return_state=True)

    state = f(return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError):
        state.result()


def test_returned_futures_decide_the_final_state() -> None:
    @task
    def ok() -> int:
        return 1

    @task
    def bad() -> None:
        raise KeyError("k")

    @flow
    def f() -> Any:
        return [ok.submit(), bad.submit()]

    state = f(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."


def test_a_flow_may_return_a_state_of_its_own() -> None:
    @flow
    def f() -> State[Any]:
        return Failed(message="decided to fail")

    @flow
    def g() -> State[Any]:
        return Completed(message="fine", data=5)

    failed = f(return_state=True)
    assert failed.is_failed() and failed.message == "decided to fail"
    assert g() == 5


def test_flow_retries_wait_for_the_server_scheduled_time(client: Any) -> None:
    attempts: list[float] = []

    @flow(retries=1, retry_delay_seconds=1)
    def f() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return "ok"

    state = f(return_state=True)
    assert state.result() == "ok"
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.5  # the server rounds the delay to whole seconds
    names = states_of(client, state.state_details.flow_run_id)
    assert names == ["Running", "AwaitingRetry", "Retrying", "Completed"]


def test_hooks_run_in_order_with_flow_run_and_state() -> None:
    calls: list[str] = []

    def running(flow: Any, flow_run: Any, state: State[Any]) -> None:
        calls.append(f"running:{state.type.value}")

    def completed(flow: Any, flow_run: Any, state: State[Any]) -> None:
        calls.append(f"completed:{flow.name}:{state.result()}")

    @flow(on_running=[running], on_completion=[completed])
    def f() -> int:
        calls.append("body")
        return 3

    @f.on_completion
    def second(flow: Any, flow_run: Any, state: State[Any]) -> None:
        calls.append(f"second:{flow_run.id == state.state_details.flow_run_id}")

    f()
    assert calls == ["running:RUNNING", "body", "completed:f:3", "second:True"]


def test_failure_hooks_and_a_broken_hook_do_not_change_the_outcome() -> None:
    calls: list[str] = []

    def broken(*_: Any) -> None:
        raise RuntimeError("hook bug")

    def failed(flow: Any, flow_run: Any, state: State[Any]) -> None:
        calls.append(state.name or "")

    @flow(on_failure=[broken, failed], on_completion=[lambda *_: calls.append("completion")])
    def f() -> None:
        raise ValueError("x")

    assert f(return_state=True).is_failed()
    assert calls == ["Failed"]


def test_timeout_ends_a_sync_flow_as_timed_out(client: Any) -> None:
    finished: list[bool] = []

    @flow(timeout_seconds=0.3)
    def slow() -> None:
        time.sleep(2)
        finished.append(True)

    started = time.monotonic()
    state = slow(return_state=True)
    assert state.name == "TimedOut" and state.is_failed()
    time.sleep(max(0.0, started + 2.5 - time.monotonic()))
    assert finished == []  # the body was interrupted, not left running
    assert "timeout of 0.3" in (state.message or "")
    assert client.read_flow_run(state.state_details.flow_run_id).state_name == "TimedOut"


def test_tags_context_applies_to_flow_and_task_runs(client: Any) -> None:
    @task(tags=["own"])
    def t() -> list[str]:
        return sorted(get_run_context().task_run.tags)

    @flow
    def f() -> list[str]:
        with tags("inner"):
            return t()

    with tags("outer") as current:
        assert current == {"outer"}
        state = f(return_state=True)
    assert state.result() == ["inner", "outer", "own"]
    run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.tags == ["outer"]


def test_logs_of_a_fast_flow_are_in_the_api_when_the_call_returns(client: Any) -> None:
    @flow
    def quick() -> None:
        get_run_logger().warning("tiny flow says hi")

    state = quick(return_state=True)
    logs = client.read_logs({"flow_run_id": {"any_": [str(state.state_details.flow_run_id)]}})
    assert "tiny flow says hi" in [line.message for line in logs]


def test_log_prints_turns_print_into_log_lines(
    client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def shout() -> None:
        print("from the task")

    @flow(log_prints=True)
    def f() -> None:
        print("from the flow")
        shout()

    state = f(return_state=True)
    print("after the flow")
    assert "after the flow" in capsys.readouterr().out
    run_id = state.state_details.flow_run_id
    messages = [line.message for line in client.read_logs({"flow_run_id": {"any_": [str(run_id)]}})]
    assert "from the flow" in messages and "from the task" in messages


def test_subflow_is_linked_to_a_parent_task_run(client: Any) -> None:
    @flow
    def child(x: int) -> int:
        return x * 10

    @flow
    def parent() -> int:
        return child(1) + child(2)

    state = parent(return_state=True)
    assert state.result() == 30
    parent_id = state.state_details.flow_run_id
    children = client.read_flow_runs(flow_run_filter={"parent_task_run_id": {"is_null_": False}})
    assert len(children) == 2
    task_runs = task_runs_of(client, parent_id, 2)
    assert {r.id for r in task_runs} == {c.parent_task_run_id for c in children}
    assert sorted(r.name for r in task_runs) == ["child-0", "child-1"]
    assert all(r.state_type.value == "COMPLETED" for r in task_runs)


def test_a_subflow_called_from_a_task_links_to_its_flow_run(client: Any) -> None:
    @flow
    def child() -> str:
        return "deep"

    @task
    def t() -> str:
        return child()

    @flow
    def parent() -> str:
        return t()

    state = parent(return_state=True)
    assert state.result() == "deep"
    child_run = eventually(
        lambda: client.read_flow_runs(flow_run_filter={"parent_task_run_id": {"is_null_": False}})
    )[0]
    parent_task = client.read_task_run(child_run.parent_task_run_id)
    assert parent_task.flow_run_id == state.state_details.flow_run_id


def test_run_context_and_runtime_inside_a_flow() -> None:
    from flowplane import runtime
    from flowplane.runtime import flow_run as runtime_flow_run

    @flow(flow_run_name="ctx-run")
    def f(a: int) -> dict[str, Any]:
        ctx = get_run_context()
        return {
            "id": str(ctx.flow_run.id),
            "runtime_id": runtime.flow_run.id,
            "name": runtime_flow_run.name,
            "params": runtime.flow_run.parameters,
            "flow_name": runtime.flow_run.flow_name,
        }

    out = f(5)
    assert out["id"] == out["runtime_id"]
    assert out["name"] == "ctx-run" and out["params"] == {"a": 5} and out["flow_name"] == "f"
    assert runtime.flow_run.id is None  # no run here


def test_runtime_reads_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowplane import runtime

    monkeypatch.setenv("FLOWPLANE__RUNTIME__FLOW_RUN__NAME", "faked")
    monkeypatch.setenv("FLOWPLANE__RUNTIME__TASK_RUN__TAGS", "a,b")
    monkeypatch.setenv("FLOWPLANE__RUNTIME__DEPLOYMENT__PARAMETERS", '{"k": 1}')
    assert runtime.flow_run.name == "faked"
    assert runtime.task_run.tags == ["a", "b"]
    assert runtime.deployment.parameters == {"k": 1}


def test_get_run_context_outside_a_run_is_an_error() -> None:
    from flowplane.exceptions import MissingContextError

    with pytest.raises(MissingContextError):
        get_run_context()
    with pytest.raises(MissingContextError):
        get_run_logger()
