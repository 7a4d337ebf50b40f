"""``flowplane init`` + ``flowplane deploy`` in real project folders, runs executed by a real ``flowplane worker start``."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest
import yaml
from deploy_harness import FLOWPLANE, LiveServer, eventually, spawn, stop_group

pytestmark = pytest.mark.slow

FLOW = textwrap.dedent(
    """
    import os

    from flowplane import flow


    @flow(log_prints=True)
    def hello(name: str = "world", n: int = 1):
        print(f"hello {name} x{n} from {os.path.basename(os.getcwd())}")
        return n
    """
)


def cli(server: LiveServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLOWPLANE, *args],
        cwd=cwd,
        env=server.env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def ok(server: LiveServer, cwd: Path, *args: str) -> str:
    done = cli(server, cwd, *args)
    assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def project(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    (folder / "flows").mkdir(parents=True)
    (folder / "flows" / "hello_flow.py").write_text(FLOW)
    return folder


def run_with_worker(server: LiveServer, cwd: Path, pool: str, deployment: str) -> dict:
    """Trigger a run of ``deployment``, have a worker subprocess (in ``cwd``) execute it; the run."""
    worker_log = cwd / "worker.log"
    worker = spawn(
        [FLOWPLANE, "worker", "start", "--pool", pool, "--query-seconds", "0.5"],
        cwd,
        server.env(),
        worker_log,
    )
    try:
        out = ok(server, cwd, "deployment", "run", deployment, "--param", "n=2", "-o", "json")
        import json

        run_id = json.loads(out)["id"]

        def finished() -> dict:
            run = server.get(f"/flow_runs/{run_id}")
            assert run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"), run["state"]
            return run

        run = eventually(finished, timeout=120)
        assert run["state"]["type"] == "COMPLETED", (
            f"{run['state']}\n{worker_log.read_text(errors='replace')[-3000:]}"
        )
        return run
    finally:
        stop_group(worker)


def test_init_and_deploy_a_folder_project_run_by_a_worker(
    live_server: LiveServer, tmp_path: Path
) -> None:
    folder = project(tmp_path, "folder-project")
    pool = f"pool-{uuid.uuid4().hex[:6]}"
    out = ok(live_server, folder, "init", "--pool", pool)
    assert "flowplane.yaml" in out
    written = yaml.safe_load((folder / "flowplane.yaml").read_text())
    assert written["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(folder)}}
    ]
    assert written["deployments"][0]["entrypoint"] == "flows/hello_flow.py:hello"

    # Deploying before the pool exists is a one-line error that creates nothing.
    failed = cli(live_server, folder, "deploy", "--all")
    assert failed.returncode == 1 and "flowplane work-pool create" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    deployments = live_server.post("/deployments/filter", {})
    assert [d for d in deployments if d["work_pool_name"] == pool] == []

    ok(live_server, folder, "work-pool", "create", pool, "--type", "process")
    out = ok(live_server, folder, "deploy", "--all", "--cron", "0 3 * * *")
    assert "hello/hello" in out and f"--pool {pool}" in out
    stored = live_server.get("/deployments/name/hello/hello")
    assert stored["work_pool_name"] == pool
    assert stored["pull_steps"] == written["pull"]
    assert stored["schedules"][0]["schedule"]["cron"] == "0 3 * * *"

    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    run = run_with_worker(live_server, elsewhere, pool, "hello/hello")
    assert run["parameters"] == {"n": 2}
    assert_logged(live_server, run["id"], "hello world x2 from folder-project")


def test_init_detects_a_git_remote_and_the_worker_clones_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    folder = project(tmp_path, "gitproj")
    bare = tmp_path / "remote" / "gitproj.git"
    bare.parent.mkdir()
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(folder, "init", "-q", "-b", "main")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "flows")
    git(folder, "remote", "add", "origin", str(bare))
    git(folder, "push", "-q", "origin", "main")

    pool = f"gitpool-{uuid.uuid4().hex[:6]}"
    ok(live_server, folder, "init", "--pool", pool)
    written = yaml.safe_load((folder / "flowplane.yaml").read_text())
    clone, cd = written["pull"]
    assert clone["prefect.deployments.steps.git_clone"]["repository"] == str(bare)
    assert clone["prefect.deployments.steps.git_clone"]["branch"] == "main"
    assert cd["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ clone-step.directory }}"
    )
    ok(live_server, folder, "work-pool", "create", pool, "--type", "process")
    written["deployments"][0]["name"] = "from-git"
    # A deployment's own pull steps win over the project's: add a shell step after the cd.
    written["deployments"][0]["pull"] = [
        *written["pull"],
        {
            "prefect.deployments.steps.run_shell_script": {
                "script": "touch pulled.txt",
                "directory": "{{ clone-step.directory }}",
            }
        },
    ]
    (folder / "flowplane.yaml").write_text(yaml.safe_dump(written))
    ok(live_server, folder, "deploy", "--name", "from-git")
    stored = live_server.get("/deployments/name/hello/from-git")
    assert stored["pull_steps"] == written["deployments"][0]["pull"]

    shutil.rmtree(folder)  # only the clone can provide the code now
    elsewhere = tmp_path / "git-worker"
    elsewhere.mkdir()
    run = run_with_worker(live_server, elsewhere, pool, "hello/from-git")
    assert_logged(live_server, run["id"], "hello world x2 from gitproj-main")
    assert (elsewhere / "gitproj-main" / "pulled.txt").exists()


def assert_logged(live_server: LiveServer, flow_run_id: str, message: str) -> None:
    """``message`` is among the run's logs, which may arrive just after it is seen Completed
    (a flow run reports its final state, then flushes its last log lines)."""

    def logged() -> None:
        body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}}
        messages = [line["message"] for line in live_server.post("/logs/filter", body)]
        assert message in messages, messages

    eventually(logged, timeout=30)
