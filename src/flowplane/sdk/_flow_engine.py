"""Flow runs: the run logic as one generator (see ``_engine``), and ``call_flow`` for sync and async flows.

A flow run costs two requests when nothing goes wrong: it is created directly in
Running (the server accepts an initial Running state) and proposes its final state
at the end; then the background writer is flushed, so its task runs' events and its
log lines are in the API before the call returns.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
from collections.abc import Generator
from functools import partial
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from flowplane.core.states import StateType
from flowplane.exceptions import (
    FlowRunTimeoutError,
    ObjectNotFound,
    RunNotStarted,
    TerminationSignal,
)
from flowplane.sdk import _api, heartbeats
from flowplane.sdk._callables import render_run_name
from flowplane.sdk._engine import Api, Blocking, Invoke, Sleep, drive_async, drive_sync
from flowplane.sdk._records import FlowRunRecord, new_id, now
from flowplane.sdk._task_engine import _ATOMIC, _resolve, _scan
from flowplane.sdk._task_results import persist_flow_result, persists
from flowplane.sdk.context import FlowRunContext, Frame, current_frame
from flowplane.sdk.loggers import flow_run_logger
from flowplane.sdk.states import (
    State,
    exception_to_crashed_state,
    format_exception,
    return_value_to_state,
)

if TYPE_CHECKING:
    from flowplane.schemas.flow_runs import FlowRun
    from flowplane.schemas.states import OrchestrationResult
    from flowplane.sdk.flows import Flow
    from flowplane.settings import Settings

#: Flow ids by (API target, flow name): registering a flow is done once per process.
_flow_ids: dict[tuple[str, str], UUID] = {}


def jsonable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values; one that cannot be serialized becomes ``"<TypeName>"``."""
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        if type(value) in _ATOMIC and type(value) is not bytes:
            out[key] = value
            continue
        try:
            out[key] = orjson.loads(orjson.dumps(value, default=_json_default))
        except TypeError:
            out[key] = f"<{type(value).__name__}>"
    return out


