"""Helpers for the compat tier: polling, the server and Prefect runners, and the scenario record."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
COMPAT_VENV = REPO / ".venv-compat"
COMPAT_PYTHON = COMPAT_VENV / "bin" / "python"
PREFECT_CLI = COMPAT_VENV / "bin" / "prefect"
SCENARIOS = Path(__file__).resolve().parent / "flows" / "scenarios.py"
RESULT_MARKER = "COMPAT-RESULT "

#: How long asynchronous effects (task runs recorded from events, logs) may take to appear.
EVENTUAL_TIMEOUT = 10.0

T = TypeVar("T")


def eventually(
    check: Callable[[], T], timeout: float = EVENTUAL_TIMEOUT, interval: float = 0.1
) -> T:
    """Call ``check`` until it stops raising ``AssertionError`` (or ``timeout`` passes); return its value.

    Task runs and logs reach the server asynchronously (events over a websocket, batched log
    posts), so tests poll with a bound instead of sleeping a fixed amount.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def in_ci() -> bool:
    """True under CI=true, where a missing compat venv is a failure rather than a skip."""
    return os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_environ() -> dict[str, str]:
    """This process's environment without any FLOWPLANE_*/PREFECT_* setting that could leak in."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLOWPLANE_", "PREFECT_")) or key.startswith("FLOWPLANE_TEST_")
    }


def flowplane_command() -> list[str]:
    """``flowplane`` from the project's .venv, else the one beside the running interpreter."""
    for candidate in (
        REPO / ".venv" / "bin" / "flowplane",
        Path(sys.executable).with_name("flowplane"),
    ):
        if candidate.exists():
            return [str(candidate)]
    return [sys.executable, "-c", "from flowplane.cli.main import main; main()"]


@dataclass(frozen=True)
class Server:
    """A running flowplane server subprocess (or an external API under test)."""

    url: str  # the API root, ending in /api
    home: Path
    log: Path
    pid: int

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's output, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


@dataclass(frozen=True)
class PrefectRunner:
    """Runs the real Prefect CLI and Python scripts in .venv-compat against our server."""

    python: Path
    env: dict[str, str]
    cwd: Path

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``prefect ARGS...``, output captured."""
        return self._run([str(self.python.with_name("prefect")), *args], timeout)

    def script(
        self, path: Path, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``python PATH ARGS...`` in the compat venv, output captured."""
        return self._run([str(self.python), str(path), *args], timeout)

    def _run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass(frozen=True)
class ScenarioRun:
    """What tests/compat/flows/scenarios.py reported, plus its raw output for failure messages."""

    tag: str
    result: dict[str, Any]
    stdout: str
    stderr: str
    returncode: int

    def flow(self, name: str) -> dict[str, Any]:
        """The record of one scenario (flow run id, task run ids...); fails if it did not run."""
        errors = self.result.get("errors", {})
        assert name not in errors, (
            f"scenario {name!r} raised in the Prefect client:\n{errors[name]}"
        )
        assert name in self.result["flows"], (
            f"scenario {name!r} recorded nothing\n{self.diagnostics()}"
        )
        return self.result["flows"][name]

    def diagnostics(self) -> str:
        """The script's output, for assertion messages."""
        return f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-6000:]}"
