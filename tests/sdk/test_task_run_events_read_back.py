"""A flow's task-run state events, run embedded, read back from their state rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from flowplane import flow, task
from flowplane.client import get_client


@task(tags=["math"])
def double(x: int) -> int:
    return 2 * x


@flow(name="doubler")
def doubler() -> list[int]:
    return [double(i) for i in range(3)]


def _task_run_events(client: Any, expected: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        page = client.read_events({"event": {"prefix": ["prefect.task-run."]}}, limit=50)
        if len(page.events) >= expected or time.monotonic() > deadline:
            return list(page.events)
        time.sleep(0.05)


def test_task_run_events_are_state_rows_only_and_read_back_as_events(flowplane_home: Path) -> None:
    assert doubler() == [0, 2, 4]
    with get_client(sync_client=True) as client:
        events = _task_run_events(client, 9)
    assert sorted(e.event for e in events) == sorted(
        ["prefect.task-run.Pending", "prefect.task-run.Running", "prefect.task-run.Completed"] * 3
    )
    with sqlite3.connect(flowplane_home / "flowplane.db") as db:
        stored = db.execute("SELECT count(*) FROM event WHERE event LIKE 'prefect.task-run.%'")
        assert stored.fetchone()[0] == 0
        states = {row[0] for row in db.execute("SELECT id FROM task_run_state")}
        flow_runs = [row[0] for row in db.execute("SELECT id FROM flow_run")]
    assert {e.id.hex for e in events} == states
    assert len(flow_runs) == 1
    for event in events:
        roles = {r["prefect.resource.role"]: r for r in event.related}
        assert roles["flow-run"]["prefect.resource.id"].replace("-", "").endswith(flow_runs[0])
        assert roles["flow"]["prefect.resource.name"] == "doubler"
        assert roles["tag"]["prefect.resource.id"] == "prefect.tag.math"
        assert event.resource["prefect.resource.name"].startswith("double-")
        assert event.resource["prefect.orchestration"] == "client"
