"""Start and stop the servers the benchmarks compare: flowplane and the real Prefect 3.6.29, each on a temp SQLite file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
COMPAT_VENV = REPO / ".venv-compat"


class ServerUnavailable(RuntimeError):
    """A server could not be started (missing venv, crashed, or not healthy in time)."""


@dataclass(frozen=True)
class RunningServer:
    """A server subprocess we started: its API root, PID and log file."""

    name: str
    api_url: str
    pid: int
    log: Path
    settings: dict[str, str]

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's output, for error messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _base_environ() -> dict[str, str]:
    """This environment minus FLOWPLANE_*/PREFECT_* settings, so neither server inherits stray config."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("FLOWPLANE_", "PREFECT_"))}


def flowplane_executable() -> Path:
    """``flowplane`` from the project's .venv, else beside the running interpreter."""
    for candidate in (
        REPO / ".venv" / "bin" / "flowplane",
        Path(sys.executable).with_name("flowplane"),
    ):
        if candidate.exists():
            return candidate
    raise ServerUnavailable("no flowplane executable: run ./scripts/setup.sh")


def prefect_executable() -> Path:
    """``prefect`` from .venv-compat (created by scripts/setup-compat.sh)."""
    candidate = COMPAT_VENV / "bin" / "prefect"
    if not candidate.exists():
        raise ServerUnavailable(f"{candidate} missing: run ./scripts/setup-compat.sh")
    return candidate


@contextmanager
def _serve(
    name: str,
    command: list[str],
    env: dict[str, str],
    settings: dict[str, str],
    port: int,
    workdir: Path,
    start_timeout: float,
) -> Iterator[RunningServer]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    server = RunningServer(name, f"http://127.0.0.1:{port}/api", process.pid, log, settings)
    try:
        deadline = time.monotonic() + start_timeout
        with httpx.Client(timeout=2) as http:
            while True:
                if process.poll() is not None:
                    raise ServerUnavailable(
                        f"{name} exited with {process.returncode}:\n{server.log_tail()}"
                    )
                try:
                    if http.get(f"{server.api_url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"{name} not healthy in {start_timeout:.0f} s:\n{server.log_tail()}"
                    )
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()  # SIGTERM to the PID we started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def flowplane_server(
    workdir: Path, extra_settings: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """``flowplane server start`` on 127.0.0.1 with a private home (SQLite at $FLOWPLANE_HOME/flowplane.db).

    ``extra_settings``: further ``FLOWPLANE_*`` variables for the server.
    """
    home = workdir / "flowplane-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = {"FLOWPLANE_HOME": str(home), **(extra_settings or {})}
    command = [
        str(flowplane_executable()),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with _serve(
        "flowplane", command, _base_environ() | settings, settings, port, workdir, 30
    ) as server:
        yield server


#: Settings given to Prefect's server: SQLite in the temp dir, no UI, no telemetry.
PREFECT_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_UI_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}


@contextmanager
def prefect_server(
    workdir: Path, services: bool = True, extra_settings: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """``prefect server start`` (3.6.29, from .venv-compat) on 127.0.0.1 with a temp home and SQLite file.

    With ``services=False`` it runs with ``--no-services`` (the API only: no scheduler, event
    persister, task-run recorder, triggers, ...). ``extra_settings``: further ``PREFECT_*``
    variables for the server.
    """
    home = workdir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = PREFECT_SETTINGS | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{workdir / 'prefect.db'}",
        "PREFECT_SERVER_MEMO_STORE_PATH": str(home / "memo_store.toml"),
        **(extra_settings or {}),
    }
    command = [
        str(prefect_executable()),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if not services:
        command.append("--no-services")
    with _serve(
        "prefect", command, _base_environ() | settings, settings, port, workdir, 120
    ) as server:
        yield server
