"""What the process-worker end-to-end tests share: a real server, real workers, a flow project."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))
T = TypeVar("T")

#: The flow every deployment here runs: it records when its code started, its process id
#: and (optionally) a child process's, logs a line, then sleeps.
FLOWS = """
import os, subprocess, time
from flowplane import flow, get_run_logger

@flow(name="marker")
def marker(out: str, seconds: float = 0.0, child: bool = False):
    started = time.time()
    run_id = os.environ.get("FLOWPLANE__FLOW_RUN_ID")
    get_run_logger().info("hello from marker %s", run_id)
    line = f"{run_id} {started} {os.getpid()}"
    if child:
        line += f" {subprocess.Popen(['sleep', '300']).pid}"
    with open(out, "a") as f:
        f.write(line + "\\n")
    time.sleep(seconds)
    return "ok"
"""

#: A stand-in for a flow process that costs no imports: it proposes Running (exactly one
#: process per run may get it), records the run, and completes it.
TINY = """
import json, os, sys, urllib.request

api, run = os.environ["FLOWPLANE_API_URL"], os.environ["FLOWPLANE__FLOW_RUN_ID"]

def propose(kind):
    request = urllib.request.Request(
        f"{api}/flow_runs/{run}/set_state",
        data=json.dumps({"state": {"type": kind}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)["status"]

if propose("RUNNING") == "ACCEPT":
    with open(sys.argv[1], "a") as f:
        f.write(run + "\\n")
    propose("COMPLETED")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env.update(extra)
    return env


def eventually(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """``check()``'s first truthy result within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie awaiting its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Server:
    """``flowplane server start`` on a free port with an SQLite file, liveness tuned to seconds."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.log_path = home / "server.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=clean_env(
                FLOWPLANE_HOME=str(home),
                FLOWPLANE_SERVER_SERVICES_ZOMBIES_AFTER_SECONDS="2",
                FLOWPLANE_SERVER_SERVICES_ZOMBIES_LOOP_SECONDS="0.5",
                FLOWPLANE_SERVER_SERVICES_PENDING_RELEASE_AFTER_SECONDS="2",
                FLOWPLANE_SERVER_SERVICES_PENDING_RELEASE_LOOP_SECONDS="0.5",
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.api = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if self.api.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        self.api.close()
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()

    # --- API shortcuts ---

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.api.get(f"/flow_runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def state(self, run_id: str) -> dict[str, Any]:
        return dict(self.run(run_id)["state"])

    def wait_for_state(self, run_id: str, types: set[str], timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            current = self.state(run_id)
            return current if current["type"] in types else None

        return eventually(reached, timeout, f"run {run_id} to reach {types}")

    def heartbeat_recorded(self, run_id: str) -> bool:
        """Whether the server stored a flow-run heartbeat of the run (read from its SQLite file)."""
        import sqlite3
        import uuid

        with sqlite3.connect(f"file:{self.home / 'flowplane.db'}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT last_heartbeat FROM flow_run WHERE id = ?", (uuid.UUID(run_id).hex,)
            ).fetchone()
        return row is not None and row[0] is not None

    def make_deployment(
        self,
        pool: str,
        project: Path,
        parameters: dict[str, Any],
        job_variables: dict[str, Any] | None = None,
    ) -> str:
        created = self.api.post("/work_pools/", json={"name": pool, "type": "process"})
        assert created.status_code == 201, created.text
        flow = self.api.post("/flows/", json={"name": "marker"}).json()
        body = {
            "flow_id": flow["id"],
            "name": f"{pool}-deployment",
            "work_pool_name": pool,
            "entrypoint": "flows.py:marker",
            "path": str(project),
            "parameters": parameters,
            "job_variables": job_variables or {},
        }
        response = self.api.post("/deployments/", json=body)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])

    def create_run(
        self, deployment_id: str, in_seconds: float = 0.0, **parameters: Any
    ) -> tuple[str, float]:
        """A run of the deployment scheduled ``in_seconds`` from now: (id, scheduled epoch)."""
        when = time.time() + in_seconds
        body: dict[str, Any] = {
            "state": {
                "type": "SCHEDULED",
                "state_details": {"scheduled_time": _iso(when)},
            }
        }
        if parameters:
            body["parameters"] = parameters
        response = self.api.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"]), when


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat()


class Worker:
    """``flowplane worker start`` against ``server``, polling fast."""

    def __init__(self, server: Server, pool: str, home: Path, *args: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log_path = home / f"worker-{pool}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        command = [FLOWPLANE, "worker", "start", "--pool", pool, "--query-seconds", "0.3"]
        self.process = subprocess.Popen(
            [*command, "--heartbeat-seconds", "1", *args],
            env=clean_env(
                FLOWPLANE_HOME=str(home),
                FLOWPLANE_API_URL=server.url,
                FLOWPLANE_FLOWS_HEARTBEAT_FREQUENCY="0.5",
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flows.py").write_text(textwrap.dedent(FLOWS))
    (folder / "tiny.py").write_text(textwrap.dedent(TINY))
    return folder


def markers(path: Path) -> list[list[str]]:
    """The marker file's lines, split: run id, start time, pid[, child pid]."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]
