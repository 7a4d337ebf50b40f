"""``flowplane work-pool``, ``work-queue`` and ``deployment`` as real subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_harness import flowplane, ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers


@pytest.fixture
def deployed(flowplane_home: Path) -> dict[str, Any]:
    """A process pool and a deployment of flow 'etl' in it, in the test's home database."""
    with get_client(sync_client=True) as client:
        client.create_work_pool({"name": "pool", "type": "process"})
        flow_id = client.create_flow_from_name("etl")
        dep_id = client.create_deployment(
            flow_id,
            "nightly",
            work_pool_name="pool",
            parameters={"n": 1},
            parameter_openapi_schema={"type": "object", "properties": {"n": {"type": "integer"}}},
            schedules=[{"schedule": {"cron": "0 3 * * *", "timezone": "Europe/Berlin"}}],
        )
    shutdown_embedded_servers()
    return {"flow": flow_id, "deployment": str(dep_id)}


def test_work_pool_lifecycle(flowplane_home: Path, tmp_path: Path) -> None:
    out = ok("work-pool", "create", "p1", "--type", "process", "--concurrency-limit", "3")
    assert "Created work pool 'p1'" in out
    listed = ok_json("work-pool", "ls")
    assert [(p["name"], p["type"], p["concurrency_limit"]) for p in listed] == [
        ("p1", "process", 3)
    ]
    pool = ok_json("work-pool", "inspect", "p1")
    assert "command" in pool["base_job_template"]["job_configuration"]
    assert "p1" in ok("work-pool", "ls")

    assert "already exists" in one_line_error("work-pool", "create", "p1")
    ok("work-pool", "create", "p1", "--concurrency-limit", "5", "--overwrite")
    assert ok_json("work-pool", "inspect", "p1")["concurrency_limit"] == 5

    template = tmp_path / "t.json"
    template.write_text(
        json.dumps({"job_configuration": {"x": "{{ y }}"}, "variables": {"properties": {}}})
    )
    assert "undeclared variable(s): y" in one_line_error(
        "work-pool", "update", "p1", "--base-job-template", str(template)
    )
    template.write_text("{not json")
    assert "not valid JSON" in one_line_error(
        "work-pool", "create", "p2", "--base-job-template", str(template)
    )
    assert "Nothing to change" in one_line_error("work-pool", "update", "p1")
    ok("work-pool", "update", "p1", "--concurrency-limit", "1")
    assert ok_json("work-pool", "inspect", "p1")["concurrency_limit"] == 1

    ok("work-pool", "pause", "p1")
    assert ok_json("work-pool", "inspect", "p1")["status"] == "PAUSED"
    ok("work-pool", "resume", "p1")
    assert ok_json("work-pool", "inspect", "p1")["is_paused"] is False
    assert ok_json("work-pool", "preview", "p1") == []

    assert "not found" in one_line_error("work-pool", "inspect", "nope")
    assert "--yes" in one_line_error("work-pool", "delete", "p1")
    ok("work-pool", "delete", "p1", "--yes")
    assert ok_json("work-pool", "ls") == []


def test_work_queue_lifecycle(flowplane_home: Path) -> None:
    ok("work-pool", "create", "p")
    ok("work-queue", "create", "fast", "--pool", "p", "--priority", "1", "--limit", "2")
    queues = ok_json("work-queue", "ls", "--pool", "p")
    assert [(q["name"], q["priority"], q["concurrency_limit"]) for q in queues] == [
        ("fast", 1, 2),
        ("default", 2, None),
    ]
    assert ok_json("work-queue", "inspect", "fast", "--pool", "p")["work_pool_name"] == "p"
    assert "already exists" in one_line_error("work-queue", "create", "fast", "--pool", "p")
    assert "not found" in one_line_error("work-queue", "create", "x", "--pool", "nope")
    ok("work-queue", "update", "fast", "--pool", "p", "--limit", "7")
    assert ok_json("work-queue", "inspect", "fast", "--pool", "p")["concurrency_limit"] == 7
    ok("work-queue", "pause", "fast", "--pool", "p")
    assert ok_json("work-queue", "inspect", "fast", "--pool", "p")["is_paused"] is True
    ok("work-queue", "resume", "fast", "--pool", "p")
    assert ok_json("work-queue", "preview", "fast", "--pool", "p") == []
    assert "default queue" in one_line_error(
        "work-queue", "delete", "default", "--pool", "p", "--yes"
    )
    ok("work-queue", "delete", "fast", "--pool", "p", "--yes")
    assert "not found" in one_line_error("work-queue", "inspect", "fast", "--pool", "p")
    # Without --pool, queues go to the default agent pool.
    ok("work-queue", "create", "legacy")
    assert ok_json("work-queue", "inspect", "legacy")["work_pool_name"] == "default-agent-pool"


