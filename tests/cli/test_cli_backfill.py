"""``flowplane deployment backfill`` as a real subprocess: runs for a window, once per time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_harness import ok, ok_json, one_line_error

from flowplane.client import get_client
from flowplane.embedded import shutdown_embedded_servers


@pytest.fixture
def hourly(flowplane_home: Path) -> dict[str, Any]:
    """A deployment with an hourly and a daily schedule (and an inactive one)."""
    with get_client(sync_client=True) as client:
        client.create_work_pool({"name": "pool", "type": "process"})
        flow_id = client.create_flow_from_name("etl")
        dep_id = client.create_deployment(
            flow_id,
            "hourly",
            work_pool_name="pool",
            parameters={"n": 1},
            schedules=[
                {"schedule": {"interval": 3600, "anchor_date": "2026-01-01T00:30:00+00:00"}},
                {"schedule": {"cron": "0 12 * * *", "timezone": "Europe/Berlin"}},
                {"schedule": {"cron": "* * * * *"}, "active": False},
            ],
        )
    shutdown_embedded_servers()
    return {"deployment": str(dep_id)}


def _runs(deployment_id: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter={"id": {"any_": [deployment_id]}}, sort="EXPECTED_START_TIME_ASC"
        )
    shutdown_embedded_servers()
    return runs


def test_backfill_creates_the_windows_runs_once(hourly: dict[str, Any]) -> None:
    window = ("--start", "2026-03-01T00:00:00Z", "--end", "2026-03-01T05:59:59")
    out = ok("deployment", "backfill", "etl/hourly", *window)
    # 00:30 ... 05:30 hourly, and 12:00 Berlin (11:00 UTC) is outside the window.
    assert "6 run(s) created, 0 already there" in out

    wider = ("--start", "2026-03-01T00:00:00+00:00", "--end", "2026-03-01T12:00:00+01:00")
    counts = ok_json("deployment", "backfill", hourly["deployment"], *wider)
    assert counts == {"created": 5 + 1, "existing": 6}  # 06:30 to 10:30, and the noon run

    runs = _runs(hourly["deployment"])
    starts = [r.expected_start_time.strftime("%H:%M") for r in runs]
    assert starts == [f"{h:02d}:30" for h in range(11)] + ["11:00"]
    assert starts.index("11:00") == len(runs) - 1
    assert all(r.auto_scheduled and r.parameters == {"n": 1} for r in runs)
    assert all(r.state.type.value == "SCHEDULED" and r.work_pool_name == "pool" for r in runs)


def test_backfill_refuses_bad_input_and_changes_nothing(hourly: dict[str, Any]) -> None:
    assert "ISO 8601" in one_line_error(
        "deployment", "backfill", "etl/hourly", "--start", "yesterday", "--end", "2026-03-01"
    )
    assert "--end must not be before --start" in one_line_error(
        "deployment", "backfill", "etl/hourly", "--start", "2026-03-02", "--end", "2026-03-01"
    )
    assert "not found" in one_line_error(
        "deployment", "backfill", "etl/nope", "--start", "2026-03-01", "--end", "2026-03-02"
    )
    assert _runs(hourly["deployment"]) == []
