"""Task runs: the run logic as one generator (see ``_engine``), and the entry points for call, submit and map.

The hot path (a sequential call inside a flow) binds the arguments, builds a
:class:`TaskRunRecord`, queues three event dicts (Pending, Running, Completed) on the
background writer and calls the function: no network, no database, no pydantic
models.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import threading
from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any

from flowplane.core.retries import delay_for_retry, jittered
from flowplane.core.states import StateType
from flowplane.exceptions import (
    MappingLengthMismatch,
    MappingMissingIterable,
    TaskRunTimeoutError,
    UpstreamTaskError,
)
from flowplane.schemas.states import State as WireState
from flowplane.sdk import _api, _tag_limits
from flowplane.sdk._callables import render_run_name
from flowplane.sdk._engine import Blocking, Invoke, Sleep, drive_async, drive_sync
from flowplane.sdk._records import TaskRunRecord, new_id, now, uuid_of
from flowplane.sdk._task_results import TaskResults, needs_results, note_settings
from flowplane.sdk.annotations import BaseAnnotation, allow_failure, opaque, quote, unmapped
from flowplane.sdk.context import FlowRunContext, Frame, TaskRunContext, current_frame
from flowplane.sdk.futures import PrefectFuture, PrefectFutureList
from flowplane.sdk.loggers import task_run_logger
from flowplane.sdk.transactions import get_transaction

if TYPE_CHECKING:
    from flowplane.sdk.task_runners import TaskRunner
    from flowplane.sdk.tasks import Task

_ATOMIC = frozenset({int, float, str, bool, type(None), bytes, complex})
_COLLECTIONS = (list, tuple, set, frozenset)
#: The inputs of a parameter that came from no other run (shared, never mutated).
_NO_INPUTS: Any = ()
_FINAL = (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)


# --- inputs: what a run's arguments came from -----------------------------------------------


def _scan(value: Any, inputs: list[dict[str, Any]], futures: list[PrefectFuture[Any]]) -> bool:
    """Find futures and states in ``value``; True if it needs resolving before the call."""
    kind = type(value)
    if kind in _ATOMIC:
        return False
    if isinstance(value, PrefectFuture):
        inputs.append({"input_type": "task_run", "id": value.task_run_id})
        futures.append(value)
        return True
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return True  # unwrapped at resolution, never looked into
        _scan(value[0], inputs, futures)
        return True
    if isinstance(value, WireState):
        run_id = value.state_details.task_run_id
        if run_id is not None:
            inputs.append({"input_type": "task_run", "id": run_id})
        return True
    if isinstance(value, _COLLECTIONS):
        found = False
        for item in value:
            if _scan(item, inputs, futures):
                found = True
        return found
    if isinstance(value, dict):
        found = False
        for key, item in value.items():
            if _scan(key, inputs, futures) | _scan(item, inputs, futures):
                found = True
        return found
    return False


def _upstream_value(state_type: StateType | None, result: Any, allow: bool, what: str) -> Any:
    if state_type is StateType.COMPLETED:
        return result
    if allow and state_type in _FINAL:
        return result
    raise UpstreamTaskError(
        f"Upstream task run {what} did not reach a 'COMPLETED' state (it is {state_type})."
    )


def _resolve(value: Any, allow: bool = False, traverse: bool = True) -> Any:
    """``value`` with futures and states replaced by their results (all futures are done)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if isinstance(value, PrefectFuture):
        record = value._record
        result = _upstream_value(record.state_type, record.result, allow, str(record.id))
        if record.final_state is not None and record.state_type is StateType.COMPLETED:
            result = record.final_state.result(raise_on_failure=False)
        return result
    if isinstance(value, WireState):
        from flowplane.sdk.states import State

        sdk_state = State.from_wire(value)
        if (
            not allow
            and not value.is_final()
            or (not allow and value.type is not StateType.COMPLETED)
        ):
            raise UpstreamTaskError(
                f"Upstream state {value.name} did not reach a 'COMPLETED' state."
            )
        return sdk_state.result(raise_on_failure=False)
    if isinstance(value, BaseAnnotation):
        if isinstance(value, quote):
            return value.unwrap()
        if isinstance(value, allow_failure):
            return _resolve(value[0], allow=True, traverse=traverse)
        if isinstance(value, opaque):
            return _resolve(value[0], allow=allow, traverse=False)
        return _resolve(value[0], allow=allow, traverse=traverse)
    if not traverse:
        return value
    if isinstance(value, _COLLECTIONS):
        items = [_resolve(item, allow) for item in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*items)
        return type(value)(items)
    if isinstance(value, dict):
        return {_resolve(k, allow): _resolve(v, allow) for k, v in value.items()}
    return value


