"""Task runs in worker processes: the parent resolves inputs and ships what the child reports; the child only runs the task.

The child gets the task, its parameters and the run's identity (cloudpickled), runs
the same task logic as in-process runs with a writer that only collects, and sends
back the result together with the state events and log lines it produced. It never
talks to the API, so it never starts an embedded server of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any

import cloudpickle

from flowplane.core.states import StateType
from flowplane.exceptions import UpstreamTaskError
from flowplane.sdk._records import FlowRunRecord, TaskRunRecord, task_run_event
from flowplane.sdk.context import FlowRunContext, Frame, current_frame

if TYPE_CHECKING:
    from flowplane.sdk.tasks import Task


class _Collector:
    """A writer stand-in for the child: keeps events and logs to send back to the parent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []

    def emit_event(self, event: Any) -> None:
        self.events.append(task_run_event(event) if type(event) is tuple else event)

    def emit_log(self, log: dict[str, Any]) -> None:
        self.logs.append(log)

    def flush(self, timeout: float | None = None) -> bool:
        return True


_COPIED = (
    "id",
    "name",
    "task_key",
    "dynamic_key",
    "tags",
    "created",
    "policy",
    "task_version",
    "task_inputs",
)
_STATE = (
    "state_id",
    "state_type",
    "state_name",
    "state_ts",
    "state_message",
    "state_details",
    "run_count",
    "start_time",
    "end_time",
    "total_run_time",
    "expected_start_time",
)


def run_in_process(
    executor: concurrent.futures.ProcessPoolExecutor,
    task: Task[Any, Any],
    record: TaskRunRecord,
    parameters: dict[str, Any],
    wait_for: Any = None,
) -> TaskRunRecord:
    """Run a prepared task run in a worker process (called on a relay thread of the parent)."""
    from flowplane.sdk._task_engine import _resolve

    for future in record.upstream:
        future.wait()
    if record.needs_resolve:
        try:
            parameters = {k: _resolve(v) for k, v in parameters.items()}
        except UpstreamTaskError as exc:
            record.result = exc
            record.writer.emit_event(
                record.set_state(StateType.PENDING, "NotReady", message=str(exc))
            )
            return record
    frame = current_frame()
    flow_ctx = frame.flow
    flow_run = flow_ctx.flow_run if flow_ctx is not None else None
    flow_name = flow_ctx.flow.name if flow_ctx is not None else ""
    log_prints = bool(flow_ctx.log_prints) if flow_ctx is not None else False
    fields = {name: getattr(record, name) for name in _COPIED + _STATE}
    payload = cloudpickle.dumps(
        (task, fields, parameters, flow_run, flow_name, sorted(frame.tags), log_prints)
    )
    try:
        answer = executor.submit(_child_main, payload).result()
    except BaseException as exc:  # the worker died (or the pool broke): the run crashed
        record.result = exc
        record.writer.emit_event(
            record.set_state(
                StateType.CRASHED,
                "Crashed",
                message=f"The task's worker process failed: {type(exc).__name__}: {exc}",
            )
        )
        return record
    result, state, events, logs = cloudpickle.loads(answer)
    writer = record.writer
    for event in events:
        writer.emit_event(event)
    for log in logs:
        writer.emit_log(log)
    for name, value in state.items():
        setattr(record, name, value)
    record.final_state = None
    record.result = result
    return record


def _child_main(payload: bytes) -> bytes:
    """In the worker process: run the task and report what happened."""
    task, fields, parameters, flow_run, flow_name, tags, log_prints = cloudpickle.loads(payload)
    collector = _Collector()
    flow_record = FlowRunRecord(flow_run, flow_name, collector) if flow_run is not None else None  # type: ignore[arg-type]
    record = TaskRunRecord(
        fields["name"],
        fields["task_key"],
        fields["dynamic_key"],
        flow_record,
        fields["tags"],
        fields["policy"],
        fields["task_version"],
        fields["task_inputs"],
        collector,
    )
    for name in _COPIED + _STATE:
        setattr(record, name, fields[name])
    flow_ctx = None
    if flow_run is not None and flow_record is not None:
        from flowplane.sdk.flows import Flow

        placeholder = Flow(lambda: None, name=flow_name)
        flow_ctx = FlowRunContext(placeholder, flow_run, {}, None, log_prints, flow_record)  # type: ignore[arg-type]
    from flowplane.sdk._engine import drive_async, drive_sync
    from flowplane.sdk._task_engine import task_steps

    record.needs_resolve = False
    steps = task_steps(task, record, parameters, Frame(flow_ctx, None, frozenset(tags)))
    try:
        if task.isasync:
            asyncio.run(drive_async(steps))
        else:
            drive_sync(steps)
    except BaseException:  # a crash: its Crashed event is among the collected ones
        pass
    state = {name: getattr(record, name) for name in _STATE}
    try:
        return cloudpickle.dumps((record.result, state, collector.events, collector.logs))
    except Exception as exc:  # an unpicklable result or exception
        substitute = RuntimeError(
            f"The task's result could not be sent back: {exc}; result: {record.result!r}"
        )
        return cloudpickle.dumps((substitute, state, collector.events, collector.logs))
