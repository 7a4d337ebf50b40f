"""The real Prefect 3.6.29 client pauses a flow waiting for input on our server; other processes (our CLI, Prefect's resume_flow_run) resume it with input."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat_support import PrefectRunner, Server, clean_environ, eventually, flowplane_command

pytestmark = pytest.mark.compat

PAUSE_SCENARIO = Path(__file__).resolve().parent / "flows" / "pause_scenario.py"


def _flowplane(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ() | {"FLOWPLANE_API_URL": server.url, "FLOWPLANE_HOME": str(server.home)}
    return subprocess.run(
        [*flowplane_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _paused_state(api: httpx.Client, run_id: str, pause_key: str) -> dict[str, Any]:
    def paused() -> dict[str, Any]:
        state = api.get(f"/flow_runs/{run_id}").json()["state"]
        assert state["type"] == "PAUSED" and state["state_details"]["pause_key"] == pause_key
        return dict(state)

    return eventually(paused, timeout=60)


def _stored_schema(api: httpx.Client, run_id: str, key: str) -> dict[str, Any]:
    """The schema a pause stored (Prefect stores it just after the run became Paused)."""

    def stored() -> dict[str, Any]:
        response = api.get(f"/flow_runs/{run_id}/input/{key}")
        assert response.status_code == 200
        return dict(json.loads(response.text))

    return eventually(stored, timeout=30)


def test_prefect_flow_paused_for_input_is_resumed_by_other_processes(
    prefect: PrefectRunner, flowplane_server: Server, api: httpx.Client
) -> None:
    flow = subprocess.Popen(
        [str(prefect.python), str(PAUSE_SCENARIO)],
        cwd=prefect.cwd,
        env=prefect.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert flow.stdout is not None
        first = flow.stdout.readline()
        assert first.startswith("RUN "), f"{first}{flow.stderr.read() if flow.stderr else ''}"
        run_id = first.split()[1]

        # First pause: Prefect stored the schema of its RunInput under the paused state's keyset.
        state = _paused_state(api, run_id, "1")
        keyset = state["state_details"]["run_input_keyset"]
        assert keyset["schema"] == "paused-1-schema"

        schema = _stored_schema(api, run_id, keyset["schema"])
        assert set(schema["required"]) == {"item", "quantity"}

        # Our CLI: input that does not match is refused with the server's reason, then accepted.
        bad = _flowplane(flowplane_server, "flow-run", "resume", run_id, "--input", '{"item": 1}')
        assert bad.returncode == 1
        assert bad.stderr.strip().startswith(f"Error: Flow run {run_id} was not resumed: Reason:")
        assert api.get(f"/flow_runs/{run_id}").json()["state"]["type"] == "PAUSED"
        good = _flowplane(
            flowplane_server,
            "flow-run",
            "resume",
            run_id,
            "--input",
            '{"item": "widget", "quantity": 4}',
        )
        assert good.returncode == 0, good.stderr
        assert good.stdout.strip() == f"Flow run {run_id} resumed."

        # Second pause waits for a plain int; the real Prefect client resumes it.
        _paused_state(api, run_id, "2")
        assert _stored_schema(api, run_id, "paused-2-schema")["title"] == "intAutomaticRunInput"
        resumer = textwrap.dedent(
            f"""
            from prefect.flow_runs import resume_flow_run
            resume_flow_run({run_id!r}, run_input={{"value": 5}})
            print("RESUMED", flush=True)
            """
        )
        done = subprocess.run(
            [str(prefect.python), "-c", resumer],
            cwd=prefect.cwd,
            env=prefect.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.strip().endswith("RESUMED")

        out, err = flow.communicate(timeout=120)
        assert flow.returncode == 0, err[-4000:]
        results = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert results, out
        assert json.loads(results[-1][len("RESULT ") :]) == {
            "item": "widget",
            "quantity": 4,
            "total": 17,
        }
        run = api.get(f"/flow_runs/{run_id}").json()
        assert run["state"]["type"] == "COMPLETED"
        states = api.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
        assert [s["type"] for s in states] == [
            "PENDING",
            "RUNNING",
            "PAUSED",
            "RUNNING",
            "PAUSED",
            "RUNNING",
            "COMPLETED",
        ]
    finally:
        if flow.poll() is None:
            flow.kill()
        flow.communicate()
