"""Runtime information: ``flowplane.runtime.flow_run``, ``.task_run`` and ``.deployment`` (attributes read when accessed)."""

from __future__ import annotations

from flowplane.runtime import deployment, flow_run, task_run

__all__ = ["flow_run", "task_run", "deployment"]
