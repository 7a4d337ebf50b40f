"""Our scheduler makes runs for a deployment the real Prefect client created; Prefect reads them."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from compat_support import PrefectRunner, eventually

pytestmark = pytest.mark.compat

FLOWS = Path(__file__).resolve().parent / "flows"


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    return done.stdout


def test_scheduler_runs_for_a_prefect_deployment_read_by_prefect(prefect: PrefectRunner) -> None:
    pool = f"sched-pool-{uuid.uuid4().hex[:6]}"
    succeeded(prefect.cli("work-pool", "create", pool, "--type", "process"))
    name = f"sched-{uuid.uuid4().hex[:6]}"
    out = succeeded(
        prefect.script(FLOWS / "deploy_hello.py", str(FLOWS / "hello_project"), name, pool)
    )
    deployment_id = [line.split()[-1] for line in out.splitlines() if "DEPLOYMENT-ID" in line][-1]

    def three_runs() -> list[dict]:
        done = succeeded(prefect.script(FLOWS / "read_scheduled_runs.py", deployment_id))
        runs = json.loads(done.strip().splitlines()[-1])
        assert len(runs) == 3, runs  # the daily cron: at least 3 runs ahead
        return runs

    runs = eventually(three_runs, timeout=60, interval=1)
    for run in runs:
        assert run["state"] == "Scheduled" and run["auto_scheduled"] is True
        assert "auto-scheduled" in run["tags"] and run["created_by"] == "SCHEDULE"
        assert run["work_pool_name"] == pool and run["parameters"] == {"name": "compat"}
        when = datetime.fromisoformat(run["expected_start_time"])
        assert (when.hour, when.minute) == (3, 0)  # the cron has no timezone: UTC
