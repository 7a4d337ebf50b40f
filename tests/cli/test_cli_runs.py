"""``flowplane flow``, ``flow-run`` and ``task-run`` as real subprocesses: tables, JSON, exit codes and one-line errors."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_harness import FLOWPLANE, free_port, ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers


@pytest.fixture
def seeded(flowplane_home: Path) -> dict[str, Any]:
    """Flows, runs in several states, task runs and logs in the test's home database."""
    base = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    with get_client(sync_client=True) as client:
        etl = client.create_flow_from_name("etl")
        other = client.create_flow_from_name("other")
        done = client.create_flow_run(etl, name="done-run")
        client.set_flow_run_state(done.id, {"type": "RUNNING"})
        client.set_flow_run_state(done.id, {"type": "COMPLETED"})
        running = client.create_flow_run(etl, name="running-run")
        client.set_flow_run_state(running.id, {"type": "RUNNING"})
        elsewhere = client.create_flow_run(other, name="other-run")
        task = client.create_task_run(
            flow_run_id=running.id, task_key="etl.extract", dynamic_key="0", name="extract-0"
        )
        client.create_logs(
            [
                {
                    "name": "flowplane",
                    "level": 20,
                    "message": f"step {i}",
                    "timestamp": (base + dt.timedelta(seconds=i)).isoformat(),
                    "flow_run_id": str(done.id),
                }
                for i in range(5)
            ]
        )
    shutdown_embedded_servers()  # the CLI processes open the database themselves
    return {
        "etl": etl,
        "other": other,
        "done": done.id,
        "running": running.id,
        "elsewhere": elsewhere.id,
        "task": task.id,
    }


def test_flow_ls_table_json_and_limit(seeded: dict[str, Any]) -> None:
    table = ok("flow", "ls")
    assert "Flows" in table
    assert "etl" in table and "other" in table and str(seeded["etl"]) in table
    flows = ok_json("flow", "ls")
    assert sorted(f["name"] for f in flows) == ["etl", "other"]
    assert len(ok_json("flow", "ls", "--limit", "1")) == 1


def test_flow_ls_empty_and_bad_output_format() -> None:
    assert ok("flow", "ls").strip() == "No flows found."
    assert ok_json("flow", "ls") == []
    assert "only 'json'" in one_line_error("flow", "ls", "-o", "yaml")


def test_flow_run_ls_filters(seeded: dict[str, Any]) -> None:
    table = ok("flow-run", "ls")
    for key in ("done", "running", "elsewhere"):
        assert str(seeded[key]) in table
    assert "Completed" in table and "Running" in table

    by_flow = ok_json("flow-run", "ls", "--flow-name", "etl")
    assert {r["id"] for r in by_flow} == {str(seeded["done"]), str(seeded["running"])}
    by_state = ok_json("flow-run", "ls", "--state", "completed")
    assert [r["id"] for r in by_state] == [str(seeded["done"])]
    by_type = ok_json("flow-run", "ls", "--state-type", "running", "--state-type", "PENDING")
    assert {r["id"] for r in by_type} == {str(seeded["running"]), str(seeded["elsewhere"])}
    assert len(ok_json("flow-run", "ls", "--limit", "2")) == 2
    assert ok("flow-run", "ls", "--state-type", "FAILED").strip() == "No flow runs found."
    assert "Unknown state type 'SIDEWAYS'" in one_line_error(
        "flow-run", "ls", "--state-type", "sideways"
    )


def test_flow_run_inspect(seeded: dict[str, Any]) -> None:
    assert "done-run" in ok("flow-run", "inspect", str(seeded["done"]))
    run = ok_json("flow-run", "inspect", str(seeded["done"]))
    assert run["id"] == str(seeded["done"]) and run["state"]["type"] == "COMPLETED"
    missing = uuid.uuid4()
    assert (
        one_line_error("flow-run", "inspect", str(missing))
        == f"Error: Flow run {missing} not found."
    )
    assert "not a valid flow run id" in one_line_error("flow-run", "inspect", "not-an-id")


