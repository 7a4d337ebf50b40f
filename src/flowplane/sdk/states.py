"""SDK states: the wire ``State`` with behaviour (``result()``, ``is_*()``) and an in-memory result, plus the named constructors.

An SDK :class:`State` *is* a :class:`flowplane.schemas.states.State` (it subclasses
it), so it goes over the wire as one; what it adds stays in the process: the run's
Python result (or exception) in a private attribute that is never serialized.
"""

from __future__ import annotations

import datetime as dt
import traceback
from collections import Counter
from collections.abc import Iterable
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from pydantic import PrivateAttr

from flowplane.core.states import StateType, is_terminal
from flowplane.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    MissingResult,
    PausedRun,
    UnfinishedRun,
)
from flowplane.schemas.states import State as WireState
from flowplane.schemas.states import StateDetails

R = TypeVar("R")

__all__ = [
    "State",
    "StateType",
    "StateDetails",
    "StateGroup",
    "Scheduled",
    "Late",
    "AwaitingRetry",
    "AwaitingConcurrencySlot",
    "Pending",
    "Running",
    "Retrying",
    "Completed",
    "Cached",
    "RolledBack",
    "Failed",
    "TimedOut",
    "Crashed",
    "Cancelling",
    "Cancelled",
    "Paused",
    "Suspended",
    "get_state_exception",
    "raise_state_exception",
    "get_state_result",
    "is_state_iterable",
    "exception_to_failed_state",
    "exception_to_crashed_state",
    "return_value_to_state",
    "format_exception",
]


class _Unset:
    """ "No result attached" (pydantic copies private defaults; this one copies to itself)."""

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: Any) -> _Unset:
        return self

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class State(WireState, Generic[R]):
    """A run's state; ``result()`` gives what the run returned (or raises what it raised)."""

    _result: Any = PrivateAttr(default=_UNSET)

    # --- type checks ---

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return is_terminal(self.type)

    # --- results ---

    @property
    def has_result(self) -> bool:
        """Whether this state carries a result in memory."""
        return self._result is not _UNSET or self.data is not None

    def _value(self) -> Any:
        return self._result if self._result is not _UNSET else self.data

    def with_result(self, value: Any) -> State[R]:
        """Attach ``value`` as this state's in-memory result; returns the state."""
        self._result = value
        return self

    def result(self, raise_on_failure: bool = True) -> R:
        """What the run returned.

        Args:
            raise_on_failure: for a failed, crashed or cancelled run, raise its exception
                (the default) instead of returning it.

        Returns:
            The run's return value (the exception, for a failed run and
            ``raise_on_failure=False``).

        Raises:
            PausedRun: the run is paused.
            UnfinishedRun: the run has not finished.
            MissingResult: the state has no result in memory (e.g. read back from the API).
            BaseException: the run's own exception, when it failed and ``raise_on_failure``.
        """
        return get_state_result(self, raise_on_failure=raise_on_failure)

    def __repr__(self) -> str:
        shown = f", result={self._value()!r}" if self.has_result else ""
        return f"{self.name}(message={self.message!r}, type={self.type.value}{shown})"

    def __str__(self) -> str:
        parts = []
        if self.message:
            parts.append(f"message={self.message!r}")
        if self.name != self.type.value.capitalize():
            parts.append(f"type={self.type.value}")
        return f"{self.name}({', '.join(parts)})"

    @classmethod
    def from_wire(cls, state: WireState) -> State[Any]:
        """An SDK state from a state read from the API (without a result)."""
        if isinstance(state, State):
            return state
        return cls.model_validate(state, from_attributes=True)


# --- constructors ---------------------------------------------------------------------


