"""End to end: a deployment's interval schedule runs on time through a real server and worker.

A ``flowplane server start`` subprocess (SQLite; the scheduler's loops tuned to about a
second) and a ``flowplane worker start`` subprocess polling a process pool. The
deployment fires every few seconds; each scheduled time must run once, near its time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))
EVERY_SECONDS = 3
#: Generous: on a loaded machine a flow process can take seconds to import and start.
START_BOUND = timedelta(seconds=30)
RUNS_WANTED = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[bytes], group: bool = False) -> None:
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
    except ProcessLookupError:
        return
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The server's API URL and its log file."""
    home = tmp_path / "server-home"
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(
                FLOWPLANE_HOME=str(home),
                FLOWPLANE_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="1",
                FLOWPLANE_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS="0.5",
                FLOWPLANE_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME="10",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
            yield url, log_path
        finally:
            stop(proc)


FLOW = """
from flowplane import flow


@flow
def tick() -> str:
    return "tock"
"""


@pytest.fixture
def api(server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def test_interval_schedule_runs_each_time_once_and_on_time(
    server: tuple[str, Path], api: httpx.Client, tmp_path: Path
) -> None:
    url, server_log = server
    project = tmp_path / "project"
    project.mkdir()
    (project / "ticks.py").write_text(FLOW)
    assert api.post("/work_pools/", json={"name": "e2e", "type": "process"}).status_code == 201
    flow_id = api.post("/flows/", json={"name": "tick"}).json()["id"]
    anchor = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
    deployment = api.post(
        "/deployments/",
        json={
            "flow_id": flow_id,
            "name": "every-few-seconds",
            "work_pool_name": "e2e",
            "path": str(project),
            "entrypoint": "ticks.py:tick",
            "schedules": [
                {"schedule": {"interval": EVERY_SECONDS, "anchor_date": anchor.isoformat()}}
            ],
        },
    ).json()

    worker_home = tmp_path / "worker-home"
    worker_home.mkdir()
    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [FLOWPLANE, "worker", "start", "--pool", "e2e"]
            + ["--query-seconds", "0.5", "--prefetch-seconds", "1"],
            env=clean_env(FLOWPLANE_HOME=str(worker_home), FLOWPLANE_API_URL=url),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            completed: list[dict] = []
            deadline = time.monotonic() + 120
            while len(completed) < RUNS_WANTED and time.monotonic() < deadline:
                time.sleep(1)
                runs = api.post(
                    "/flow_runs/filter",
                    json={"deployments": {"id": {"any_": [deployment["id"]]}}},
                ).json()
                completed = [r for r in runs if r["state_type"] == "COMPLETED"]
        finally:
            stop(worker, group=True)
    assert len(completed) >= RUNS_WANTED, (
        f"--- worker\n{worker_log.read_text(errors='replace')[-3000:]}"
        f"\n--- server\n{server_log.read_text(errors='replace')[-3000:]}"
    )

    runs = api.post(
        "/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment["id"]]}}}
    ).json()
    # Each run's key names its schedule's time (a run the stopping worker handed back is
    # rescheduled for now, so its expected start moved; its key did not).
    scheduled = [datetime.fromisoformat(r["idempotency_key"].split()[-1]) for r in runs]
    assert len(scheduled) == len(set(scheduled)), "a scheduled time has two runs"
    step = timedelta(seconds=EVERY_SECONDS)
    assert all((when - anchor) % step == timedelta(0) for when in scheduled)
    assert all(r["auto_scheduled"] for r in runs)
    for run in completed:
        expected = datetime.fromisoformat(run["expected_start_time"])
        started = datetime.fromisoformat(run["start_time"])
        assert timedelta(0) <= started - expected + timedelta(seconds=1) <= START_BOUND, run
    # The scheduled times ran from the first one on, none skipped.
    done = sorted(datetime.fromisoformat(r["expected_start_time"]) for r in completed)
    first = min(scheduled)
    assert first - anchor <= step  # the first time at or after the deployment was made
    assert done[:RUNS_WANTED] == [first + step * k for k in range(RUNS_WANTED)]