def _json_default(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError


def _state_json(state: State[Any]) -> dict[str, Any]:
    details = state.state_details.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    out: dict[str, Any] = {"type": state.type.value, "name": state.name, "state_details": details}
    if state.message:
        out["message"] = state.message
    if type(state.data) is dict and "storage_key" in state.data:
        out["data"] = state.data  # a persisted result's metadata, for other processes
    return out


def _adopt(proposed: State[Any], recorded: Any) -> State[Any]:
    """The proposed state, stamped with the id and time the API recorded."""
    if recorded is not None:
        proposed.id = recorded.id
        proposed.timestamp = recorded.timestamp
        proposed.state_details = recorded.state_details
    return proposed


class _Run:
    """Per-call facts the run logic needs besides the flow and its parameters."""

    __slots__ = ("settings", "parent", "return_state", "wait_for", "logger", "existing")

    def __init__(
        self,
        settings: Settings,
        parent: Frame,
        return_state: bool,
        wait_for: Any,
        existing: FlowRun | None = None,
    ) -> None:
        self.settings = settings
        self.parent = parent
        self.return_state = return_state
        self.wait_for = wait_for
        self.logger: Any = None
        #: A flow run that already exists (a deployment's), already moved to Running.
        self.existing = existing


def flow_steps(
    flow: Flow[Any, Any], parameters: dict[str, Any], run: _Run
) -> Generator[Any, Any, State[Any]]:
    """One flow run from creation to its final state (retries included), as engine actions."""
    parent = run.parent
    # Upstream futures (a subflow called with futures) resolve before the run starts.
    futures: list[Any] = []
    needs = any(type(v) not in _ATOMIC and _scan(v, [], futures) for v in parameters.values())
    if run.wait_for is not None:
        _scan(list(run.wait_for), [], futures)
    if futures:
        yield Blocking(lambda: [f.wait() for f in futures])
    if needs:
        parameters = {k: _resolve(v) for k, v in parameters.items()}

    if run.existing is not None:
        flow_run = run.existing
    else:
        target = _api.target_key(run.settings)
        parent_task_run_id: UUID | None = None
        if parent.flow is not None:
            parent_task_run_id = yield from _create_parent_task_run(flow, parent)
        flow_run = yield from _create_flow_run(flow, parameters, run, target, parent_task_run_id)

    record = FlowRunRecord(flow_run, flow.name, _api.writer(run.settings))
    beat = heartbeats.start(run.settings.flows_heartbeat_frequency, record, flow_run)
    log_prints = (
        flow.log_prints
        if flow.log_prints is not None
        else bool(parent.flow is not None and parent.flow.log_prints)
    )
    logger = None
    try:
        while True:
            runner = _task_runner(flow)
            ctx = FlowRunContext(flow, flow_run, parameters, runner, log_prints, record)
            frame = Frame(ctx, None, parent.tags)
            logger = run.logger = flow_run_logger(ctx)
            if record.run_count == 1 and flow_run.run_count <= 1:
                logger.info("Beginning flow run %r for flow %r", flow_run.name, flow.name)
            if flow.on_running_hooks:
                running = (
                    State.from_wire(flow_run.state)
                    if flow_run.state
                    else State(type=StateType.RUNNING)
                )
                yield from _hooks(flow.on_running_hooks, flow, flow_run, running, frame)
            state = yield from _attempt(flow, parameters, runner, frame, log_prints, logger)
            if state.type is StateType.COMPLETED and persists(flow, run.settings):
                state = yield Blocking(partial(persist_flow_result, flow, state, run.settings))
            answer = yield from _propose(flow_run.id, state)
            if answer is None:
                break  # accepted
            final, retry_at = answer
            if retry_at is None:
                state = final
                break
            # The server scheduled a retry (AwaitingRetry): wait for it, then run again.
            delay = max((retry_at - now()).total_seconds(), 0.0)
            logger.info(
                "Received non-final state 'AwaitingRetry' when proposing final state %r and will "
                "attempt to run again...",
                state.name,
            )
            if delay:
                yield Sleep(delay)
            yield from _start_retry(flow_run.id)
            record.run_count += 1
        hooks = {
            StateType.COMPLETED: flow.on_completion_hooks,
            StateType.FAILED: flow.on_failure_hooks,
            StateType.CANCELLED: flow.on_cancellation_hooks,
            StateType.CRASHED: flow.on_crashed_hooks,
        }.get(state.type)
        if hooks:
            yield from _hooks(hooks, flow, flow_run, state, Frame(ctx, None, parent.tags))
        if state.type is StateType.COMPLETED:
            logger.info("Finished in state %s", state)
        else:
            logger.error("Finished in state %s", state)
        yield Blocking(record.writer.flush)
        return state
    except BaseException as exc:  # interrupted (Ctrl-C, SIGTERM, cancellation): the run crashed
        from flowplane.exceptions import Pause

        if isinstance(exc, Pause):
            # Suspended: the API recorded it; this process stops running the run.
            record.writer.flush(10.0)
            raise
        crashed = exception_to_crashed_state(exc)
        if isinstance(exc, TerminationSignal):
            # Stopped because someone cancelled the run (its worker terminates the
            # process): it ends Cancelled, not Crashed.
            try:
                current = yield Api("read_flow_run", flow_run.id)
                if current.state is not None and current.state.type is StateType.CANCELLING:
                    crashed = State(
                        type=StateType.CANCELLED,
                        name="Cancelled",
                        message="The flow run was cancelled: its process was stopped.",
                    )
            except Exception:
                pass
        try:
            yield Api("set_flow_run_state", flow_run.id, _state_json(crashed), force=True)
        except BaseException:
            pass
        if logger is not None:
            if crashed.type is StateType.CANCELLED:
                logger.info("Cancelled: the flow run's process was stopped.")
            else:
                logger.error("Crash detected! %s", crashed.message)
        if flow.on_crashed_hooks and crashed.type is StateType.CRASHED:
            try:
                yield from _hooks(
                    flow.on_crashed_hooks, flow, flow_run, crashed, Frame(None, None, parent.tags)
                )
            except BaseException:
                pass
        record.writer.flush(10.0)
        raise
    finally:
        heartbeats.stop(beat)


def _task_runner(flow: Flow[Any, Any]) -> Any:
    if flow.task_runner is not None:
        return flow.task_runner.duplicate()
    from flowplane.sdk.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner()


def _attempt(
    flow: Flow[Any, Any],
    parameters: dict[str, Any],
    runner: Any,
    frame: Frame,
    log_prints: bool,
    logger: Any,
) -> Generator[Any, Any, State[Any]]:
    """Run the flow's function once; the state it ends in."""
    from flowplane.sdk.futures import resolve_futures_to_states
    from flowplane.sdk.states import Failed, TimedOut

    args, kwargs = flow.shape.unbind(parameters)
    printing = None
    if log_prints:
        from flowplane.sdk.loggers import print_as_log

        printing = print_as_log()
        printing.__enter__()
    runner.__enter__()
    error: Exception | None = None
    try:
        try:
            value = yield Invoke(
                flow.fn, args, kwargs, frame, flow.timeout_seconds, FlowRunTimeoutError
            )
        except Exception as exc:
            error = exc
        finally:
            if printing is not None:
                printing.__exit__(None, None, None)
        # Runs the flow submitted and did not wait for finish before the flow's state is set.
        yield Blocking(lambda: runner.__exit__(None, None, None))
        if error is None:
            if _holds_futures(value):
                value = yield Blocking(lambda: resolve_futures_to_states(value))
            return return_value_to_state(value)
    except Exception as exc:  # resolving the return value failed
        error = exc
    if isinstance(error, FlowRunTimeoutError):
        message = f"Flow run exceeded timeout of {flow.timeout_seconds:g} second(s)"
        logger.error(message)
        return TimedOut(message=message, result=error)
    assert error is not None
    logger.error(
        "Encountered exception during execution: %r",
        error,
        exc_info=(type(error), error, error.__traceback__),
    )
    return Failed(
        message=f"Flow run encountered an exception: {type(error).__name__}: {error}", result=error
    )


def _holds_futures(value: Any) -> bool:
    from flowplane.sdk.futures import PrefectFuture

    if isinstance(value, PrefectFuture):
        return True
    if isinstance(value, (list, tuple, set)):
        return any(isinstance(v, PrefectFuture) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, PrefectFuture) for v in value.values())
    return False


