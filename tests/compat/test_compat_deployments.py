"""The real Prefect 3.6.29 CLI, client and process worker with work pools and deployments on our server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compat_support import PrefectRunner, Server, eventually

pytestmark = pytest.mark.compat

FLOWS = Path(__file__).resolve().parent / "flows"


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (
        f"{' '.join(str(a) for a in done.args[-4:])} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-4000:]}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def pool(prefect: PrefectRunner) -> str:
    """A process work pool created with ``prefect work-pool create``."""
    name = f"compat-pool-{uuid.uuid4().hex[:6]}"
    succeeded(prefect.cli("work-pool", "create", name, "--type", "process"))
    return name


@pytest.fixture(scope="module")
def deployment(prefect: PrefectRunner, pool: str) -> dict[str, str]:
    """A deployment made by the real client's ``flow.from_source(<folder>).deploy(...)``."""
    name = f"dep-{uuid.uuid4().hex[:6]}"
    out = succeeded(
        prefect.script(FLOWS / "deploy_hello.py", str(FLOWS / "hello_project"), name, pool)
    )
    ids = [line.split()[-1] for line in out.splitlines() if line.startswith("DEPLOYMENT-ID")]
    assert ids, out
    return {"id": ids[-1], "name": name, "full_name": f"hello/{name}"}


def test_work_pool_created_by_prefect_is_listed_and_stored(
    prefect: PrefectRunner, pool: str, api: httpx.Client
) -> None:
    assert pool in succeeded(prefect.cli("work-pool", "ls"))
    assert pool in succeeded(prefect.cli("work-pool", "inspect", pool))
    stored = api.get(f"/work_pools/{pool}").json()
    assert stored["type"] == "process"
    assert "command" in stored["base_job_template"]["job_configuration"]
    queues = api.post(f"/work_pools/{pool}/queues/filter", json={}).json()
    assert [q["name"] for q in queues] == ["default"]


def test_from_source_deploy_is_listed_by_prefect(
    prefect: PrefectRunner, deployment: dict[str, str], pool: str, api: httpx.Client
) -> None:
    listed = succeeded(prefect.cli("deployment", "ls"))
    assert deployment["full_name"] in listed and deployment["id"] in listed
    stored = api.get(f"/deployments/{deployment['id']}").json()
    assert stored["work_pool_name"] == pool and stored["entrypoint"] == "hello_flow.py:hello"
    assert stored["parameters"] == {"name": "compat"}
    assert stored["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
    assert stored["pull_steps"], stored
    # `prefect deployment inspect` also reads /automations/related-to/..., which this
    # server does not serve yet (automations are another piece of work).


def test_prefect_preview_shows_a_run_without_claiming_it(
    prefect: PrefectRunner, deployment: dict[str, str], pool: str, api: httpx.Client
) -> None:
    out = succeeded(prefect.cli("deployment", "run", deployment["full_name"]))
    run_id = [line.split()[-1] for line in out.splitlines() if "UUID:" in line][-1]
    assert run_id in succeeded(prefect.cli("work-pool", "preview", pool))
    assert run_id in succeeded(prefect.cli("work-queue", "preview", "default", "--pool", pool))
    # Previews use the workers' endpoint without a time: the run is still there to claim.
    soon = api.post(
        f"/work_pools/{pool}/get_scheduled_flow_runs",
        json={"scheduled_before": "2999-01-01T00:00:00Z"},
    )
    assert run_id in [r["flow_run"]["id"] for r in soon.json()]
    assert api.get(f"/work_pools/{pool}").json()["active_slots"] == 0


@pytest.fixture
def worker(prefect: PrefectRunner, pool: str, tmp_path: Path) -> Iterator[Path]:
    """``prefect worker start --pool P --type process`` polling our server; stopped by its group."""
    log = tmp_path / "worker.log"
    env = prefect.env | {
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
    }
    command = [str(prefect.python.with_name("prefect")), "worker", "start", "--pool", pool]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--type", "process"],
            cwd=prefect.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the CLI forks the worker: stop the whole group we started
        )
    try:
        yield log
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            os.killpg(process.pid, signal.SIGKILL)


def test_real_worker_runs_a_deployment_run(
    prefect: PrefectRunner,
    deployment: dict[str, str],
    pool: str,
    worker: Path,
    api: httpx.Client,
    flowplane_server: Server,
) -> None:
    out = succeeded(prefect.cli("deployment", "run", deployment["full_name"], "--param", "n=3"))
    run_ids = [line.split()[-1] for line in out.splitlines() if "UUID:" in line]
    assert run_ids, out
    run_id = run_ids[-1]

    def completed() -> dict:
        run = api.get(f"/flow_runs/{run_id}").json()
        assert run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"), run["state"]
        return run

    try:
        run = eventually(completed, timeout=120, interval=0.5)
    except AssertionError:
        pytest.fail(
            f"the run did not finish\n--- worker\n{worker.read_text(errors='replace')[-4000:]}"
            f"\n--- server\n{flowplane_server.log_tail()}",
            pytrace=False,
        )
    assert run["state"]["type"] == "COMPLETED", worker.read_text(errors="replace")[-4000:]
    assert run["parameters"] == {"name": "compat", "n": 3}
    assert run["work_pool_name"] == pool and run["deployment_id"] == deployment["id"]

    def logged() -> None:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}}
        logs = api.post("/logs/filter", json=body).json()
        assert "hello compat x3" in [line["message"] for line in logs]

    eventually(logged, timeout=30)
    workers = api.post(f"/work_pools/{pool}/workers/filter", json={}).json()
    assert workers and workers[0]["status"] == "ONLINE"
    assert api.get(f"/work_pools/{pool}").json()["status"] == "READY"
