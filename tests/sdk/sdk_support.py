"""Helpers for SDK tests: poll until the task-run recorder (which writes in batches) has caught up.

A module of its own rather than conftest.py: test modules import it by name, and the
name ``conftest`` is taken by every test folder's fixtures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 5.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns a truthy value (the task-run recorder writes in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def task_runs_of(
    client: Any, flow_run_id: Any, count: int, timeout: float = 5.0, final: bool = True
) -> list[Any]:
    """The task runs of a flow run, waiting until ``count`` of them are recorded (and final)."""

    def read() -> list[Any] | None:
        runs = client.read_task_runs(flow_run_filter={"id": {"any_": [str(flow_run_id)]}})
        done = [r for r in runs if r.state_type is not None and r.state_type.value in FINAL]
        return runs if len(runs) >= count and (not final or len(done) >= count) else None

    runs = eventually(read, timeout)
    assert runs, f"expected {count} recorded task runs of flow run {flow_run_id}"
    return runs