def _propose(
    flow_run_id: UUID, state: State[Any]
) -> Generator[Any, Any, tuple[State[Any], dt.datetime | None] | None]:
    """Propose the final state. None if accepted; else the state to take and a retry time."""
    while True:
        result: OrchestrationResult = yield Api(
            "set_flow_run_state", flow_run_id, _state_json(state)
        )
        status = result.status.value
        if status == "ACCEPT":
            _adopt(state, result.state)
            return None
        if status == "WAIT":
            yield Sleep(float(getattr(result.details, "delay_seconds", 0) or 0))
            continue
        recorded = result.state
        if status == "REJECT" and recorded is not None and recorded.type is StateType.SCHEDULED:
            return state, recorded.state_details.scheduled_time or now()
        if recorded is None:
            return state, None  # ABORT: nothing recorded; the run ends as it stands
        other = State.from_wire(recorded)
        other._result = state._value()
        return other, None


def _start_retry(flow_run_id: UUID) -> Generator[Any, Any, None]:
    while True:
        result = yield Api(
            "set_flow_run_state", flow_run_id, {"type": "RUNNING", "name": "Running"}
        )
        if result.status.value == "WAIT":
            yield Sleep(float(getattr(result.details, "delay_seconds", 0) or 0))
            continue
        return


def _create_parent_task_run(flow: Flow[Any, Any], parent: Frame) -> Generator[Any, Any, UUID]:
    """The task run standing for a subflow in its parent flow run (it must exist first)."""
    from flowplane.sdk.tasks import task_key_for

    parent_ctx = parent.flow
    assert parent_ctx is not None
    key = task_key_for(flow.fn)
    dynamic_key = parent_ctx.record.next_dynamic_key(key)
    inputs: dict[str, Any] = {}
    if parent.task is not None:
        inputs["__parents__"] = [{"input_type": "task_run", "id": str(parent.task.record.id)}]
    task_run = yield Api(
        "create_task_run",
        flow_run_id=parent_ctx.flow_run.id,
        dynamic_key=dynamic_key,
        id=new_id(),
        name=f"{flow.name}-{dynamic_key}",
        task_key=key,
        task_version=flow.version,
        extra_tags=sorted(parent.tags),
        task_inputs=inputs,
    )
    return task_run.id  # type: ignore[no-any-return]


