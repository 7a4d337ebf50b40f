"""flowplane: workflow orchestration for Python, speaking Prefect's API with a fraction of its overhead.

The public names below load on first use, so ``import flowplane`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module defining it.
_EXPORTS: dict[str, str] = {
    # definitions
    "flow": "flowplane.sdk.flows",
    "Flow": "flowplane.sdk.flows",
    "task": "flowplane.sdk.tasks",
    "Task": "flowplane.sdk.tasks",
    "exponential_backoff": "flowplane.sdk.tasks",
    # states
    "State": "flowplane.sdk.states",
    "StateType": "flowplane.sdk.states",
    "Scheduled": "flowplane.sdk.states",
    "Late": "flowplane.sdk.states",
    "AwaitingRetry": "flowplane.sdk.states",
    "AwaitingConcurrencySlot": "flowplane.sdk.states",
    "Pending": "flowplane.sdk.states",
    "Running": "flowplane.sdk.states",
    "Retrying": "flowplane.sdk.states",
    "Completed": "flowplane.sdk.states",
    "Cached": "flowplane.sdk.states",
    "RolledBack": "flowplane.sdk.states",
    "Failed": "flowplane.sdk.states",
    "TimedOut": "flowplane.sdk.states",
    "Crashed": "flowplane.sdk.states",
    "Cancelling": "flowplane.sdk.states",
    "Cancelled": "flowplane.sdk.states",
    "Paused": "flowplane.sdk.states",
    "Suspended": "flowplane.sdk.states",
    # futures and runners
    "PrefectFuture": "flowplane.sdk.futures",
    "PrefectFutureList": "flowplane.sdk.futures",
    "wait": "flowplane.sdk.futures",
    "as_completed": "flowplane.sdk.futures",
    "ThreadPoolTaskRunner": "flowplane.sdk.task_runners",
    "ProcessPoolTaskRunner": "flowplane.sdk.task_runners",
    "unmapped": "flowplane.sdk.annotations",
    "allow_failure": "flowplane.sdk.annotations",
    "quote": "flowplane.sdk.annotations",
    "opaque": "flowplane.sdk.annotations",
    # context, logging, runtime
    "get_run_context": "flowplane.sdk.context",
    "tags": "flowplane.sdk.context",
    "FlowRunContext": "flowplane.sdk.context",
    "TaskRunContext": "flowplane.sdk.context",
    "get_run_logger": "flowplane.sdk.loggers",
    "runtime": "flowplane.runtime",
    # the API
    "get_client": "flowplane.client",
    # pause and resume
    "pause_flow_run": "flowplane.sdk.flow_runs",
    "apause_flow_run": "flowplane.sdk.flow_runs",
    "suspend_flow_run": "flowplane.sdk.flow_runs",
    "asuspend_flow_run": "flowplane.sdk.flow_runs",
    "resume_flow_run": "flowplane.sdk.flow_runs",
    "aresume_flow_run": "flowplane.sdk.flow_runs",
    # deployments: serve, deploy, run
    "serve": "flowplane.deploy.runner",
    "aserve": "flowplane.deploy.runner",
    "deploy": "flowplane.deploy.deployments",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'flowplane' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name.endswith("." + name) else getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from flowplane import runtime as runtime
    from flowplane.client import get_client as get_client
    from flowplane.deploy.deployments import deploy as deploy
    from flowplane.deploy.runner import aserve as aserve
    from flowplane.deploy.runner import serve as serve
    from flowplane.sdk.annotations import allow_failure as allow_failure
    from flowplane.sdk.annotations import opaque as opaque
    from flowplane.sdk.annotations import quote as quote
    from flowplane.sdk.annotations import unmapped as unmapped
    from flowplane.sdk.context import FlowRunContext as FlowRunContext
    from flowplane.sdk.context import TaskRunContext as TaskRunContext
    from flowplane.sdk.context import get_run_context as get_run_context
    from flowplane.sdk.context import tags as tags
    from flowplane.sdk.flow_runs import apause_flow_run as apause_flow_run
    from flowplane.sdk.flow_runs import aresume_flow_run as aresume_flow_run
    from flowplane.sdk.flow_runs import asuspend_flow_run as asuspend_flow_run
    from flowplane.sdk.flow_runs import pause_flow_run as pause_flow_run
    from flowplane.sdk.flow_runs import resume_flow_run as resume_flow_run
    from flowplane.sdk.flow_runs import suspend_flow_run as suspend_flow_run
    from flowplane.sdk.flows import Flow as Flow
    from flowplane.sdk.flows import flow as flow
    from flowplane.sdk.futures import PrefectFuture as PrefectFuture
    from flowplane.sdk.futures import PrefectFutureList as PrefectFutureList
    from flowplane.sdk.futures import as_completed as as_completed
    from flowplane.sdk.futures import wait as wait
    from flowplane.sdk.loggers import get_run_logger as get_run_logger
    from flowplane.sdk.states import AwaitingConcurrencySlot as AwaitingConcurrencySlot
    from flowplane.sdk.states import AwaitingRetry as AwaitingRetry
    from flowplane.sdk.states import Cached as Cached
    from flowplane.sdk.states import Cancelled as Cancelled
    from flowplane.sdk.states import Cancelling as Cancelling
    from flowplane.sdk.states import Completed as Completed
    from flowplane.sdk.states import Crashed as Crashed
    from flowplane.sdk.states import Failed as Failed
    from flowplane.sdk.states import Late as Late
    from flowplane.sdk.states import Paused as Paused
    from flowplane.sdk.states import Pending as Pending
    from flowplane.sdk.states import Retrying as Retrying
    from flowplane.sdk.states import RolledBack as RolledBack
    from flowplane.sdk.states import Running as Running
    from flowplane.sdk.states import Scheduled as Scheduled
    from flowplane.sdk.states import State as State
    from flowplane.sdk.states import StateType as StateType
    from flowplane.sdk.states import Suspended as Suspended
    from flowplane.sdk.states import TimedOut as TimedOut
    from flowplane.sdk.task_runners import ProcessPoolTaskRunner as ProcessPoolTaskRunner
    from flowplane.sdk.task_runners import ThreadPoolTaskRunner as ThreadPoolTaskRunner
    from flowplane.sdk.tasks import Task as Task
    from flowplane.sdk.tasks import exponential_backoff as exponential_backoff
    from flowplane.sdk.tasks import task as task