# --- preparing a run (in the caller's thread) -----------------------------------------------


_standalone_writer_lock = threading.Lock()


def prepare(task: Task[Any, Any], parameters: dict[str, Any], wait_for: Any) -> TaskRunRecord:
    """Create the record of a new task run of ``task`` and queue its Pending event."""
    frame = current_frame()
    flow_ctx = frame.flow
    flow_record = flow_ctx.record if flow_ctx is not None else None
    if flow_record is not None:
        dynamic_key = flow_record.next_dynamic_key(task.task_key)
        writer = flow_record.writer
        default_name = f"{task.name}-{dynamic_key}"
    else:
        dynamic_key = f"{task.task_key}-{new_id().hex}"
        settings = _api.current_settings()
        writer = _api.writer(settings)
        note_settings(settings)
        default_name = task.name
    name = (
        render_run_name(task.task_run_name, parameters) if task.task_run_name else None
    ) or default_name
    tags = sorted(task.tags | frame.tags) if frame.tags else task.sorted_tags

    task_inputs: dict[str, list[dict[str, Any]]] = {}
    futures: list[PrefectFuture[Any]] = []
    needs_resolve = False
    for key, value in parameters.items():
        if type(value) in _ATOMIC:
            task_inputs[key] = _NO_INPUTS
            continue
        found: list[dict[str, Any]] = []
        if _scan(value, found, futures):
            needs_resolve = True
        task_inputs[key] = found or _NO_INPUTS
    if wait_for is not None:
        found = []
        _scan(
            list(wait_for) if isinstance(wait_for, (list, tuple, set)) else [wait_for],
            found,
            futures,
        )
        task_inputs["wait_for"] = found
    if frame.task is not None:
        task_inputs["__parents__"] = [{"input_type": "task_run", "id": frame.task.record.id}]

    record = TaskRunRecord(
        name,
        task.task_key,
        dynamic_key,
        flow_record,
        tags,
        task.policy,
        task.version,
        task_inputs,
        writer,
    )
    record.upstream = futures
    record.needs_resolve = needs_resolve
    writer.emit_event(record.set_state(StateType.PENDING, "Pending"))
    return record


# --- the run logic ------------------------------------------------------------------------


