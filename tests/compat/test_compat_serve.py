"""The real Prefect 3.6.29 client's ``flow.serve()`` against our server: registers, runs a triggered run, stops."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from compat_support import PrefectRunner, Server, eventually

pytestmark = pytest.mark.compat

FLOWS = Path(__file__).resolve().parent / "flows"


def test_prefect_flow_serve_runs_a_triggered_run(
    prefect: PrefectRunner, api: httpx.Client, flowplane_server: Server, tmp_path: Path
) -> None:
    name = f"served-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "serve.log"
    env = prefect.env | {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(prefect.python), str(FLOWS / "serve_hello.py"), name],
            cwd=FLOWS,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output() -> str:
        return log.read_text(errors="replace")[-4000:]

    try:

        def registered() -> dict:
            assert process.poll() is None, output()
            found = api.get(f"/deployments/name/served-hello/{name}")
            assert found.status_code == 200, found.text
            return found.json()

        deployment = eventually(registered, timeout=90, interval=0.5)
        assert deployment["work_pool_name"] is None
        assert deployment["parameters"] == {"name": "compat"}

        # Triggered with Prefect's own CLI.
        done = prefect.cli("deployment", "run", f"served-hello/{name}", "--param", "name=triggered")
        assert done.returncode == 0, done.stdout + done.stderr
        run_ids = [line.split()[-1] for line in done.stdout.splitlines() if "UUID:" in line]
        assert run_ids, done.stdout
        run_id = run_ids[-1]

        def finished() -> dict:
            run = api.get(f"/flow_runs/{run_id}").json()
            assert run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"), run["state"]
            return run

        try:
            run = eventually(finished, timeout=120, interval=0.5)
        except AssertionError:
            pytest.fail(
                f"the served run did not finish\n--- serve\n{output()}"
                f"\n--- server\n{flowplane_server.log_tail()}",
                pytrace=False,
            )
        assert run["state"]["type"] == "COMPLETED", output()

        def logged() -> None:
            body = {"logs": {"flow_run_id": {"any_": [run_id]}}}
            logs = api.post("/logs/filter", json=body).json()
            assert "served hello triggered" in [line["message"] for line in logs]

        eventually(logged, timeout=30)

        # Cancelling a served run: the Prefect runner stops its process; the run ends Cancelled.
        created = api.post(
            f"/deployments/{deployment['id']}/create_flow_run",
            json={"parameters": {"name": "slow", "seconds": 300}},
        )
        slow_id = created.json()["id"]

        def running() -> None:
            state = api.get(f"/flow_runs/{slow_id}").json()["state"]
            assert state["type"] == "RUNNING", state

        eventually(running, timeout=120, interval=0.5)
        cancel = api.post(
            f"/flow_runs/{slow_id}/set_state",
            json={"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True},
        )
        assert cancel.status_code in (200, 201), cancel.text

        def cancelled() -> None:
            state = api.get(f"/flow_runs/{slow_id}").json()["state"]
            assert state["type"] == "CANCELLED", state

        try:
            eventually(cancelled, timeout=90, interval=0.5)
        except AssertionError:
            pytest.fail(
                f"the served run was not cancelled\n--- serve\n{output()}"
                f"\n--- server\n{flowplane_server.log_tail()}",
                pytrace=False,
            )
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
