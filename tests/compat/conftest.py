"""Fixtures for the compat tier: our server as a subprocess, and the real Prefect 3 client in .venv-compat."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from compat_support import (
    COMPAT_PYTHON,
    PREFECT_CLI,
    REPO,
    RESULT_MARKER,
    SCENARIOS,
    PrefectRunner,
    ScenarioRun,
    Server,
    clean_environ,
    flowplane_command,
    free_port,
    in_ci,
)


@pytest.fixture(scope="session")
def compat_python() -> Path:
    """The interpreter of .venv-compat (prefect==3.6.29), created by scripts/setup-compat.sh if needed."""
    script = REPO / "scripts" / "setup-compat.sh"
    try:
        done = subprocess.run(
            [str(script)], cwd=REPO, capture_output=True, text=True, timeout=900, check=False
        )
        problem = None if done.returncode == 0 else f"exit {done.returncode}: {done.stderr[-2000:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem is None and not (COMPAT_PYTHON.exists() and PREFECT_CLI.exists()):
        problem = f"{COMPAT_PYTHON} or {PREFECT_CLI} missing after setup"
    if problem is not None:
        message = (
            f"compat tier skipped: could not create .venv-compat with prefect==3.6.29 ({problem})"
        )
        if in_ci():
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return COMPAT_PYTHON


@pytest.fixture(scope="session")
def flowplane_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Our server on a free 127.0.0.1 port with a private home (SQLite), stopped by PID at the end.

    With ``FLOWPLANE_TEST_COMPAT_API_URL`` set, the tests run against that API instead (used to
    check the assertions themselves against the real Prefect server).
    """
    root = tmp_path_factory.mktemp("compat-server")
    home = root / "home"
    home.mkdir()
    log = root / "server.log"
    external = os.environ.get("FLOWPLANE_TEST_COMPAT_API_URL")
    if external:
        log.write_text(f"(external server {external}: no log)")
        yield Server(url=external.rstrip("/"), home=home, log=log, pid=0)
        return
    port = free_port()
    env = clean_environ() | {"FLOWPLANE_HOME": str(home)}
    command = [*flowplane_command(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(url=f"http://127.0.0.1:{port}/api", home=home, log=log, pid=process.pid)
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as http:
            while True:
                if process.poll() is not None:
                    pytest.fail(
                        f"flowplane server exited with {process.returncode} on start:\n{server.log_tail()}",
                        pytrace=False,
                    )
                try:
                    if http.get(f"{server.url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"flowplane server not healthy in 30 s:\n{server.log_tail()}", pytrace=False
                    )
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()  # SIGTERM to the PID we started; uvicorn shuts down gracefully
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def api(flowplane_server: Server) -> Iterator[httpx.Client]:
    """An httpx client rooted at our server's /api."""
    with httpx.Client(base_url=flowplane_server.url, timeout=10) as http:
        yield http


@pytest.fixture(scope="session")
def prefect(
    compat_python: Path, flowplane_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> PrefectRunner:
    """The real Prefect client and CLI, configured for our server only."""
    home = tmp_path_factory.mktemp("prefect-home")
    env = clean_environ() | {
        "PREFECT_API_URL": flowplane_server.url,
        "PREFECT_HOME": str(home),
        "PREFECT_PROFILES_PATH": str(home / "profiles.toml"),
        # never fall back to an ephemeral Prefect server if ours is unreachable
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
        # fail fast instead of retrying server errors for a minute
        "PREFECT_CLIENT_MAX_RETRIES": "2",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # wide, plain console output so table cells (ids, names) are not truncated
        "COLUMNS": "250",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONUNBUFFERED": "1",
    }
    return PrefectRunner(python=compat_python, env=env, cwd=tmp_path_factory.mktemp("prefect-cwd"))


@pytest.fixture(scope="session")
def scenarios(prefect: PrefectRunner, flowplane_server: Server) -> ScenarioRun:
    """Runs every compat scenario (tests/compat/flows/scenarios.py) once per session."""
    tag = uuid.uuid4().hex[:8]
    done = prefect.script(SCENARIOS, tag)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        pytest.fail(
            f"scenarios.py printed no result (exit {done.returncode})\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}\n"
            f"--- server log\n{flowplane_server.log_tail()}",
            pytrace=False,
        )
    result = json.loads(lines[-1][len(RESULT_MARKER) :])
    return ScenarioRun(
        tag=tag, result=result, stdout=done.stdout, stderr=done.stderr, returncode=done.returncode
    )