def task_steps(
    task: Task[Any, Any], record: TaskRunRecord, parameters: dict[str, Any], frame: Frame
) -> Generator[Any, Any, TaskRunRecord]:
    """One task run, from Pending to a final state (retries included), as engine actions."""
    emit = record.writer.emit_event
    futures = record.upstream
    if futures:
        pending = [f for f in futures if not f.done()]
        if pending:
            yield Blocking(lambda: [f.wait() for f in pending])
    if record.needs_resolve:
        try:
            parameters = {k: _resolve(v) for k, v in parameters.items()}
        except UpstreamTaskError as exc:
            record.result = exc
            emit(record.set_state(StateType.PENDING, "NotReady", message=str(exc)))
            return record
    args, kwargs = task.shape.unbind(parameters)
    flow_ctx = frame.flow
    log_prints = (
        task.log_prints if task.log_prints is not None else bool(flow_ctx and flow_ctx.log_prints)
    )
    ctx = TaskRunContext(task, parameters, log_prints, record)
    run_frame = Frame(flow_ctx, ctx, frame.tags)
    printing = None
    if log_prints:
        from flowplane.sdk.loggers import print_as_log

        printing = print_as_log()
        printing.__enter__()
    # Persistence, caching and transactions: only for runs that need them (see _task_results).
    keeper: TaskResults | None = None
    wants_results = needs_results(task, flow_ctx)
    tag_slots = None
    try:
        if record.tags and _tag_limits.maybe_limited(record.tags):
            try:
                tag_slots = yield Blocking(lambda: _tag_limits.acquire(record))
            except Exception as exc:  # the limit can never admit it (e.g. a limit of 0)
                _fail(task, record, ctx, flow_ctx, exc)
                return record
        while True:
            emit(
                record.set_state(
                    StateType.RUNNING, "Running" if record.run_count == 0 else "Retrying"
                )
            )
            if task.on_running_hooks:
                yield from _hooks(task.on_running_hooks, task, record, run_frame)
            if wants_results and keeper is None:
                try:
                    keeper = TaskResults(task, record, ctx, flow_ctx, get_transaction())
                    yield Blocking(keeper.begin)
                except Exception as exc:  # no key (a failing cache_key_fn), storage down...
                    if keeper is not None:
                        keeper.txn.close(True)  # gives back the key's lock, if taken
                    keeper = None
                    _fail(task, record, ctx, flow_ctx, exc)
                    return record
                keeper.txn.push()
                if keeper.cached is not None:
                    keeper.hit()
                    yield Blocking(partial(keeper.txn.close, False))
                    if task.on_completion_hooks:
                        yield from _hooks(task.on_completion_hooks, task, record, run_frame)
                    return record
            try:
                value = yield Invoke(
                    task.fn, args, kwargs, run_frame, task.timeout_seconds, TaskRunTimeoutError
                )
            except Exception as exc:
                delay = _retry_delay(task, record, exc)
                if delay is not None:
                    yield from _await_retry(task, record, ctx, flow_ctx, exc, delay)
                    continue
                if keeper is not None:
                    txn = keeper.txn
                    yield Blocking(partial(txn.close, True))
                _fail(task, record, ctx, flow_ctx, exc)
                if task.on_failure_hooks:
                    yield from _hooks(task.on_failure_hooks, task, record, run_frame)
                return record
            except BaseException as exc:  # interrupts, signals, cancellation: the run crashed
                if keeper is not None:
                    keeper.txn.close(True)
                record.result = exc
                emit(record.set_state(StateType.CRASHED, "Crashed", message=_crash_message(exc)))
                raise
            if isinstance(value, (WireState, PrefectFuture)) or (
                type(value) in (list, tuple, set)
                and value
                and isinstance(next(iter(value)), (WireState, PrefectFuture))
            ):
                if keeper is not None:
                    txn = keeper.txn
                    yield Blocking(partial(txn.close, False))
                _finish_with_state(record, value)
            elif keeper is not None:
                try:
                    metadata = keeper.stage(value)
                    txn = keeper.txn
                    yield Blocking(partial(txn.close, False))  # commits here unless nested
                except Exception as exc:
                    _fail(task, record, ctx, flow_ctx, exc)
                    if task.on_failure_hooks:
                        yield from _hooks(task.on_failure_hooks, task, record, run_frame)
                    return record
                keeper.complete(value, metadata)
            else:
                record.result = value
                emit(record.set_state(StateType.COMPLETED, "Completed"))
            hooks = (
                task.on_completion_hooks
                if record.state_type is StateType.COMPLETED
                else task.on_failure_hooks
            )
            if hooks:
                yield from _hooks(hooks, task, record, run_frame)
            return record
    finally:
        if keeper is not None:
            keeper.txn.reset()
        if tag_slots is not None:
            _tag_limits.release(tag_slots, task_run_logger(ctx, flow_ctx).warning)
        if printing is not None:
            printing.__exit__(None, None, None)


def _retry_delay(task: Task[Any, Any], record: TaskRunRecord, exc: BaseException) -> float | None:
    """Seconds to wait before retrying, or None when the run must not retry."""
    if record.run_count > task.retries:
        return None
    if task.retry_condition_fn is not None:
        from flowplane.sdk.states import Failed

        state = Failed(message=str(exc), result=exc)
        try:
            if not task.retry_condition_fn(task, record.to_task_run(), state):
                return None
        except Exception:
            return None
    delay = delay_for_retry(task.retry_delays, record.run_count)
    return jittered(delay, task.retry_jitter_factor, random.random())


