"""Why a watched run waits: ``explain`` case by case, and ``deployment run --watch`` saying it for real."""

from __future__ import annotations

import datetime as dt
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from deploy_harness import FLOWPLANE, clean_env, eventually

from flowplane.deploy.diagnose import WaitFacts, explain

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
RECENT = NOW - dt.timedelta(seconds=5)
OLD = NOW - dt.timedelta(minutes=10)


def facts(**changes: object) -> WaitFacts:
    base = WaitFacts(
        state="SCHEDULED",
        deployment_name="etl/nightly",
        pool_name="pool",
        queue_name="default",
        polls=[RECENT],
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"state": "RUNNING", "polls": []}, None),
        ({"polls": []}, "No worker has polled work pool 'pool' yet"),
        ({"polls": [OLD]}, "No worker has polled work pool 'pool' in the last 60 s"),
        ({"pool_paused": True, "polls": []}, "Work pool 'pool' is paused"),
        ({"queue_paused": True}, "Work queue 'default' of pool 'pool' is paused"),
        ({"pool_limit": 2, "pool_active": 2}, "Work pool 'pool' is at its concurrency limit (2/2"),
        ({"pool_limit": 2, "pool_active": 1}, None),
        ({"queue_limit": 1, "queue_active": 1}, "Work queue 'default' is at its concurrency limit"),
        (
            {"deployment_limit": 1, "deployment_active": 1, "state": "PENDING"},
            "Deployment 'etl/nightly' is at its concurrency limit (1/1",
        ),
        (
            {"pool_name": None, "queue_name": None, "polls": [None]},
            "No process is serving deployment 'etl/nightly'",
        ),
        ({"pool_name": None, "queue_name": None, "polls": [RECENT]}, None),
        (
            {"polls": [], "scheduled_for": NOW + dt.timedelta(hours=1)},
            "It is scheduled for 2026-01-01 13:00:00 UTC",
        ),
    ],
)
def test_explain(changes: dict, expected: str | None) -> None:
    said = explain(facts(**changes), NOW)
    if expected is None:
        assert said is None
    else:
        assert said is not None and said.startswith(expected), said


FLOW = textwrap.dedent(
    """
    from flowplane import flow

    @flow
    def waiter():
        return 1
    """
)


def run_cli(home: Path, cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [FLOWPLANE, *args],
        cwd=cwd,
        env=clean_env(FLOWPLANE_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def watch_until(home: Path, cwd: Path, deployment: str, text: str) -> str:
    """``deployment run NAME --watch`` until its output contains ``text``; that output."""
    log = cwd / f"watch-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [FLOWPLANE, "deployment", "run", deployment, "--watch", "--diagnose-after", "0.5"],
            cwd=cwd,
            env=clean_env(FLOWPLANE_HOME=str(home), PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def said() -> str:
            content = log.read_text()
            assert text in content, content
            return content

        return eventually(said, timeout=60)
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.slow
def test_watch_says_no_worker_polled_then_pool_paused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "waiter.py").write_text(FLOW)
    run_cli(home, tmp_path, "work-pool", "create", "idle", "--type", "process")
    run_cli(home, tmp_path, "deploy", "waiter.py:waiter", "--name", "w", "--pool", "idle")

    out = watch_until(home, tmp_path, "waiter/w", "Waiting:")
    waiting = [line for line in out.splitlines() if line.startswith("Waiting:")]
    assert waiting == [
        "Waiting: No worker has polled work pool 'idle' yet: "
        "start one with `flowplane worker start --pool idle`"
    ]

    run_cli(home, tmp_path, "work-pool", "pause", "idle")
    out = watch_until(home, tmp_path, "waiter/w", "Waiting:")
    assert "Waiting: Work pool 'idle' is paused, so no worker takes its runs: " in out
    assert "flowplane work-pool resume idle" in out