def _create_flow_run(
    flow: Flow[Any, Any],
    parameters: dict[str, Any],
    run: _Run,
    target: str,
    parent_task_run_id: UUID | None,
) -> Generator[Any, Any, FlowRun]:
    name = render_run_name(flow.flow_run_name, parameters) if flow.flow_run_name else None
    for attempt in (1, 2):
        key = (target, flow.name)
        flow_id = _flow_ids.get(key)
        if flow_id is None:
            flow_id = yield Api("create_flow_from_name", flow.name)
            _flow_ids[key] = flow_id
        try:
            flow_run: FlowRun = yield Api(
                "create_flow_run",
                flow_id=flow_id,
                name=name,
                parameters=jsonable_parameters(parameters),
                tags=sorted(run.parent.tags),
                parent_task_run_id=parent_task_run_id,
                state={"type": "RUNNING", "name": "Running"},
                flow_version=flow.version,
                empirical_policy={
                    "retries": flow.retries,
                    "retry_delay": int(flow.retry_delay_seconds),
                },
            )
            return flow_run
        except ObjectNotFound:
            _flow_ids.pop(key, None)  # the flow is gone (a new database): register it again
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _hooks(
    hooks: list[Any], flow: Flow[Any, Any], flow_run: Any, state: State[Any], frame: Frame
) -> Generator[Any, Any, None]:
    for hook in hooks:
        try:
            yield Invoke(hook, (flow, flow_run, state), {}, frame)
        except Exception:
            import logging

            logging.getLogger("flowplane.flow_runs").exception(
                "An error was encountered while running hook %r", getattr(hook, "__name__", hook)
            )


# --- entry points -------------------------------------------------------------------------


def _prepare(
    flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], _Run]:
    return_state = bool(kwargs.pop("return_state", False))
    wait_for = kwargs.pop("wait_for", None)
    parameters = flow.shape.bind(args, kwargs)
    if flow.should_validate_parameters:
        parameters = _validated(flow, parameters)
    return parameters, _Run(_api.current_settings(), current_frame(), return_state, wait_for)


