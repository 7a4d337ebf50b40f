"""The real Prefect client's flow-run heartbeats drive our zombie reaper, with the server's default settings.

A Prefect 3.6.29 flow process with ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30`` (Prefect's
minimum) is killed with SIGKILL after its second heartbeat; our server (default reaper:
expiry after two intervals or 60 s, a pass every 5 s) marks the run Crashed within 90 s of
the kill (65 s and processing delays). Takes about two minutes: the intervals are Prefect's.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from compat_support import PrefectRunner

pytestmark = [pytest.mark.compat, pytest.mark.slow]

FLOW = """
    import time
    from prefect import flow
    from prefect.runtime import flow_run

    @flow(name="compat-zombie")
    def zombie():
        print("READY", flow_run.id, flush=True)
        time.sleep(600)

    zombie()
"""


def heartbeat_count(api: httpx.Client, run_id: str) -> int:
    response = api.post(
        "/events/filter",
        json={
            "filter": {
                "event": {"name": ["prefect.flow-run.heartbeat"]},
                "resource": {"id": [f"prefect.flow-run.{run_id}"]},
            },
            "limit": 10,
        },
    )
    response.raise_for_status()
    return len(response.json()["events"])


def test_a_killed_prefect_flow_process_is_crashed_within_90_seconds(
    prefect: PrefectRunner, api: httpx.Client, tmp_path: Path
) -> None:
    script = tmp_path / "zombie.py"
    script.write_text(textwrap.dedent(FLOW))
    env = prefect.env | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    proc = subprocess.Popen(
        [str(prefect.python), str(script)],
        cwd=prefect.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        for _ in range(200):
            line = proc.stdout.readline()
            if line.startswith("READY") or (not line and proc.poll() is not None):
                break
        assert line.startswith("READY"), proc.stderr.read() if proc.stderr else ""
        run_id = line.split()[1]

        # Two heartbeats: the server has seen the client's interval (30 s).
        deadline = time.monotonic() + 90
        while heartbeat_count(api, run_id) < 2:
            assert time.monotonic() < deadline, "the Prefect client sent fewer than 2 heartbeats"
            time.sleep(1)
        assert api.get(f"/flow_runs/{run_id}").json()["state_type"] == "RUNNING"

        proc.kill()
        proc.wait(10)
        killed = time.monotonic()
        while True:
            state = api.get(f"/flow_runs/{run_id}").json()["state"]
            if state["type"] == "CRASHED" or time.monotonic() - killed > 90:
                break
            time.sleep(1)
        assert state["type"] == "CRASHED", state
        assert "missing heartbeats" in state["message"]
        print(f"real Prefect client run crashed {time.monotonic() - killed:.0f}s after kill -9")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
