"""Pausing, suspending and resuming flow runs: ``pause_flow_run``, ``suspend_flow_run``, ``resume_flow_run`` (and their async faces).

A pause keeps the flow's process waiting: the run moves to Paused and the call
returns once someone resumes it (``resume_flow_run``, ``flowplane flow-run resume``,
or any Prefect client), with the typed input it waited for. A pause that is not
resumed in time fails the run: the server's pause-expiration service moves it to
Failed and the waiting call raises :class:`~flowplane.exceptions.FlowPauseTimeout`.

A suspension ends the process's execution of the run (state Suspended); resuming
reschedules it, so the run must have a deployment to run it again. Deployments do
not exist in this release yet, so suspending a run started by calling a flow is
refused by the server, exactly as Prefect refuses it for a run without a deployment.

Each operation is written once as engine steps (see :mod:`flowplane.sdk._engine`)
and driven by a sync or an async driver.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Generator
from typing import Any, TypeVar, overload
from uuid import UUID, uuid4

from flowplane.core.states import StateType
from flowplane.exceptions import (
    CancelledRun,
    FlowPauseTimeout,
    NotPausedError,
    ObjectAlreadyExists,
    Pause,
)
from flowplane.sdk._engine import Api, Blocking, Sleep
from flowplane.sdk.context import FlowRunContext, TaskRunContext
from flowplane.sdk.input import (
    Keyset,
    arun_steps,
    keyset_from_paused_state,
    poll_delays,
    run_input_subclass_from_type,
    run_steps,
)

__all__ = [
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "pause_flow_run",
    "resume_flow_run",
    "suspend_flow_run",
]

T = TypeVar("T")
Steps = Generator[Any, Any, Any]

NEVER_RESUMED = "Flow run was paused and never resumed."
_CANCELLED = (StateType.CANCELLING, StateType.CANCELLED)
_CANCELLED_WHILE_PAUSED = {
    "type": "CANCELLED",
    "name": "Cancelled",
    "message": "The flow run was cancelled while paused.",
}


def _expiration(timeout: float | None) -> dt.datetime | None:
    if timeout is None:
        return None
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=timeout)


def _next_pause_key(context: FlowRunContext) -> str:
    count = context.observed_flow_pauses.get("counter", 0) + 1
    context.observed_flow_pauses["counter"] = count
    return str(count)


def _propose(flow_run_id: UUID, state: Any, verb: str) -> Steps:
    """Propose ``state``; the state the run is in afterwards (ABORT is a RuntimeError)."""
    from flowplane.sdk._flow_engine import _state_json

    while True:
        result = yield Api("set_flow_run_state", flow_run_id, _state_json(state))
        status = result.status.value
        if status == "WAIT":
            yield Sleep(float(getattr(result.details, "delay_seconds", 0) or 0))
            continue
        if status == "ABORT":
            reason = getattr(result.details, "reason", None) or "the orchestrator refused"
            raise RuntimeError(f"Flow run cannot be {verb}: {reason}")
        return result.state


def _waiting_state(wait_for_input: Any, state: Any) -> tuple[type[Any] | None, Keyset | None]:
    """The input class to load and the keyset it lives under (set on ``state``)."""
    if wait_for_input is None:
        return None, None
    input_cls = run_input_subclass_from_type(wait_for_input)
    keyset = keyset_from_paused_state(state)
    state.state_details.run_input_keyset = keyset
    return input_cls, keyset


def _save_schema(input_cls: Any, keyset: Keyset, flow_run_id: UUID) -> Steps:
    """Store the input's schema (and description); kept if this keyset already has one
    (the same pause in an earlier attempt of the run)."""
    try:
        yield from input_cls.save_steps(keyset, flow_run_id)
    except ObjectAlreadyExists:
        pass


def _pause_steps(
    context: FlowRunContext,
    wait_for_input: Any,
    timeout: float,
    poll_interval: float,
    key: str | None,
) -> Steps:
    from flowplane.sdk.loggers import get_run_logger
    from flowplane.sdk.states import Paused

    flow_run_id = context.flow_run.id
    logger = get_run_logger(context)
    pause_key = key or _next_pause_key(context)
    logger.info("Pausing flow, execution will continue when this flow run is resumed.")
    proposed = Paused(
        pause_expiration_time=_expiration(timeout), reschedule=False, pause_key=pause_key
    )
    input_cls, keyset = _waiting_state(wait_for_input, proposed)
    if input_cls is not None:
        # Stored before the run is Paused, so whoever sees it paused can resume it at once.
        assert keyset is not None
        yield from _save_schema(input_cls, keyset, flow_run_id)
    # Whoever looks at the paused run sees the lines and task runs written so far.
    yield Blocking(context.record.writer.flush)
    state = yield from _propose(flow_run_id, proposed, "paused")
    if state is not None and state.type is StateType.RUNNING:
        # Refused because this pause already fired (and was resumed) in this attempt.
        if input_cls is not None:
            assert keyset is not None
            return (yield from input_cls.load_steps(keyset, flow_run_id))
        return None
    if state is None or state.type is not StateType.PAUSED:
        raise RuntimeError(
            f"Flow run cannot be paused. Received non-paused state from API: {state}"
        )

    deadline = time.monotonic() + timeout
    delays = poll_delays(poll_interval)
    while True:
        left = deadline - time.monotonic()
        if left > 0:
            yield Sleep(min(next(delays), left))
        flow_run = yield Api("read_flow_run", flow_run_id)
        current = flow_run.state
        if current is not None and current.type is StateType.RUNNING:
            logger.info("Resuming flow run execution!")
            context.flow_run = flow_run
            if input_cls is not None:
                assert keyset is not None
                return (yield from input_cls.load_steps(keyset, flow_run_id))
            return None
        if current is not None and current.type in _CANCELLED:
            # Cancelled while paused: nothing else runs it, so this process finishes the job.
            if current.type is StateType.CANCELLING:
                yield Api("set_flow_run_state", flow_run_id, _CANCELLED_WHILE_PAUSED)
            raise CancelledRun("The flow run was cancelled while paused.")
        if current is None or current.type is not StateType.PAUSED or left <= 0:
            # Timed out here, or the pause-expiration service (or someone) ended the pause.
            if current is not None and current.type is not StateType.PAUSED:
                if current.type is not StateType.FAILED:
                    raise RuntimeError(f"Flow run left its pause for state {current.name!r}.")
            raise FlowPauseTimeout(NEVER_RESUMED)


def _current_flow_run(verb: str) -> FlowRunContext:
    context = FlowRunContext.get()
    if context is None:
        raise RuntimeError(f"Flow runs can only be {verb} from within a flow run.")
    return context


@overload
def pause_flow_run(
    wait_for_input: None = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> None: ...


@overload
def pause_flow_run(
    wait_for_input: type[T],
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> T: ...


def pause_flow_run(
    wait_for_input: Any = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Pause the current flow run until it is resumed; call it inside a flow (or its task).

    Task runs already started keep running; the flow's code waits here.

    Args:
        wait_for_input: a ``RunInput`` subclass, a pydantic model or any type pydantic
            validates. The run then resumes only with input matching it (checked by the
            server against the schema stored now), and that input is returned.
        timeout: seconds to wait for the resume; after that the run fails.
        poll_interval: the longest wait between two checks whether the run was resumed
            (the first checks come sooner, so a quick resume is seen quickly).
        key: the pause's key (default: its count among this run's pauses). A run
            pauses once per key: a pause whose key already fired does not wait again.

    Returns:
        The input, when ``wait_for_input`` is given; else None.

    Raises:
        FlowPauseTimeout: the run was not resumed within ``timeout`` seconds.
        RuntimeError: called outside a flow run, or the server refused the pause.
    """
    context = _current_flow_run("paused")
    return run_steps(_pause_steps(context, wait_for_input, timeout, poll_interval, key))


