"""The run context: one ContextVar holding the current frame (flow run, task run, tags), and ``get_run_context``.

A :class:`Frame` is immutable; entering a run or a ``tags()`` block sets a new
frame and leaving restores the previous one. Threads started by task runners copy
the submitting context, so a task running in a worker thread sees its flow run.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowplane.exceptions import MissingContextError

if TYPE_CHECKING:
    from flowplane.schemas.flow_runs import FlowRun
    from flowplane.schemas.task_runs import TaskRun
    from flowplane.sdk._records import FlowRunRecord, TaskRunRecord
    from flowplane.sdk.flows import Flow
    from flowplane.sdk.task_runners import TaskRunner
    from flowplane.sdk.tasks import Task

__all__ = [
    "Frame",
    "FlowRunContext",
    "TaskRunContext",
    "get_run_context",
    "tags",
    "current_frame",
]


class FlowRunContext:
    """What code inside a flow run can see about it.

    Attributes:
        flow: the flow definition being run.
        flow_run: the flow run as the API recorded it.
        parameters: the (validated) parameters of the run.
        task_runner: the task runner the flow's submitted tasks go to.
        log_prints: whether ``print`` calls become log lines.
        start_time: when the run started (aware UTC).
    """

    __slots__ = (
        "flow",
        "flow_run",
        "parameters",
        "task_runner",
        "log_prints",
        "start_time",
        "record",
        "observed_flow_pauses",
        "results",
    )

    def __init__(
        self,
        flow: Flow[Any, Any],
        flow_run: FlowRun,
        parameters: dict[str, Any],
        task_runner: TaskRunner,
        log_prints: bool,
        record: FlowRunRecord,
    ) -> None:
        self.flow = flow
        self.flow_run = flow_run
        self.parameters = parameters
        self.task_runner = task_runner
        self.log_prints = log_prints
        self.start_time = dt.datetime.now(dt.timezone.utc)
        #: The engine's bookkeeping for this run (writer, dynamic keys, client).
        self.record = record
        #: Pauses met so far in this attempt (their count is the default pause key).
        self.observed_flow_pauses: dict[str, int] = {}
        #: What its tasks persist by default (worked out by the first task that asks).
        self.results: Any = None

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The flow run context of the current frame, if any."""
        return _frame.get().flow

    def __repr__(self) -> str:
        return f"FlowRunContext(flow={self.flow.name!r}, flow_run={self.flow_run.id})"


class TaskRunContext:
    """What code inside a task run can see about it.

    Attributes:
        task: the task definition being run.
        task_run: the task run (a ``TaskRun`` wire model, built when first read).
        parameters: the task's resolved parameters.
        log_prints: whether ``print`` calls become log lines.
        start_time: when the run started (aware UTC).
    """

    __slots__ = ("task", "parameters", "log_prints", "record", "_task_run")

    def __init__(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        log_prints: bool,
        record: TaskRunRecord,
    ) -> None:
        self.task = task
        self.parameters = parameters
        self.log_prints = log_prints
        #: The engine's bookkeeping for this run.
        self.record = record
        self._task_run: TaskRun | None = None

    @property
    def start_time(self) -> dt.datetime:
        return self.record.start_time or self.record.created

    @property
    def task_run(self) -> TaskRun:
        """The task run as a wire model (built on first access; the hot path never pays for it)."""
        if self._task_run is None:
            self._task_run = self.record.to_task_run()
        return self._task_run

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The task run context of the current frame, if any."""
        return _frame.get().task

    def __repr__(self) -> str:
        return f"TaskRunContext(task={self.task.name!r}, task_run={self.record.id})"


class Frame:
    """The current flow run, task run and tags; immutable, replaced as a whole."""

    __slots__ = ("flow", "task", "tags")

    def __init__(
        self,
        flow: FlowRunContext | None = None,
        task: TaskRunContext | None = None,
        tags: frozenset[str] = frozenset(),
    ) -> None:
        self.flow = flow
        self.task = task
        self.tags = tags


_ROOT = Frame()
#: The one ContextVar of the SDK.
_frame: contextvars.ContextVar[Frame] = contextvars.ContextVar("flowplane.frame", default=_ROOT)


def current_frame() -> Frame:
    """The frame in effect here (the empty root frame outside any run)."""
    return _frame.get()


def enter(frame: Frame) -> contextvars.Token[Frame]:
    """Make ``frame`` current; pass the token to :func:`leave`."""
    return _frame.set(frame)


def leave(token: contextvars.Token[Frame]) -> None:
    """Restore the frame that was current before :func:`enter`."""
    try:
        _frame.reset(token)
    except ValueError:  # a token from another context (e.g. a generator resumed elsewhere)
        _frame.set(token.old_value if token.old_value is not token.MISSING else _ROOT)


def get_run_context() -> FlowRunContext | TaskRunContext:
    """The context of the run this code is part of: the task run's if any, else the flow run's.

    Returns:
        A :class:`TaskRunContext` inside a task, else a :class:`FlowRunContext`.

    Raises:
        MissingContextError: called outside any flow or task run.
    """
    frame = _frame.get()
    ctx = frame.task or frame.flow
    if ctx is None:
        raise MissingContextError(
            "There is no active flow or task run; get_run_context() works inside a @flow or @task."
        )
    return ctx


@contextmanager
def tags(*new_tags: str) -> Iterator[set[str]]:
    """Add tags to the flow and task runs started inside this block (nested blocks add up).

    Args:
        new_tags: the tags to add.

    Returns:
        A context manager yielding the set of tags now in effect.
    """
    frame = _frame.get()
    combined = frame.tags.union(new_tags)
    token = _frame.set(Frame(frame.flow, frame.task, combined))
    try:
        yield set(combined)
    finally:
        leave(token)