def _await_retry(
    task: Task[Any, Any],
    record: TaskRunRecord,
    ctx: TaskRunContext,
    flow_ctx: FlowRunContext | None,
    exc: BaseException,
    delay: float,
) -> Generator[Any, Any, None]:
    attempt = record.run_count
    logger = task_run_logger(ctx, flow_ctx)
    when = f"{delay:g} second(s) from now" if delay else "immediately"
    logger.info(
        "Task run failed with exception: %r - Retry %d/%d will start %s",
        exc,
        attempt,
        task.retries,
        when,
    )
    if delay > 0:
        scheduled = now() + dt.timedelta(seconds=delay)
        record.writer.emit_event(
            record.set_state(
                StateType.SCHEDULED,
                "AwaitingRetry",
                message=f"Retry {attempt}/{task.retries}: {type(exc).__name__}: {exc}",
                details={"scheduled_time": scheduled.isoformat()},
            )
        )
        yield Sleep(delay)


def _fail(
    task: Task[Any, Any],
    record: TaskRunRecord,
    ctx: TaskRunContext,
    flow_ctx: FlowRunContext | None,
    exc: BaseException,
) -> None:
    record.result = exc
    if isinstance(exc, TaskRunTimeoutError):
        name = "TimedOut"
        message = f"Task run exceeded timeout of {task.timeout_seconds:g} second(s)"
    else:
        name = "Failed"
        message = f"Task run encountered an exception {type(exc).__name__}: {exc}"
    record.writer.emit_event(record.set_state(StateType.FAILED, name, message=message))
    suffix = " - Retries are exhausted" if task.retries else ""
    task_run_logger(ctx, flow_ctx).error(
        "Task run failed with exception: %r%s",
        exc,
        suffix,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def _finish_with_state(record: TaskRunRecord, value: Any) -> None:
    """The run returned a state or futures: its final state follows from them."""
    from flowplane.sdk.futures import resolve_futures_to_states
    from flowplane.sdk.states import return_value_to_state

    state = return_value_to_state(resolve_futures_to_states(value))
    record.result = state._value()
    record.writer.emit_event(record.set_state(state.type, state.name or "", message=state.message))
    if record.state_id is not None:
        state.id = uuid_of(record.state_id)
    state.timestamp = record.state_ts
    state.state_details.task_run_id = record.id
    state.state_details.flow_run_id = record.flow_run.id if record.flow_run is not None else None
    record.final_state = state


def _crash_message(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "Execution was aborted by an interrupt signal."
    if isinstance(exc, asyncio.CancelledError):
        return "Execution was cancelled by the runtime environment."
    return f"Execution was interrupted by an unexpected exception: {type(exc).__name__}: {exc}"


def _hooks(
    hooks: list[Callable[..., Any]], definition: Any, record: TaskRunRecord, frame: Frame
) -> Generator[Any, Any, None]:
    state = record.state()
    task_run = record.to_task_run()
    for hook in hooks:
        try:
            yield Invoke(hook, (definition, task_run, state), {}, frame)
        except Exception:
            import logging

            logging.getLogger("flowplane.task_runs").exception(
                "An error was encountered while running hook %r", getattr(hook, "__name__", hook)
            )


# --- entry points -----------------------------------------------------------------------------


def _outcome(record: TaskRunRecord, return_state: bool) -> Any:
    if return_state:
        return record.state()
    if record.state_type is StateType.COMPLETED and record.final_state is None:
        return record.result
    if record.state_type is StateType.PENDING and isinstance(record.result, UpstreamTaskError):
        raise record.result
    return record.state().result()


def call_task(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``task(*args, **kwargs)``: run now; the result (or a coroutine, for async tasks)."""
    return_state = kwargs.pop("return_state", False) if "return_state" in kwargs else False
    wait_for = kwargs.pop("wait_for", None) if "wait_for" in kwargs else None
    parameters = task.shape.bind(args, kwargs)
    if task.isasync:
        return _call_async(task, parameters, wait_for, return_state)
    record = prepare(task, parameters, wait_for)
    drive_sync(task_steps(task, record, parameters, current_frame()))
    return _outcome(record, return_state)


async def _call_async(
    task: Task[Any, Any], parameters: dict[str, Any], wait_for: Any, return_state: bool
) -> Any:
    record = prepare(task, parameters, wait_for)
    await drive_async(task_steps(task, record, parameters, current_frame()))
    return _outcome(record, return_state)


def run_prepared(
    task: Task[Any, Any], record: TaskRunRecord, parameters: dict[str, Any], wait_for: Any = None
) -> TaskRunRecord:
    """Run a prepared task run to its end in this thread (what a task runner's worker calls)."""
    steps = task_steps(task, record, parameters, current_frame())
    if task.isasync:
        _run_on_thread_loop(drive_async(steps))
    else:
        drive_sync(steps)
    return record


#: Each pool thread's event loop for async task runs (made on first use, closed by
#: :func:`close_thread_loop` when the thread's drain job ends).
_thread_loops = threading.local()


def _run_on_thread_loop(coro: Any) -> Any:
    """``asyncio.run(coro)`` on a loop this thread keeps between runs (a new loop per run
    costs more than most async tasks). Tasks the run leaves behind are cancelled as
    ``asyncio.run`` would."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = _thread_loops.loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        _cancel_left_behind(loop)


def _cancel_left_behind(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for left in tasks:
        left.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def close_thread_loop() -> None:
    """Close this thread's event loop for async task runs, if it made one."""
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None:
        return
    _thread_loops.loop = None
    try:
        _cancel_left_behind(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


_default_runner: TaskRunner | None = None


def _runner() -> TaskRunner:
    """The flow run's task runner, or (outside flows) a process-wide thread pool."""
    global _default_runner
    flow_ctx = current_frame().flow
    if flow_ctx is not None:
        return flow_ctx.task_runner
    if _default_runner is None:
        with _standalone_writer_lock:
            if _default_runner is None:
                from flowplane.sdk.task_runners import ThreadPoolTaskRunner

                _default_runner = ThreadPoolTaskRunner()
                _default_runner.__enter__()
    return _default_runner


def submit_task(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> PrefectFuture[Any]:
    """``task.submit(*args, **kwargs)``: start the run on the task runner, return its future."""
    kwargs.pop("return_state", None)
    wait_for = kwargs.pop("wait_for", None)
    parameters = task.shape.bind(args, kwargs)
    record = prepare(task, parameters, wait_for)
    return _runner().submit(task, record, parameters, wait_for)


def _is_iterable(value: Any) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


def map_task(
    task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> PrefectFutureList[Any]:
    """``task.map(...)``: one submitted run per element of the iterable arguments."""
    kwargs.pop("return_state", None)
    kwargs.pop("deferred", None)
    wait_for = kwargs.pop("wait_for", None)
    try:
        bound = task.shape.signature.bind_partial(*args, **kwargs)
    except TypeError as exc:
        from flowplane.exceptions import ParameterBindError

        raise ParameterBindError(
            f"Error binding parameters for map of {task.name!r}: {exc}"
        ) from None
    parameters = dict(bound.arguments)
    iterables: dict[str, list[Any]] = {}
    static: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, PrefectFuture):
            value = value.result()  # the iterable itself comes from an upstream run
        if isinstance(value, unmapped):
            static[key] = value.unwrap()
        elif isinstance(value, (allow_failure, quote)) or not _is_iterable(value):
            static[key] = value
        else:
            iterables[key] = list(value)
    if not iterables:
        raise MappingMissingIterable(
            f"No iterable parameters were received by {task.name!r}.map; parameters: {sorted(parameters)}"
        )
    lengths = {len(v) for v in iterables.values()}
    if len(lengths) > 1:
        raise MappingLengthMismatch(
            f"Received iterable parameters with different lengths for {task.name!r}.map: "
            + ", ".join(f"{k}={len(v)}" for k, v in iterables.items())
        )
    count = lengths.pop()
    runner = _runner()
    futures: PrefectFutureList[Any] = PrefectFutureList()
    shape = task.shape
    submit = runner.submit
    append = futures.append
    if shape._plain is not None and tuple(parameters) == shape._plain:
        # Every parameter given, none special: an item's parameters are the bound ones
        # with the mapped values swapped in (what binding them again would give).
        names = tuple(parameters)
        columns = [iterables[k] if k in iterables else [static[k]] * count for k in names]
        for row in zip(*columns, strict=True):
            item_parameters = dict(zip(names, row, strict=True))
            append(
                submit(task, prepare(task, item_parameters, wait_for), item_parameters, wait_for)
            )
        return futures
    for i in range(count):
        item = dict(static)
        for key, values in iterables.items():
            item[key] = values[i]
        call_args, call_kwargs = shape.unbind(item)
        item_parameters = shape.bind(tuple(call_args), call_kwargs)
        record = prepare(task, item_parameters, wait_for)
        append(submit(task, record, item_parameters, wait_for))
    return futures
