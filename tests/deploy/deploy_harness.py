"""Helpers for deploy tests: a server subprocess, processes stopped by their group, polling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without FLOWPLANE_/PREFECT_ settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWPLANE_", "PREFECT_"))}
    env.update(extra)
    return env


@dataclass
class LiveServer:
    url: str
    home: Path
    process: subprocess.Popen[bytes]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process talking to this server."""
        return clean_env(
            FLOWPLANE_API_URL=self.url, FLOWPLANE_HOME=str(self.home / "client"), **extra
        )

    def log(self) -> str:
        return (self.home / "server.log").read_text(errors="replace")[-4000:]

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_server(home: Path) -> LiveServer:
    port = free_port()
    with (home / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [FLOWPLANE, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(FLOWPLANE_HOME=str(home)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}/api", home, process)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, server.log()
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"server did not start\n{server.log()}"
        time.sleep(0.1)


def spawn(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM the group we started; SIGKILL it if it lingers. The leader's exit code."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait(5)


def eventually(check: Callable[[], T], timeout: float = 60, interval: float = 0.25) -> T:
    """``check()``'s value once it stops raising AssertionError (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
