"""The process job configuration becomes a launch: command, environment, folder, output."""

from __future__ import annotations

import sys
from uuid import UUID

from flowplane.core.job_templates import PROCESS_TEMPLATE
from flowplane.worker.health import is_healthy
from flowplane.worker.templates import launch_for

RUN = UUID("11111111-2222-4333-8444-555555555555")


def test_default_launch_runs_flowplanes_executor_for_the_run() -> None:
    launch = launch_for(RUN, {}, {"PATH": "/bin"})
    assert launch.argv == [sys.executable, "-m", "flowplane", "flow-run", "execute", str(RUN)]
    assert launch.env == {
        "PATH": "/bin",
        "FLOWPLANE__FLOW_RUN_ID": str(RUN),
        "PREFECT__FLOW_RUN_ID": str(RUN),
    }
    assert launch.cwd is None
    assert launch.stream_output is True
    assert launch.waits_for_start is True  # so the worker may start it ahead of its time


def test_configured_command_env_folder_and_output() -> None:
    launch = launch_for(
        RUN,
        {
            "command": "python -c 'print(1)'",
            "env": {"A": "1", "B": None, "C": 3},
            "working_dir": "/tmp",
            "stream_output": False,
            "labels": {"team": "data"},
            "name": "nightly",
        },
        {"A": "old"},
    )
    assert launch.argv == ["python", "-c", "print(1)"]
    assert launch.env["A"] == "1" and launch.env["B"] == "" and launch.env["C"] == "3"
    assert launch.cwd == "/tmp"
    assert launch.stream_output is False
    assert launch.labels == {"team": "data"}
    assert launch.name == "nightly"
    assert launch.waits_for_start is False  # someone else's command starts when due


def test_the_base_template_declares_every_placeholder_it_uses() -> None:
    used = {v.strip("{} ") for v in PROCESS_TEMPLATE["job_configuration"].values()}
    assert used == set(PROCESS_TEMPLATE["variables"]["properties"])


def test_health_needs_a_recent_poll() -> None:
    assert not is_healthy(None, 10, 100.0)
    assert is_healthy(90.0, 10, 100.0)
    assert not is_healthy(50.0, 10, 100.0)
    assert is_healthy(50.0, 30, 100.0)