def _make(
    type_: StateType,
    name: str,
    cls: type[State[Any]] | None,
    kwargs: dict[str, Any],
    **details: Any,
) -> State[Any]:
    cls = cls or State
    result = kwargs.pop("result", _UNSET)
    state_details = kwargs.pop("state_details", None)
    if state_details is None:
        state_details = StateDetails(**{k: v for k, v in details.items() if v is not None})
    else:
        state_details = StateDetails.model_validate(state_details)
        for key, value in details.items():
            if value is not None:
                setattr(state_details, key, value)
    kwargs.setdefault("name", name)
    state = cls(type=type_, state_details=state_details, **kwargs)
    if result is not _UNSET:
        state._result = result
    return state


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def Scheduled(
    cls: type[State[Any]] | None = None,
    scheduled_time: dt.datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A Scheduled state (to start at ``scheduled_time``, default now)."""
    return _make(
        StateType.SCHEDULED, "Scheduled", cls, kwargs, scheduled_time=scheduled_time or _now()
    )


def Late(
    cls: type[State[Any]] | None = None,
    scheduled_time: dt.datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A Late state: scheduled, and past its start time."""
    return _make(StateType.SCHEDULED, "Late", cls, kwargs, scheduled_time=scheduled_time or _now())


def AwaitingRetry(
    cls: type[State[Any]] | None = None,
    scheduled_time: dt.datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """An AwaitingRetry state: scheduled to run again at ``scheduled_time``."""
    return _make(
        StateType.SCHEDULED, "AwaitingRetry", cls, kwargs, scheduled_time=scheduled_time or _now()
    )


def AwaitingConcurrencySlot(
    cls: type[State[Any]] | None = None,
    scheduled_time: dt.datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """An AwaitingConcurrencySlot state: scheduled, waiting for a concurrency slot."""
    return _make(
        StateType.SCHEDULED,
        "AwaitingConcurrencySlot",
        cls,
        kwargs,
        scheduled_time=scheduled_time or _now(),
    )


def Pending(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Pending state."""
    return _make(StateType.PENDING, "Pending", cls, kwargs)


def Running(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Running state."""
    return _make(StateType.RUNNING, "Running", cls, kwargs)


def Retrying(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Retrying state: running again after a failure."""
    return _make(StateType.RUNNING, "Retrying", cls, kwargs)


def Completed(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Completed state (``result=`` or ``data=`` sets what ``result()`` returns)."""
    return _make(StateType.COMPLETED, "Completed", cls, kwargs)


def Cached(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Cached state: completed with a result reused from an earlier run."""
    return _make(StateType.COMPLETED, "Cached", cls, kwargs)


def RolledBack(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A RolledBack state: completed, then undone by a transaction."""
    return _make(StateType.COMPLETED, "RolledBack", cls, kwargs)


def Failed(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Failed state."""
    return _make(StateType.FAILED, "Failed", cls, kwargs)


def TimedOut(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A TimedOut state: failed by exceeding its timeout."""
    return _make(StateType.FAILED, "TimedOut", cls, kwargs)


def Crashed(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Crashed state: ended by something outside user code."""
    return _make(StateType.CRASHED, "Crashed", cls, kwargs)


def Cancelling(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Cancelling state."""
    return _make(StateType.CANCELLING, "Cancelling", cls, kwargs)


def Cancelled(cls: type[State[Any]] | None = None, **kwargs: Any) -> State[Any]:
    """A Cancelled state."""
    return _make(StateType.CANCELLED, "Cancelled", cls, kwargs)


def Paused(
    cls: type[State[Any]] | None = None,
    timeout_seconds: int | None = None,
    pause_expiration_time: dt.datetime | None = None,
    reschedule: bool = False,
    pause_key: str | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A Paused state, optionally expiring after ``timeout_seconds`` or at ``pause_expiration_time``.

    Raises:
        ValueError: both ``timeout_seconds`` and ``pause_expiration_time`` are given.
    """
    if timeout_seconds is not None and pause_expiration_time is not None:
        raise ValueError("Give timeout_seconds or pause_expiration_time, not both.")
    if timeout_seconds is not None:
        pause_expiration_time = _now() + dt.timedelta(seconds=timeout_seconds)
    return _make(
        StateType.PAUSED,
        kwargs.pop("name", "Paused"),
        cls,
        kwargs,
        pause_timeout=pause_expiration_time,
        pause_reschedule=reschedule or None,
        pause_key=pause_key,
    )


def Suspended(
    cls: type[State[Any]] | None = None,
    timeout_seconds: int | None = None,
    pause_expiration_time: dt.datetime | None = None,
    pause_key: str | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A Suspended state: paused, to be rescheduled when resumed."""
    return Paused(
        cls,
        timeout_seconds=timeout_seconds,
        pause_expiration_time=pause_expiration_time,
        reschedule=True,
        pause_key=pause_key,
        name="Suspended",
        **kwargs,
    )


# --- groups and aggregation ------------------------------------------------------------


def is_state_iterable(obj: Any) -> bool:
    """Whether ``obj`` is a non-empty list, tuple or set of states only."""
    return (
        isinstance(obj, (list, tuple, set, frozenset))
        and len(obj) > 0
        and all(isinstance(o, WireState) for o in obj)
    )


class StateGroup:
    """Counts over several states, to derive one aggregate state."""

    def __init__(self, states: Iterable[WireState]) -> None:
        self.states = list(states)
        self.type_counts = Counter(s.type for s in self.states)
        self.total_count = len(self.states)

    @property
    def fail_count(self) -> int:
        return self.type_counts[StateType.FAILED] + self.type_counts[StateType.CRASHED]

    def all_completed(self) -> bool:
        return self.type_counts[StateType.COMPLETED] == self.total_count

    def any_cancelled(self) -> bool:
        return self.type_counts[StateType.CANCELLED] > 0

    def any_failed(self) -> bool:
        return self.fail_count > 0

    def any_paused(self) -> bool:
        return self.type_counts[StateType.PAUSED] > 0

    def all_final(self) -> bool:
        return all(is_terminal(s.type) for s in self.states)

    def counts_message(self) -> str:
        return ", ".join(f"{t.value!r}={n}" for t, n in self.type_counts.items())


def _is_manual(state: WireState) -> bool:
    details = state.state_details
    return details.flow_run_id is None and details.task_run_id is None


def return_value_to_state(retval: Any) -> State[Any]:
    """The final state a run takes from what its function returned.

    A state made by hand (no run ids) is used as given; another run's state, or a
    list/tuple/set of them, gives Completed when all completed and Failed (or
    Cancelled/Paused) otherwise, with the states as the result; anything else is a
    Completed state with it as the result.

    Args:
        retval: the return value, with futures already resolved to states.

    Returns:
        The state for the run.
    """
    if isinstance(retval, WireState) and _is_manual(retval):
        return State.from_wire(retval) if not isinstance(retval, State) else retval
    if isinstance(retval, WireState) or is_state_iterable(retval):
        items = [retval] if isinstance(retval, WireState) else list(retval)
        group = StateGroup(items)
        if group.all_completed():
            type_, message = StateType.COMPLETED, "All states completed."
        elif group.any_cancelled():
            n = group.type_counts[StateType.CANCELLED]
            type_, message = StateType.CANCELLED, f"{n}/{group.total_count} states cancelled."
        elif group.any_paused():
            n = group.type_counts[StateType.PAUSED]
            type_, message = StateType.PAUSED, f"{n}/{group.total_count} states paused."
        elif group.any_failed():
            type_ = StateType.FAILED
            message = f"{group.fail_count}/{group.total_count} states failed."
        elif not group.all_final():
            not_final = sum(1 for s in items if not is_terminal(s.type))
            type_ = StateType.FAILED
            message = f"{not_final}/{group.total_count} states are not final."
        else:
            type_, message = StateType.FAILED, "Given states: " + group.counts_message()
        state: State[Any] = State(type=type_, message=message)
        state._result = retval
        return state
    return Completed(result=retval)


# --- exceptions ------------------------------------------------------------------------


def format_exception(exc: BaseException) -> str:
    """``exc`` with its traceback, as text."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def exception_to_failed_state(
    exc: BaseException | None = None, message: str | None = None, **kwargs: Any
) -> State[Any]:
    """A Failed state carrying ``exc``, with a message naming it."""
    if message is None:
        message = f"Run failed. {type(exc).__name__}: {exc}" if exc is not None else "Run failed."
    return Failed(message=message, result=exc, **kwargs)


def exception_to_crashed_state(exc: BaseException, **kwargs: Any) -> State[Any]:
    """A Crashed state for an exception raised outside user code (an interrupt, a signal...)."""
    if isinstance(exc, KeyboardInterrupt):
        message = "Execution was aborted by an interrupt signal."
    elif isinstance(exc, SystemExit):
        message = "Execution was aborted by Python system exit call."
    else:
        name = type(exc).__name__
        message = f"Execution was interrupted by an unexpected exception: {name}: {exc}"
    return Crashed(message=message, result=exc, **kwargs)


def get_state_exception(state: WireState) -> BaseException:
    """The exception a failed, crashed or cancelled state stands for.

    Returns:
        The run's own exception when attached; for a state wrapping other states, the
        first failure's; otherwise a :class:`FailedRun`, :class:`CrashedRun` or
        :class:`CancelledRun` carrying the state's message.

    Raises:
        ValueError: the state is not failed, crashed or cancelled.
    """
    if state.type is StateType.FAILED:
        wrapper: type[Exception] = FailedRun
        default = "Run failed."
    elif state.type is StateType.CRASHED:
        wrapper, default = CrashedRun, "Run crashed."
    elif state.type is StateType.CANCELLED:
        wrapper, default = CancelledRun, "Run cancelled."
    else:
        raise ValueError(f"Expected a failed, crashed or cancelled state, got {state!r}.")
    value = state._value() if isinstance(state, State) else state.data
    if isinstance(value, BaseException):
        return value
    if isinstance(value, WireState):
        return get_state_exception(value)
    if is_state_iterable(value):
        for inner in cast("Iterable[WireState]", value):
            if inner.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
                return get_state_exception(inner)
    if isinstance(value, str):
        return wrapper(value)
    return wrapper(state.message or default)


def raise_state_exception(state: WireState) -> None:
    """Raise the exception of a failed, crashed or cancelled state (nothing for other states)."""
    if state.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        raise get_state_exception(state)


def get_state_result(state: WireState, raise_on_failure: bool = True) -> Any:
    """The result of ``state``; see :meth:`State.result`."""
    if state.type is StateType.PAUSED:
        raise PausedRun("Run is paused, its result is not available.")
    if not is_terminal(state.type):
        raise UnfinishedRun(
            f"Run is in {state.type.value} state ({state.name}), its result is not available."
        )
    failed = state.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)
    if raise_on_failure and failed:
        raise get_state_exception(state)
    value = state._value() if isinstance(state, State) else state.data
    if type(value) is dict and "storage_key" in value and "serializer" in value:
        from flowplane.sdk.results import load_result  # a persisted result: load it

        value = load_result(value)
        if isinstance(state, State):
            state._result = value
        return value
    if value is _UNSET or value is None and not (isinstance(state, State) and state.has_result):
        if failed:
            return get_state_exception(state)
        raise MissingResult(
            "State data is missing: the result of a run is kept in the process that ran it, "
            "and this state has none (was it read back from the API?)."
        )
    if isinstance(value, WireState) and not _is_manual(value):
        return get_state_result(value, raise_on_failure=raise_on_failure)
    return value


def state_for_run(state: State[Any], *, flow_run_id: UUID | None, task_run_id: UUID | None) -> None:
    """Stamp a state with the run it belongs to (so it no longer counts as "made by hand")."""
    state.state_details.flow_run_id = flow_run_id
    state.state_details.task_run_id = task_run_id