def _validated(flow: Flow[Any, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Validate, leaving futures, states and annotations for the engine to resolve."""
    plain = {k: v for k, v in parameters.items() if type(v) in _ATOMIC or not _scan(v, [], [])}
    if len(plain) == len(parameters):
        return flow.shape.validate(parameters, f"Flow run of {flow.name!r}")
    validated = flow.shape.validate(plain, f"Flow run of {flow.name!r}") if plain else {}
    return {k: validated.get(k, v) if k in plain else v for k, v in parameters.items()}


def _outcome(state: State[Any], return_state: bool) -> Any:
    if return_state:
        return state
    return state.result()


def call_flow(flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``flow(*args, **kwargs)``: run the flow now (a coroutine for async flows).

    Raises:
        ParameterBindError, ParameterTypeError: bad arguments; no run was created.
    """
    parameters, run = _prepare(flow, args, kwargs)
    if flow.isasync:
        return _call_async(flow, parameters, run)
    client, owned = _api.sync_client(run.settings)
    try:
        with _termination_guard(run.parent):
            state = drive_sync(flow_steps(flow, parameters, run), client)
    finally:
        if owned:
            client.close()
    return _outcome(state, run.return_state)


async def _call_async(flow: Flow[Any, Any], parameters: dict[str, Any], run: _Run) -> Any:
    client = _api.async_client(run.settings)
    try:
        with _termination_guard(run.parent):
            state = await drive_async(flow_steps(flow, parameters, run), client)
    finally:
        await client.aclose()
    return _outcome(state, run.return_state)


def start_existing_flow_run(
    flow_run_id: UUID,
) -> Generator[Any, Any, tuple[Any, State[Any] | None]]:
    """Move an existing run (Scheduled, Pending) to Running.

    Returns ``(flow_run, None)`` once the API accepted Running (waiting while it says
    WAIT, e.g. for a deployment's concurrency slot), or ``(None, state)`` with the state
    the run keeps when the API refused (it was cancelled, or another process runs it).
    """
    while True:
        result: OrchestrationResult = yield Api(
            "set_flow_run_state", flow_run_id, {"type": "RUNNING", "name": "Running"}
        )
        status = result.status.value
        if status == "ACCEPT":
            flow_run = yield Api("read_flow_run", flow_run_id)
            return flow_run, None
        if status == "WAIT":
            yield Sleep(float(getattr(result.details, "delay_seconds", 0) or 0) or 1.0)
            continue
        recorded = result.state
        if recorded is None:
            current = yield Api("read_flow_run", flow_run_id)
            recorded = current.state
        return None, State.from_wire(recorded)


def existing_flow_run_steps(
    flow: Flow[Any, Any], flow_run_id: UUID, run: _Run
) -> Generator[Any, Any, State[Any]]:
    """Run ``flow`` as the existing flow run ``flow_run_id`` with the parameters stored on it."""
    flow_run, refused = yield from start_existing_flow_run(flow_run_id)
    if refused is not None:
        raise RunNotStarted(
            f"Flow run {flow_run_id} was not started: it is {refused.name}", refused
        )
    try:
        parameters = flow.validate_parameters(dict(flow_run.parameters or {}))
    except Exception as exc:  # the stored parameters do not fit this flow
        from flowplane.sdk.states import Failed

        failed = Failed(message=f"Validation of flow parameters failed with error: {exc}")
        yield Api("set_flow_run_state", flow_run.id, _state_json(failed), force=True)
        return failed
    run.existing = flow_run
    state = yield from flow_steps(flow, parameters, run)
    return state


def run_existing_flow_run(flow: Flow[Any, Any], flow_run_id: UUID) -> State[Any]:
    """Execute the existing flow run ``flow_run_id`` here with ``flow``; its final state.

    This is what a worker's process does for a deployment's run.

    Raises:
        RunNotStarted: the API did not let the run start (it is cancelled, finished or
            already running elsewhere); nothing ran.
    """
    run = _Run(_api.current_settings(), current_frame(), True, None)
    if flow.isasync:
        import asyncio

        async def go() -> State[Any]:
            client = _api.async_client(run.settings)
            try:
                return await drive_async(existing_flow_run_steps(flow, flow_run_id, run), client)  # type: ignore[no-any-return]
            finally:
                await client.aclose()

        with _termination_guard(run.parent):
            return asyncio.run(go())
    client, owned = _api.sync_client(run.settings)
    try:
        with _termination_guard(run.parent):
            return drive_sync(existing_flow_run_steps(flow, flow_run_id, run), client)  # type: ignore[no-any-return]
    finally:
        if owned:
            client.close()


class _termination_guard:
    """In the main thread's outermost flow run, SIGTERM raises TerminationSignal in the flow.

    The run then records Crashed and flushes its logs; afterwards the previous handler
    is restored and the signal delivered again, so the process ends as it would have.
    """

    def __init__(self, parent: Frame) -> None:
        self.active = (
            parent.flow is None
            and parent.task is None
            and threading.current_thread() is threading.main_thread()
            and hasattr(signal, "SIGTERM")
        )
        self.previous: Any = None

    def __enter__(self) -> None:
        if not self.active:
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous not in (signal.SIG_DFL, None) and previous is not signal.default_int_handler:
            self.active = False  # the application handles SIGTERM itself
            return
        self.previous = previous

        def on_term(signum: int, frame: Any) -> None:
            raise TerminationSignal(signum)

        signal.signal(signal.SIGTERM, on_term)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.active:
            return
        signal.signal(
            signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL
        )
        if isinstance(exc, TerminationSignal):
            # Dying by the signal skips atexit: stop an embedded server now, so that its
            # services write what they were given (the task runs recorded from events).
            import sys

            embedded = sys.modules.get("flowplane.embedded")
            if embedded is not None:
                embedded.shutdown_embedded_servers()
            os.kill(os.getpid(), exc.signal)


__all__ = [
    "call_flow",
    "flow_steps",
    "format_exception",
    "jsonable_parameters",
    "run_existing_flow_run",
    "start_existing_flow_run",
]