def test_deployment_ls_inspect_pause_resume_delete(deployed: dict[str, Any]) -> None:
    listed = ok_json("deployment", "ls")
    assert [d["name"] for d in listed] == ["nightly"]
    table = ok("deployment", "ls")
    assert "etl/nightly" in table and "pool" in table and "0 3 * * *" in table
    by_name = ok_json("deployment", "inspect", "etl/nightly")
    assert by_name["id"] == deployed["deployment"]
    assert ok_json("deployment", "inspect", deployed["deployment"])["name"] == "nightly"
    assert "not found" in one_line_error("deployment", "inspect", "etl/none")
    assert "neither" in one_line_error("deployment", "inspect", "garbage")
    ok("deployment", "pause", "etl/nightly")
    assert ok_json("deployment", "inspect", "etl/nightly")["paused"] is True
    ok("deployment", "resume", "etl/nightly")
    assert ok_json("deployment", "inspect", "etl/nightly")["paused"] is False
    assert "--yes" in one_line_error("deployment", "delete", "etl/nightly")
    ok("deployment", "delete", "etl/nightly", "--yes")
    assert ok_json("deployment", "ls") == []


def test_deployment_run_with_params(deployed: dict[str, Any]) -> None:
    run = ok_json("deployment", "run", "etl/nightly", "--param", "n=5", "--tag", "cli")
    assert run["parameters"] == {"n": 5} and run["tags"] == ["cli"]
    assert run["deployment_id"] == deployed["deployment"] and run["work_pool_name"] == "pool"
    assert run["state"]["type"] == "SCHEDULED"
    out = ok("deployment", "run", "etl/nightly")
    assert "Created flow run" in out and "work pool 'pool'" in out
    line = one_line_error("deployment", "run", "etl/nightly", "--param", "n=lots")
    assert "'n'" in line
    assert "key=value" in one_line_error("deployment", "run", "etl/nightly", "--param", "oops")
    same = ok_json("deployment", "run", "etl/nightly", "--idempotency-key", "k")
    again = ok_json("deployment", "run", "etl/nightly", "--idempotency-key", "k")
    assert same["id"] == again["id"]
    preview = ok_json("work-pool", "preview", "pool")
    assert len(preview) == 3 and {run["id"], same["id"]} <= {r["id"] for r in preview}
    result = flowplane("deployment", "run", "etl/nightly", "-o", "yaml")
    assert result.returncode == 1


def test_watch_prints_the_lines_a_run_ships_after_its_final_state(
    deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A run's process reports its final state, then flushes its last log lines: --watch
    prints them, before the final state's line."""
    import datetime as dt
    import threading
    import time

    from flowplane.cli.deployments import _watch

    def log(client: Any, run_id: Any, message: str) -> None:
        client.create_logs(
            [
                {
                    "name": "flow",
                    "level": 20,
                    "message": message,
                    "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "flow_run_id": str(run_id),
                }
            ]
        )

    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployed["deployment"])
        client.set_flow_run_state(run.id, {"type": "PENDING"})
        client.set_flow_run_state(run.id, {"type": "RUNNING"})
        log(client, run.id, "first line")
        client.set_flow_run_state(run.id, {"type": "COMPLETED"})

        def late() -> None:
            time.sleep(0.15)
            with get_client(sync_client=True) as other:
                log(other, run.id, "last line, flushed after the final state")

        shipper = threading.Thread(target=late)
        shipper.start()
        try:
            code = _watch(client, run)
        finally:
            shipper.join()
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("first line") < out.index("last line, flushed after the final state")
    assert out.index("last line, flushed after the final state") < out.index("State: Completed")


def test_watch_prints_states_and_logs_until_the_run_ends(
    deployed: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import datetime as dt

    from flowplane.cli.deployments import _watch

    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployed["deployment"])
        client.set_flow_run_state(run.id, {"type": "PENDING"})
        client.set_flow_run_state(run.id, {"type": "RUNNING"})
        client.create_logs(
            [
                {
                    "name": "flow",
                    "level": 20,
                    "message": "working hard",
                    "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
                    "flow_run_id": str(run.id),
                }
            ]
        )
        client.set_flow_run_state(run.id, {"type": "FAILED", "message": "boom"})
        code = _watch(client, run)
    out = capsys.readouterr().out
    assert code == 1
    assert "working hard" in out and "State: Failed - boom" in out
