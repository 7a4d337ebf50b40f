"""Helpers for CLI tests: run ``flowplane`` as a real subprocess, and seed data through the embedded client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

FLOWPLANE = str(Path(sys.executable).with_name("flowplane"))


def flowplane(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``flowplane ARGS`` with this test's environment (its FLOWPLANE_HOME) plus ``env``."""
    environ = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run(
        [FLOWPLANE, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def ok(*args: str, **env: str) -> str:
    """Run and require exit 0 with nothing alarming on stderr; return stdout."""
    result = flowplane(*args, **env)
    assert result.returncode == 0, (
        f"flowplane {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr
    return result.stdout


def ok_json(*args: str, **env: str) -> Any:
    return json.loads(ok(*args, "-o", "json", **env))


def one_line_error(*args: str, **env: str) -> str:
    """Run and require a non-zero exit with exactly one line on stderr; return that line."""
    result = flowplane(*args, **env)
    assert result.returncode != 0, f"expected failure, got 0:\n{result.stdout}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
