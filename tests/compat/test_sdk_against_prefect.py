"""Compat the other way: flowplane's SDK reports flows, task runs and logs to a real Prefect 3.6.29 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compat_support import REPO, clean_environ, eventually, free_port

SCRIPT = Path(__file__).parent / "flows" / "flowplane_scenarios.py"


@pytest.fixture(scope="module")
def prefect_server(compat_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prefect's own server (from .venv-compat) on a free port and a temp SQLite file."""
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    env = clean_environ() | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(compat_python.with_name("prefect")),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (home / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "Prefect server not healthy in 90 s"
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.fixture(scope="module")
def reported(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the flowplane scenarios with FLOWPLANE_API_URL pointing at Prefect's server."""
    home = tmp_path_factory.mktemp("flowplane-home")
    env = clean_environ() | {"FLOWPLANE_HOME": str(home), "FLOWPLANE_API_URL": prefect_server}
    python = REPO / ".venv" / "bin" / "python"
    done = subprocess.run(
        [str(python if python.exists() else sys.executable), str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("COMPAT-RESULT "))
    return json.loads(line.removeprefix("COMPAT-RESULT "))


def _post(url: str, path: str, body: dict) -> list[dict]:
    response = httpx.post(f"{url}{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def test_flow_runs_and_states_are_recorded_by_prefect(prefect_server: str, reported: dict) -> None:
    assert reported["parent_result"] == 61  # (0+0 + 1+1 + 2+2) * 10 + 1
    parent = httpx.get(f"{prefect_server}/flow_runs/{reported['parent']}", timeout=10).json()
    assert parent["state_type"] == "COMPLETED"
    broken = httpx.get(f"{prefect_server}/flow_runs/{reported['broken']}", timeout=10).json()
    assert broken["state_type"] == "FAILED"
    assert "this flow fails on purpose" in (broken["state"]["message"] or "")
    children = _post(
        prefect_server,
        "/flow_runs/filter",
        {"flow_runs": {"parent_flow_run_id": {"any_": [reported["parent"]]}}},
    )
    assert [c["state_type"] for c in children] == ["COMPLETED"]


def test_task_runs_arrive_through_events(prefect_server: str, reported: dict) -> None:
    def check() -> list[dict]:
        runs = _post(
            prefect_server,
            "/task_runs/filter",
            {"flow_runs": {"id": {"any_": [reported["parent"]]}}},
        )
        names = sorted(r["name"] for r in runs)
        assert len(runs) == 5, names  # 3 add, flaky, and the subflow's parent task (child)
        assert all(r["state_type"] == "COMPLETED" for r in runs), [
            (r["name"], r["state_name"]) for r in runs
        ]
        return runs

    runs = eventually(check, timeout=20)
    flaky = next(r for r in runs if r["name"].startswith("flaky"))
    assert flaky["run_count"] == 2


def test_logs_are_recorded_by_prefect(prefect_server: str, reported: dict) -> None:
    def check() -> None:
        logs = _post(
            prefect_server,
            "/logs/filter",
            {"logs": {"flow_run_id": {"any_": [reported["parent"]]}}},
        )
        messages = [log["message"] for log in logs]
        assert "parent starting with n=3" in messages
        assert "total is 6" in messages

    eventually(check, timeout=20)


if os.environ.get("FLOWPLANE_TEST_COMPAT_API_URL"):  # the tier is pointed elsewhere: nothing to do
    pytestmark = pytest.mark.skip("compat tier pointed at an external API")
