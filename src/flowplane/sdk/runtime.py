"""Runtime information about the current flow run, task run and deployment, with ``FLOWPLANE__RUNTIME__*`` overrides.

Each attribute is read when asked for: from the environment variable
``FLOWPLANE__RUNTIME__<GROUP>__<NAME>`` if set (tests use these to fake a run),
else from the current run context, else an empty value.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import orjson

from flowplane.sdk.context import current_frame

ENV_PREFIX = "FLOWPLANE__RUNTIME__"


def _override(group: str, name: str, cast: Callable[[str], Any] = str) -> tuple[bool, Any]:
    raw = os.environ.get(f"{ENV_PREFIX}{group.upper()}__{name.upper()}")
    if raw is None:
        return False, None
    return True, cast(raw)


def _json(raw: str) -> Any:
    return orjson.loads(raw)


def _list(raw: str) -> list[str]:
    try:
        value = orjson.loads(raw)
        if isinstance(value, list):
            return [str(v) for v in value]
    except orjson.JSONDecodeError:
        pass
    return [part.strip() for part in raw.split(",") if part.strip()]


def _datetime(raw: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class _Namespace:
    """Attributes computed by getter functions, overridable by environment variables."""

    _group = ""
    _casts: dict[str, Callable[[str], Any]] = {}

    def __getattr__(self, name: str) -> Any:
        getter = getattr(type(self), f"_get_{name}", None)
        if getter is None:
            raise AttributeError(f"{self._group} has no runtime attribute {name!r}")
        found, value = _override(self._group, name, self._casts.get(name, str))
        if found:
            return value
        return getter(self)

    def __dir__(self) -> list[str]:
        return [n[5:] for n in dir(type(self)) if n.startswith("_get_")]


class FlowRunRuntime(_Namespace):
    """``flowplane.runtime.flow_run``: id, name, flow_name, flow_version, tags, parameters,
    scheduled_start_time, run_count, parent_flow_run_id, parent_deployment_id, root_flow_run_id."""

    _group = "flow_run"
    _casts = {
        "tags": _list,
        "parameters": _json,
        "scheduled_start_time": _datetime,
        "run_count": int,
    }

    @staticmethod
    def _ctx() -> Any:
        return current_frame().flow

    def _get_id(self) -> str | None:
        ctx = self._ctx()
        return str(ctx.flow_run.id) if ctx else None

    def _get_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.flow_run.name if ctx else None

    def _get_flow_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.flow.name if ctx else None

    def _get_flow_version(self) -> str | None:
        ctx = self._ctx()
        return ctx.flow.version if ctx else None

    def _get_tags(self) -> list[str]:
        ctx = self._ctx()
        return list(ctx.flow_run.tags) if ctx else []

    def _get_parameters(self) -> dict[str, Any]:
        ctx = self._ctx()
        return dict(ctx.parameters) if ctx else {}

    def _get_scheduled_start_time(self) -> dt.datetime:
        ctx = self._ctx()
        if ctx and ctx.flow_run.expected_start_time:
            return ctx.flow_run.expected_start_time  # type: ignore[no-any-return]
        return dt.datetime.now(dt.timezone.utc)

    def _get_run_count(self) -> int:
        ctx = self._ctx()
        return ctx.record.run_count if ctx else 0

    def _get_parent_flow_run_id(self) -> str | None:
        ctx = self._ctx()
        return getattr(ctx, "parent_flow_run_id", None) if ctx else None

    def _get_parent_deployment_id(self) -> str | None:
        return None

    def _get_root_flow_run_id(self) -> str | None:
        ctx = self._ctx()
        if not ctx:
            return None
        return str(getattr(ctx, "root_flow_run_id", None) or ctx.flow_run.id)

    def _get_deployment_id(self) -> str | None:
        ctx = self._ctx()
        deployment = ctx.flow_run.deployment_id if ctx else None
        return str(deployment) if deployment else None

    def _get_job_variables(self) -> dict[str, Any] | None:
        ctx = self._ctx()
        return ctx.flow_run.job_variables if ctx else None


class TaskRunRuntime(_Namespace):
    """``flowplane.runtime.task_run``: id, name, task_name, tags, parameters, run_count."""

    _group = "task_run"
    _casts = {"tags": _list, "parameters": _json, "run_count": int}

    @staticmethod
    def _ctx() -> Any:
        return current_frame().task

    def _get_id(self) -> str | None:
        ctx = self._ctx()
        return str(ctx.record.id) if ctx else None

    def _get_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.record.name if ctx else None

    def _get_task_name(self) -> str | None:
        ctx = self._ctx()
        return ctx.task.name if ctx else None

    def _get_tags(self) -> list[str]:
        ctx = self._ctx()
        return list(ctx.record.tags) if ctx else []

    def _get_parameters(self) -> dict[str, Any]:
        ctx = self._ctx()
        return dict(ctx.parameters) if ctx else {}

    def _get_run_count(self) -> int:
        ctx = self._ctx()
        return ctx.record.run_count if ctx else 0


class DeploymentRuntime(_Namespace):
    """``flowplane.runtime.deployment``: id, name, version, flow_run_id, parameters (empty
    until deployments exist, unless overridden by environment variables)."""

    _group = "deployment"
    _casts = {"parameters": _json}

    def _get_id(self) -> str | None:
        ctx = current_frame().flow
        deployment = ctx.flow_run.deployment_id if ctx else None
        return str(deployment) if deployment else None

    def _get_name(self) -> str | None:
        return None

    def _get_version(self) -> str | None:
        return None

    def _get_flow_run_id(self) -> str | None:
        ctx = current_frame().flow
        return str(ctx.flow_run.id) if ctx and ctx.flow_run.deployment_id else None

    def _get_parameters(self) -> dict[str, Any]:
        ctx = current_frame().flow
        return dict(ctx.flow_run.parameters) if ctx and ctx.flow_run.deployment_id else {}


flow_run = FlowRunRuntime()
task_run = TaskRunRuntime()
deployment = DeploymentRuntime()
