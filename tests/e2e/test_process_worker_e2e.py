"""End to end: ``flowplane worker start`` subprocesses running deployments' runs on a real server.

Each test starts real workers (``flowplane worker start``) against one real
``flowplane server start`` (SQLite file; zombie reaper and pending release tuned to
seconds); the runs execute as real processes (``flowplane flow-run execute``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from worker_e2e_support import (
    FLOWPLANE,
    Server,
    Worker,
    alive,
    clean_env,
    eventually,
    free_port,
    markers,
    write_project,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("worker-e2e-server"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("worker-e2e-project"))


@pytest.fixture
def start_worker(server: Server, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers for the test; each is stopped (SIGTERM, then SIGKILL) at its end."""
    started: list[Worker] = []

    def start(pool: str, *args: str) -> Worker:
        worker = Worker(server, pool, tmp_path / "workers", *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def pool_name() -> str:
    return f"pool-{uuid.uuid4().hex[:8]}"


def marker_of(path: Path, run_id: str, timeout: float = 90) -> list[str]:
    def found() -> list[str] | None:
        return next((m for m in markers(path) if m[0] == run_id), None)

    return eventually(found, timeout, f"the flow of run {run_id} to start")


def test_run_starts_at_its_time_completes_and_its_logs_reach_the_api(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    worker = start_worker(pool)
    run_id, scheduled = server.create_run(deployment, in_seconds=5)

    final = server.wait_for_state(run_id, {"COMPLETED", "FAILED", "CRASHED"})
    assert final["type"] == "COMPLETED", worker.log()
    [(marked, started, _pid)] = markers(out)
    assert marked == run_id
    # Not before its time (the process was started early and waited), and by the time
    # the worker's prefetch made it ready, not at some later poll.
    assert float(started) >= scheduled - 0.01
    print(f"schedule-to-start latency: {float(started) - scheduled:.3f} s")
    run = server.run(run_id)
    assert run["work_pool_name"] == pool and run["run_count"] == 1

    def logged() -> bool:
        body = {"logs": {"flow_run_id": {"any_": [run_id]}}}
        messages = [log["message"] for log in server.api.post("/logs/filter", json=body).json()]
        return f"hello from marker {run_id}" in messages

    eventually(logged, 30, "the flow's log line in the API")
    workers = server.api.post(f"/work_pools/{pool}/workers/filter", json={}).json()
    assert [w["status"] for w in workers] == ["ONLINE"]


def test_two_racing_workers_run_each_of_300_runs_exactly_once(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "ran.txt"
    pool = pool_name()
    command = f"{sys.executable} {project / 'tiny.py'} {out}"
    deployment = server.make_deployment(pool, project, {"out": "-"}, {"command": command})
    run_ids = [server.create_run(deployment)[0] for _ in range(300)]
    first = start_worker(pool, "--limit", "12")
    second = start_worker(pool, "--limit", "12")

    def all_done() -> list[dict] | None:
        runs = []
        for i in range(0, len(run_ids), 100):
            body = {"flow_runs": {"id": {"any_": run_ids[i : i + 100]}}, "limit": 100}
            response = server.api.post("/flow_runs/filter", json=body)
            assert response.status_code == 200, response.text
            runs.extend(response.json())
        finished = [r for r in runs if r["state_type"] in ("COMPLETED", "CRASHED", "FAILED")]
        return runs if len(finished) == len(run_ids) else None

    runs = eventually(all_done, 300, "all 300 runs to finish", interval=1)
    ran = Counter(m[0] for m in markers(out))
    assert set(ran) == set(run_ids)
    assert max(ran.values()) == 1, [r for r, n in ran.items() if n > 1]
    assert {r["state_type"] for r in runs} == {"COMPLETED"}
    assert {r["run_count"] for r in runs} == {1}
    launched = [log.count("Started flow run") for log in (first.log(), second.log())]
    assert sum(launched) == 300, launched  # no run's process was started twice
    print(f"runs launched by each worker: {launched}")


def test_cancelling_a_run_kills_its_process_group_and_ends_cancelled(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    worker = start_worker(pool)
    run_id, _ = server.create_run(deployment, seconds=300, child=True)
    _, _, pid, child = marker_of(out, run_id)
    assert alive(int(pid)) and alive(int(child))
    server.wait_for_state(run_id, {"RUNNING"})

    done = subprocess.run(
        [FLOWPLANE, "flow-run", "cancel", run_id],
        env=clean_env(FLOWPLANE_API_URL=server.url, FLOWPLANE_HOME=str(tmp_path / "cli")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    final = server.wait_for_state(run_id, {"CANCELLED", "CRASHED", "COMPLETED", "FAILED"})
    assert final["type"] == "CANCELLED", worker.log()
    # The stopped flow recorded Cancelled itself; it never passed through Crashed.
    assert final["message"] == "The flow run was cancelled: its process was stopped."
    history = server.api.get("/flow_run_states/", params={"flow_run_id": run_id}).json()
    assert [s["type"] for s in history][-2:] == ["CANCELLING", "CANCELLED"]
    assert "CRASHED" not in [s["type"] for s in history]
    eventually(lambda: not alive(int(pid)), 30, "the flow process to end")
    eventually(lambda: not alive(int(child)), 30, "the flow's child process to end")
    assert worker.process.poll() is None  # the worker carries on


def test_kill_9_of_a_flow_process_ends_crashed_through_its_worker(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    worker = start_worker(pool)
    run_id, _ = server.create_run(deployment, seconds=300)
    _, _, pid = marker_of(out, run_id)
    server.wait_for_state(run_id, {"RUNNING"})

    os.kill(int(pid), signal.SIGKILL)

    final = server.wait_for_state(run_id, {"CRASHED", "COMPLETED", "FAILED", "CANCELLED"}, 60)
    assert final["type"] == "CRASHED", worker.log()
    assert "exited with status -9" in final["message"]


def test_kill_9_of_worker_and_flow_process_ends_crashed_through_the_reaper(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    worker = start_worker(pool)
    run_id, _ = server.create_run(deployment, seconds=300)
    _, _, pid = marker_of(out, run_id)
    server.wait_for_state(run_id, {"RUNNING"})
    # A run that never sent a heartbeat is never reaped (no false positives): wait for one.
    eventually(lambda: server.heartbeat_recorded(run_id), 30, "the run's first heartbeat")

    worker.process.kill()
    worker.process.wait(10)
    os.killpg(int(pid), signal.SIGKILL)  # the flow process leads its own group

    final = server.wait_for_state(run_id, {"CRASHED", "COMPLETED", "FAILED", "CANCELLED"}, 60)
    assert final["type"] == "CRASHED"
    assert "heartbeat" in final["message"]


def test_sigterm_stops_the_worker_cleanly_leaving_nothing_running(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    worker = start_worker(pool, "--prefetch-seconds", "60")
    running, _ = server.create_run(deployment, seconds=300, child=True)
    _, _, pid, child = marker_of(out, running)
    server.wait_for_state(running, {"RUNNING"})
    waiting, _ = server.create_run(deployment, in_seconds=45)
    server.wait_for_state(waiting, {"PENDING"})  # claimed ahead of its time, not started
    # Due in 8 s: its process is started 5 s ahead and waits for the time in the process.
    early, _ = server.create_run(deployment, in_seconds=8)
    eventually(lambda: f"Started flow run {early}" in worker.log(), 30, "the early launch")

    worker.process.send_signal(signal.SIGTERM)

    assert worker.process.wait(60) == 0, worker.log()
    assert "stopped" in worker.log()
    assert not alive(int(pid)) and not alive(int(child))
    assert server.state(running)["type"] == "CRASHED"
    for claimed in (waiting, early):  # given back to the pool for another worker
        back = server.state(claimed)
        assert back["type"] == "SCHEDULED", back
    assert [m[0] for m in markers(out)] == [running]


def test_healthcheck_answers_while_the_worker_polls(
    server: Server, start_worker: Callable[..., Worker]
) -> None:
    pool = pool_name()
    port = free_port()
    worker = start_worker(pool, "--with-healthcheck", "--healthcheck-port", str(port))

    def healthy() -> httpx.Response | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        except httpx.TransportError:
            return None
        return response if response.status_code == 200 else None

    response = eventually(healthy, 60, "the health endpoint to answer 200")
    assert response.json() == {"message": "OK"}
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    assert worker.process.poll() is None
    # The worker created the pool it was pointed at, with the process job template.
    stored = server.api.get(f"/work_pools/{pool}").json()
    assert (
        stored["type"] == "process"
        and "command" in stored["base_job_template"]["variables"]["properties"]
    )


def test_pending_run_of_a_dead_worker_is_released_and_run_by_another(
    server: Server, project: Path, tmp_path: Path, start_worker: Callable[..., Worker]
) -> None:
    out = tmp_path / "marks.txt"
    pool = pool_name()
    deployment = server.make_deployment(pool, project, {"out": str(out)})
    doomed = start_worker(pool, "--prefetch-seconds", "120")
    run_id, _ = server.create_run(deployment, in_seconds=12)
    server.wait_for_state(run_id, {"PENDING"}, 60)  # claimed, its process not started yet
    doomed.process.kill()
    doomed.process.wait(10)

    def released() -> bool:
        state = server.state(run_id)
        return state["type"] == "SCHEDULED" and "worker stopped" in (state["message"] or "")

    eventually(released, 90, "the stranded Pending run to be released")
    assert markers(out) == []  # nothing ran it meanwhile

    rescuer = start_worker(pool)
    final = server.wait_for_state(run_id, {"COMPLETED", "FAILED", "CRASHED"})
    assert final["type"] == "COMPLETED", rescuer.log()
    assert [m[0] for m in markers(out)] == [run_id]
    assert server.run(run_id)["run_count"] == 1


def test_worker_with_an_unknown_type_is_refused(tmp_path: Path, server: Server) -> None:
    done = subprocess.run(
        [FLOWPLANE, "worker", "start", "--pool", "p", "--type", "docker"],
        env=clean_env(FLOWPLANE_API_URL=server.url, FLOWPLANE_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Unknown worker type 'docker'" in done.stderr
    assert "Traceback" not in done.stderr
    assert server.api.get("/work_pools/p").status_code == 404
