"""``flowplane flow-run execute ID``: an existing run, executed by a separate real process."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any
from uuid import UUID

from cli_harness import flowplane, one_line_error

FLOW_FILE = textwrap.dedent(
    """
    from flowplane import flow, task, get_run_logger

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def adder(x: int, y: int = 10) -> int:
        total = double(x) + y
        get_run_logger().info("total is %s", total)
        return total

    @flow
    def broken(x: int) -> int:
        raise ValueError(f"no good: {x}")
    """
)


def _client() -> Any:
    from flowplane import get_client

    return get_client(sync_client=True)


def _scheduled_run(flow_name: str, parameters: dict[str, Any]) -> UUID:
    with _client() as client:
        flow_id = client.create_flow_from_name(flow_name)
        run = client.create_flow_run(
            flow_id=flow_id,
            parameters=parameters,
            state={"type": "SCHEDULED", "name": "Scheduled"},
        )
        return UUID(str(run.id))


def _run(run_id: UUID) -> Any:
    with _client() as client:
        return client.read_flow_run(run_id)


def _write_flows(tmp_path: Path) -> str:
    path = tmp_path / "deployed_flows.py"
    path.write_text(FLOW_FILE)
    return str(path)


def test_execute_runs_the_existing_run_with_its_parameters(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("adder", {"x": 4})

    result = flowplane("flow-run", "execute", str(run_id), "--entrypoint", f"{file}:adder")

    assert result.returncode == 0, result.stderr
    assert "total is 18" in result.stderr + result.stdout
    run = _run(run_id)
    assert run.state.type.value == "COMPLETED"
    assert run.run_count == 1
    with _client() as client:
        logs = client.read_logs(log_filter={"flow_run_id": {"any_": [str(run_id)]}})
        task_runs = client.read_task_runs(flow_run_filter={"id": {"any_": [str(run_id)]}})
    assert any("total is 18" in log.message for log in logs)
    assert [t.name.split("-")[0] for t in task_runs] == ["double"]


def test_a_failing_flow_fails_the_run_and_exits_1(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("broken", {"x": 1})

    result = flowplane("flow-run", "execute", str(run_id), "-e", f"{file}:broken")

    assert result.returncode == 1
    run = _run(run_id)
    assert run.state.type.value == "FAILED"
    assert "no good: 1" in run.state.message


def test_stored_parameters_that_do_not_fit_fail_the_run(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("adder", {"x": "not a number"})

    result = flowplane("flow-run", "execute", str(run_id), "-e", f"{file}:adder")

    assert result.returncode == 1
    run = _run(run_id)
    assert run.state.type.value == "FAILED"
    assert "Validation of flow parameters failed" in run.state.message
    assert "x" in run.state.message


def test_a_finished_run_is_not_run_again(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("adder", {"x": 1})
    assert flowplane("flow-run", "execute", str(run_id), "-e", f"{file}:adder").returncode == 0

    line = one_line_error("flow-run", "execute", str(run_id), "-e", f"{file}:adder")

    assert f"Flow run {run_id} was not started: it is Completed" in line
    run = _run(run_id)
    assert run.run_count == 1  # nothing ran the second time
    assert run.state.type.value == "COMPLETED"


def test_a_cancelled_run_is_left_alone(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("adder", {"x": 1})
    with _client() as client:
        client.set_flow_run_state(run_id, {"type": "CANCELLED", "name": "Cancelled"}, force=True)

    line = one_line_error("flow-run", "execute", str(run_id), "-e", f"{file}:adder")

    assert "was not started: it is Cancelled" in line
    assert _run(run_id).state.type.value == "CANCELLED"


def test_errors_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    file = _write_flows(tmp_path)
    run_id = _scheduled_run("adder", {"x": 1})

    assert "belongs to no deployment" in one_line_error("flow-run", "execute", str(run_id))
    assert "'nope' is not a valid flow run id" in one_line_error("flow-run", "execute", "nope")
    missing = "5f0f0f0f-0000-4000-8000-000000000000"
    assert f"Flow run {missing} not found" in one_line_error(
        "flow-run", "execute", missing, "-e", f"{file}:adder"
    )
    assert _run(run_id).state.type.value == "SCHEDULED"


def test_a_flow_that_cannot_be_loaded_crashes_the_run(tmp_path: Path) -> None:
    run_id = _scheduled_run("adder", {"x": 1})

    line = one_line_error("flow-run", "execute", str(run_id), "-e", f"{tmp_path}/gone.py:adder")

    assert "No such file" in line
    run = _run(run_id)
    assert run.state.type.value == "CRASHED"
    assert "Could not load the flow" in run.state.message
