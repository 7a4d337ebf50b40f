"""End to end: a flow process killed with SIGKILL ends Crashed through missed heartbeats; a finished one never does.

A real ``flowplane server start`` subprocess (SQLite, reaper tuned to seconds) and
real flow processes talking to it over HTTP with a short heartbeat interval.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))

#: The test's detection bound: heartbeat 0.5 s, expiry 2 s after the last one, reaper every 0.5 s.
HEARTBEAT = "0.5"
AFTER_SECONDS = 2.0
BOUND_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env.update(extra)
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The server's API URL and its SQLite file."""
    home = tmp_path / "server-home"
    home.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(
            FLOWPLANE_HOME=str(home),
            FLOWPLANE_SERVER_SERVICES_ZOMBIES_AFTER_SECONDS=str(AFTER_SECONDS),
            FLOWPLANE_SERVER_SERVICES_ZOMBIES_LOOP_SECONDS="0.5",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (home / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield url, home / "flowplane.db"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


FLOW = """
    import sys, time
    from flowplane import flow
    from flowplane.runtime import flow_run

    @flow
    def job(seconds: float):
        print("READY", flow_run.id, flush=True)
        time.sleep(seconds)
        return "done"

    print(job(float(sys.argv[1])), flush=True)
"""


def start_flow(url: str, home: Path, seconds: float) -> subprocess.Popen[str]:
    home.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(FLOW), str(seconds)],
        env=clean_env(
            FLOWPLANE_HOME=str(home),
            FLOWPLANE_API_URL=url,
            FLOWPLANE_FLOWS_HEARTBEAT_FREQUENCY=HEARTBEAT,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def flow_run_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for _ in range(50):
        line = proc.stdout.readline()
        if line.startswith("READY"):
            return line.split()[1]
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"flow never started: {proc.stderr.read() if proc.stderr else ''}")


def state(url: str, run_id: str) -> dict:
    return httpx.get(f"{url}/flow_runs/{run_id}", timeout=10).json()["state"]


def last_heartbeat(db: Path, run_id: str) -> str | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT last_heartbeat FROM flow_run WHERE id = ?", (uuid.UUID(run_id).hex,)
        ).fetchone()
    return None if row is None else row[0]


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return bool(check())


def test_kill_9_ends_crashed_and_a_finished_run_stays_completed(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, db = server
    doomed = start_flow(url, tmp_path / "doomed", 300)
    finisher = start_flow(url, tmp_path / "finisher", 2)
    try:
        doomed_id = flow_run_id(doomed)
        finisher_id = flow_run_id(finisher)
        # Both runs are heard from before anything happens to them.
        assert wait_for(lambda: last_heartbeat(db, doomed_id) is not None, 20)
        assert wait_for(lambda: last_heartbeat(db, finisher_id) is not None, 20)
        assert state(url, doomed_id)["type"] == "RUNNING"

        doomed.kill()  # SIGKILL: no handler runs, nothing is reported
        doomed.wait(10)
        killed_at = time.monotonic()

        assert wait_for(lambda: state(url, doomed_id)["type"] == "CRASHED", BOUND_SECONDS), state(
            url, doomed_id
        )
        detected_after = time.monotonic() - killed_at
        crashed = state(url, doomed_id)
        assert crashed["name"] == "Crashed"
        assert "missing heartbeats" in crashed["message"]

        out, err = finisher.communicate(timeout=60)
        assert finisher.returncode == 0, err
        assert "done" in out
        # Well past the expiry of its last heartbeat, with the reaper passing every 0.5 s.
        time.sleep(AFTER_SECONDS + 2)
        assert state(url, finisher_id)["type"] == "COMPLETED"
        print(f"zombie detected {detected_after:.1f}s after kill -9")
    finally:
        for proc in (doomed, finisher):
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)  # reaps it and closes its pipes