async def apause_flow_run(
    wait_for_input: Any = None,
    timeout: float = 3600,
    poll_interval: float = 10,
    key: str | None = None,
) -> Any:
    """Async :func:`pause_flow_run` (for ``async`` flows)."""
    context = _current_flow_run("paused")
    return await arun_steps(_pause_steps(context, wait_for_input, timeout, poll_interval, key))


def _suspend_steps(
    wait_for_input: Any, flow_run_id: UUID | None, timeout: float | None, key: str | None
) -> Steps:
    from flowplane.sdk.states import Suspended

    context = FlowRunContext.get()
    current = flow_run_id is None
    if current:
        if TaskRunContext.get() is not None:
            raise RuntimeError("Cannot suspend task runs.")
        if context is None:
            raise RuntimeError("Flow runs can only be suspended from within a flow run.")
        from flowplane.sdk.loggers import get_run_logger

        get_run_logger(context).info(
            "Suspending flow run, execution will be rescheduled when this flow run is resumed."
        )
        run_id = context.flow_run.id
        pause_key = key or _next_pause_key(context)
        yield Blocking(context.record.writer.flush)
    else:
        assert flow_run_id is not None
        run_id = flow_run_id if isinstance(flow_run_id, UUID) else UUID(str(flow_run_id))
        # Another run's own pauses count from 1; a random key cannot collide with them.
        pause_key = key or str(uuid4())
    proposed = Suspended(pause_expiration_time=_expiration(timeout), pause_key=pause_key)
    input_cls, keyset = _waiting_state(wait_for_input, proposed)
    if input_cls is not None:
        assert keyset is not None
        yield from _save_schema(input_cls, keyset, run_id)
    state = yield from _propose(run_id, proposed, "suspended")
    if state is not None and state.type is StateType.RUNNING:
        # This suspension already fired and the run was resumed: carry on.
        if input_cls is not None:
            assert keyset is not None
            return (yield from input_cls.load_steps(keyset, run_id))
        return None
    if state is None or state.type is not StateType.PAUSED:
        raise RuntimeError(
            f"Flow run cannot be suspended. Received unexpected state from API: {state}"
        )
    if current:
        from flowplane.sdk.states import State

        raise Pause("The flow run was suspended.", state=State.from_wire(state))
    return None


def suspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: UUID | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Suspend a flow run: it moves to Suspended and, if it is the current run, this process stops running it.

    Resuming a suspended run reschedules it, which needs a deployment to run it
    again; the server refuses to suspend a run without one.

    Args:
        wait_for_input: the type of input the run waits for (see :func:`pause_flow_run`).
        flow_run_id: the run to suspend (default: the current flow run).
        timeout: seconds until the suspension expires and the run fails (default: never).
        key: the suspension's key (default: its count among the run's pauses, or random
            for another run).

    Returns:
        None (for another run); the current run does not return: it raises ``Pause``.

    Raises:
        Pause: the current run was suspended (a control-flow signal the engine handles).
        RuntimeError: called inside a task, outside a flow run without ``flow_run_id``,
            or the server refused (e.g. the run has no deployment).
    """
    return run_steps(_suspend_steps(wait_for_input, flow_run_id, timeout, key))


async def asuspend_flow_run(
    wait_for_input: Any = None,
    flow_run_id: UUID | None = None,
    timeout: float | None = None,
    key: str | None = None,
) -> Any:
    """Async :func:`suspend_flow_run`."""
    return await arun_steps(_suspend_steps(wait_for_input, flow_run_id, timeout, key))


def _resume_steps(flow_run_id: UUID | str, run_input: dict[str, Any] | None) -> Steps:
    run_id = flow_run_id if isinstance(flow_run_id, UUID) else UUID(str(flow_run_id))
    flow_run = yield Api("read_flow_run", run_id)
    if flow_run.state is None or flow_run.state.type is not StateType.PAUSED:
        raise NotPausedError("Cannot resume a run that isn't paused!")
    result = yield Api("resume_flow_run", run_id, run_input=run_input)
    status = result.status.value
    reason = getattr(result.details, "reason", None)
    if status == "ABORT":  # it left its pause since we looked
        raise NotPausedError("Cannot resume a run that isn't paused!")
    if status == "REJECT":
        if result.state is not None and result.state.type is StateType.FAILED:
            raise FlowPauseTimeout("Flow run can no longer be resumed.")
        raise RuntimeError(f"Cannot resume this run: {reason}")


def resume_flow_run(flow_run_id: UUID | str, run_input: dict[str, Any] | None = None) -> None:
    """Resume a paused flow run, with the input it waits for if it waits for some.

    Args:
        flow_run_id: the paused run.
        run_input: the input (JSON object); the server validates it against the schema
            the paused run stored.

    Raises:
        NotPausedError: the run is not paused.
        FlowPauseTimeout: the pause timed out; the run can no longer resume.
        RuntimeError: the server refused, e.g. the input does not match the schema
            (the message says why).
        ObjectNotFound: no flow run has that id.
    """
    run_steps(_resume_steps(flow_run_id, run_input))


async def aresume_flow_run(
    flow_run_id: UUID | str, run_input: dict[str, Any] | None = None
) -> None:
    """Async :func:`resume_flow_run`."""
    await arun_steps(_resume_steps(flow_run_id, run_input))
