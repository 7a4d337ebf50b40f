"""SDK states: constructors, results and exceptions, aggregation of returned states."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from flowplane import (
    AwaitingConcurrencySlot,
    AwaitingRetry,
    Cached,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Retrying,
    RolledBack,
    Running,
    Scheduled,
    State,
    StateType,
    Suspended,
    TimedOut,
)
from flowplane.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    MissingResult,
    PausedRun,
    UnfinishedRun,
)
from flowplane.schemas.states import State as WireState
from flowplane.sdk.states import return_value_to_state


@pytest.mark.parametrize(
    ("make", "type_", "name"),
    [
        (Scheduled, StateType.SCHEDULED, "Scheduled"),
        (Late, StateType.SCHEDULED, "Late"),
        (AwaitingRetry, StateType.SCHEDULED, "AwaitingRetry"),
        (AwaitingConcurrencySlot, StateType.SCHEDULED, "AwaitingConcurrencySlot"),
        (Pending, StateType.PENDING, "Pending"),
        (Running, StateType.RUNNING, "Running"),
        (Retrying, StateType.RUNNING, "Retrying"),
        (Completed, StateType.COMPLETED, "Completed"),
        (Cached, StateType.COMPLETED, "Cached"),
        (RolledBack, StateType.COMPLETED, "RolledBack"),
        (Failed, StateType.FAILED, "Failed"),
        (TimedOut, StateType.FAILED, "TimedOut"),
        (Crashed, StateType.CRASHED, "Crashed"),
        (Cancelling, StateType.CANCELLING, "Cancelling"),
        (Cancelled, StateType.CANCELLED, "Cancelled"),
        (Paused, StateType.PAUSED, "Paused"),
        (Suspended, StateType.PAUSED, "Suspended"),
    ],
)
def test_named_constructors(make: Any, type_: StateType, name: str) -> None:
    state = make()
    assert isinstance(state, State) and isinstance(state, WireState)
    assert (state.type, state.name) == (type_, name)
    assert state.timestamp.tzinfo is not None


def test_scheduled_states_carry_their_time_and_pauses_their_options() -> None:
    at = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert AwaitingRetry(scheduled_time=at).state_details.scheduled_time == at
    paused = Paused(timeout_seconds=60, pause_key="k")
    assert paused.state_details.pause_key == "k" and paused.state_details.pause_timeout is not None
    assert Suspended().state_details.pause_reschedule is True
    with pytest.raises(ValueError):
        Paused(timeout_seconds=1, pause_expiration_time=at)


def test_result_semantics() -> None:
    assert Completed(result=0).result() == 0
    assert Completed(data={"a": 1}).result() == {"a": 1}
    assert Completed(result=None).result() is None
    error = ValueError("x")
    failed = Failed(result=error)
    with pytest.raises(ValueError):
        failed.result()
    assert failed.result(raise_on_failure=False) is error
    with pytest.raises(FailedRun, match="went wrong"):
        Failed(message="went wrong").result()
    with pytest.raises(CrashedRun):
        Crashed().result()
    with pytest.raises(CancelledRun):
        Cancelled().result()
    with pytest.raises(PausedRun):
        Paused().result()
    with pytest.raises(UnfinishedRun):
        Running().result()
    with pytest.raises(MissingResult):
        State.from_wire(WireState(type=StateType.COMPLETED)).result()


def test_is_methods_and_display() -> None:
    state = Completed(message="done", result=3)
    assert state.is_completed() and state.is_final() and not state.is_failed()
    assert str(state) == "Completed(message='done')"
    assert str(TimedOut()) == "TimedOut(type=FAILED)"
    assert "result=3" in repr(state)


def test_results_are_never_serialized() -> None:
    state = Completed(result=object())
    dumped = state.model_dump(mode="json")
    assert dumped["data"] is None and "_result" not in dumped


def test_aggregating_returned_states() -> None:
    def run_state(s: State[Any]) -> State[Any]:
        s.state_details.task_run_id = __import__("uuid").uuid4()
        return s

    ok = run_state(Completed(result=1))
    bad = run_state(Failed(result=KeyError("k")))
    assert return_value_to_state([ok, ok]).is_completed()
    mixed = return_value_to_state([ok, bad])
    assert mixed.is_failed() and mixed.message == "1/2 states failed."
    with pytest.raises(KeyError):
        mixed.result()
    manual = Failed(message="mine")
    assert return_value_to_state(manual) is manual
    assert return_value_to_state(5).result() == 5
