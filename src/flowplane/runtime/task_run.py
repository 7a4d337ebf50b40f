"""``flowplane.runtime.task_run``: attributes of the current task run, read when accessed (see :mod:`flowplane.sdk.runtime`)."""

from __future__ import annotations

from typing import Any

from flowplane.sdk import runtime as _runtime


def __getattr__(name: str) -> Any:
    return getattr(_runtime.task_run, name)


def __dir__() -> list[str]:
    return dir(_runtime.task_run)
