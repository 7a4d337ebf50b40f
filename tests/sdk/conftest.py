"""SDK test fixtures: writers flushed and stopped after each test, and helpers to read runs back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _close_writers() -> Iterator[None]:
    """Each test's writer threads send what they hold and stop before its embedded server does."""
    yield
    from flowplane.sdk._api import close_server_clients
    from flowplane.sdk.writer import close_all_writers

    close_all_writers()
    close_server_clients()


@pytest.fixture
def client() -> Iterator[Any]:
    """A sync client on this test's embedded API."""
    from flowplane.client import get_client

    with get_client(sync_client=True) as c:
        yield c


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
