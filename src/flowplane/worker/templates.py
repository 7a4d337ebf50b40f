"""The process worker's base job template, and turning a rendered job configuration into a launch.

A process job's configuration says what to run (``command``; by default flowplane's
executor for the run), with which extra environment (``env``), where
(``working_dir``), and whether the process's output reaches the worker's terminal
(``stream_output``). The shape matches Prefect's process worker, so pools created by
either tool work with both.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass
class Launch:
    """How to start one flow run's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None
    stream_output: bool = True
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: flowplane's own executor waits for the run's scheduled time, so it may start early.
    waits_for_start: bool = False


def launch_for(
    flow_run_id: UUID, configuration: dict[str, Any], base_env: dict[str, str] | None = None
) -> Launch:
    """The launch a rendered process job ``configuration`` describes for ``flow_run_id``."""
    env = dict(os.environ if base_env is None else base_env)
    extra = configuration.get("env") or {}
    if isinstance(extra, dict):
        env.update({str(k): "" if v is None else str(v) for k, v in extra.items()})
    env["FLOWPLANE__FLOW_RUN_ID"] = str(flow_run_id)
    env["PREFECT__FLOW_RUN_ID"] = str(flow_run_id)  # commands written for Prefect's engine
    command = configuration.get("command")
    own = False
    if isinstance(command, str) and command.strip():
        argv = shlex.split(command)
    elif isinstance(command, list) and command:
        argv = [str(part) for part in command]
    else:
        argv = [sys.executable, "-m", "flowplane", "flow-run", "execute", str(flow_run_id)]
        own = True
    working_dir = configuration.get("working_dir")
    stream = configuration.get("stream_output")
    labels = configuration.get("labels") or {}
    return Launch(
        argv=argv,
        env=env,
        cwd=str(working_dir) if working_dir else None,
        stream_output=True if stream is None else bool(stream),
        name=configuration.get("name") or None,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        waits_for_start=own,
    )


__all__ = ["Launch", "launch_for"]