def test_flow_run_logs_head_tail_json(seeded: dict[str, Any]) -> None:
    run = str(seeded["done"])
    lines = ok("flow-run", "logs", run).strip().splitlines()
    assert [line.rsplit(" - ", 1)[1] for line in lines] == [f"step {i}" for i in range(5)]
    assert lines[0].startswith("2024-05-01 12:00:00.000 | INFO    | Flow run 'done-run' - ")
    head = ok("flow-run", "logs", run, "--head", "-n", "2").strip().splitlines()
    assert [line.rsplit(" - ", 1)[1] for line in head] == ["step 0", "step 1"]
    tail = ok("flow-run", "logs", run, "--tail", "--num-logs", "2").strip().splitlines()
    assert [line.rsplit(" - ", 1)[1] for line in tail] == ["step 3", "step 4"]
    newest = ok("flow-run", "logs", run, "--reverse").strip().splitlines()
    assert newest[0].endswith("step 4")
    as_json = ok_json("flow-run", "logs", run)
    assert [line["message"] for line in as_json] == [f"step {i}" for i in range(5)]
    assert ok("flow-run", "logs", str(seeded["running"])).strip() == ""
    assert "not found" in one_line_error("flow-run", "logs", str(uuid.uuid4()))
    assert "not both" in one_line_error("flow-run", "logs", run, "--head", "--tail")


def test_flow_run_delete(seeded: dict[str, Any]) -> None:
    run = str(seeded["elsewhere"])
    assert ok("flow-run", "delete", run).strip() == f"Deleted flow run {run}."
    assert "not found" in one_line_error("flow-run", "inspect", run)
    assert one_line_error("flow-run", "delete", run) == f"Error: Flow run {run} not found."


def test_flow_run_cancel(seeded: dict[str, Any]) -> None:
    running = str(seeded["running"])
    out = ok("flow-run", "cancel", running)
    assert out.strip() in (
        f"Flow run {running} was scheduled for cancellation.",
        f"Flow run {running} was cancelled.",
    )
    state = ok_json("flow-run", "inspect", running)["state"]["type"]
    assert state in ("CANCELLING", "CANCELLED")

    done = str(seeded["done"])
    error = one_line_error("flow-run", "cancel", done)
    assert error.startswith(f"Error: Flow run {done} could not be cancelled: ")
    assert ok_json("flow-run", "inspect", done)["state"]["type"] == "COMPLETED"  # unchanged
    assert "not found" in one_line_error("flow-run", "cancel", str(uuid.uuid4()))


def test_task_run_ls_and_inspect(seeded: dict[str, Any]) -> None:
    table = ok("task-run", "ls")
    assert "Task Runs" in table and str(seeded["task"]) in table and "etl.extract" in table
    runs = ok_json("task-run", "ls")
    assert [r["id"] for r in runs] == [str(seeded["task"])]
    assert ok_json("task-run", "ls", "--state-type", "COMPLETED") == []
    assert "extract-0" in ok("task-run", "inspect", str(seeded["task"]))
    assert ok_json("task-run", "inspect", str(seeded["task"]))["flow_run_id"] == str(
        seeded["running"]
    )
    missing = uuid.uuid4()
    assert (
        one_line_error("task-run", "inspect", str(missing))
        == f"Error: Task run {missing} not found."
    )
    assert "not a valid task run id" in one_line_error("task-run", "inspect", "123")


@pytest.mark.parametrize(
    "command",
    [
        ("flow", "ls"),
        ("flow-run", "ls"),
        ("task-run", "ls"),
        ("flow-run", "inspect", str(uuid.UUID(int=1))),
    ],
)
def test_unreachable_server_is_one_line(command: tuple[str, ...]) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    line = one_line_error(*command, FLOWPLANE_API_URL=url)
    assert line.startswith(f"Error: Cannot reach the flowplane API at {url}")


@pytest.fixture
def served_home(tmp_path: Path) -> Iterator[str]:
    """``flowplane server start`` on a free port with its own home; yields the API URL."""
    home = tmp_path / "server-home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env["FLOWPLANE_HOME"] = str(home)
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def test_commands_against_a_server_process(served_home: str) -> None:
    with get_client(sync_client=True, api_url=served_home) as client:
        flow_id = client.create_flow_from_name("served")
        run = client.create_flow_run(flow_id, name="served-run")
    assert [f["name"] for f in ok_json("flow", "ls", FLOWPLANE_API_URL=served_home)] == ["served"]
    assert "served-run" in ok("flow-run", "ls", FLOWPLANE_API_URL=served_home)
    assert (
        ok_json("flow-run", "inspect", str(run.id), FLOWPLANE_API_URL=served_home)["name"]
        == "served-run"
    )
    assert ok_json("flow", "ls") == []  # the embedded database of this test's home is another one
