"""``flowplane.runtime.flow_run``: attributes of the current flow run, read when accessed (see :mod:`flowplane.sdk.runtime`)."""

from __future__ import annotations

from typing import Any

from flowplane.sdk import runtime as _runtime


def __getattr__(name: str) -> Any:
    return getattr(_runtime.flow_run, name)


def __dir__() -> list[str]:
    return dir(_runtime.flow_run)
