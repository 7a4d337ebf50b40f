"""The orchestration rules and bookkeeping, table-driven: no I/O, the clock is passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from flowplane.core.states import StateType as T
from flowplane.core.transitions import (
    RunFacts,
    RunKind,
    SetStateStatus,
    StateFacts,
    bookkeeping,
    decide,
    estimated_run_time,
    estimated_start_time_delta,
    retry_delay_for,
    wait_seconds,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
EARLIER = NOW - timedelta(seconds=30)

ACCEPT, REJECT, ABORT, WAIT = (
    SetStateStatus.ACCEPT,
    SetStateStatus.REJECT,
    SetStateStatus.ABORT,
    SetStateStatus.WAIT,
)


def s(type_: T, name: str | None = None, at: datetime = EARLIER, **details: object) -> StateFacts:
    """A state of ``type_`` (named after it unless ``name``)."""
    return StateFacts(type=type_, name=name or type_.value.title(), timestamp=at, **details)  # type: ignore[arg-type]


def flow(state: StateFacts | None, **facts: object) -> RunFacts:
    return RunFacts(kind=RunKind.FLOW, state=state, **facts)  # type: ignore[arg-type]


def task(state: StateFacts | None, **facts: object) -> RunFacts:
    return RunFacts(kind=RunKind.TASK, state=state, **facts)  # type: ignore[arg-type]


# (case id, run, proposed, force, expected status, expected written (type, name) or None)
CASES = [
    ("first state is accepted", flow(None), s(T.RUNNING), False, ACCEPT, (T.RUNNING, "Running")),
    (
        "pending to running",
        flow(s(T.PENDING)),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "running to completed",
        flow(s(T.RUNNING)),
        s(T.COMPLETED, at=NOW),
        False,
        ACCEPT,
        (T.COMPLETED, "Completed"),
    ),
    *[
        (
            f"{terminal.value} stays terminal",
            flow(s(terminal)),
            s(T.RUNNING, at=NOW),
            False,
            ABORT,
            None,
        )
        for terminal in (T.COMPLETED, T.FAILED, T.CANCELLED, T.CRASHED)
    ],
    (
        "force leaves a terminal state",
        flow(s(T.COMPLETED)),
        s(T.RUNNING, at=NOW),
        True,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "terminal to terminal aborts too",
        flow(s(T.FAILED)),
        s(T.COMPLETED, at=NOW),
        False,
        ABORT,
        None,
    ),
    ("cancelling cannot run", flow(s(T.CANCELLING)), s(T.RUNNING, at=NOW), False, REJECT, None),
    ("cancelling cannot pend", flow(s(T.CANCELLING)), s(T.PENDING, at=NOW), False, REJECT, None),
    (
        "cancelling may be cancelled",
        flow(s(T.CANCELLING)),
        s(T.CANCELLED, at=NOW),
        False,
        ACCEPT,
        (T.CANCELLED, "Cancelled"),
    ),
    (
        "cancelling may fail",
        flow(s(T.CANCELLING)),
        s(T.FAILED, at=NOW),
        False,
        ACCEPT,
        (T.FAILED, "Failed"),
    ),
    (
        "duplicate running is rejected",
        flow(s(T.RUNNING)),
        s(T.RUNNING, at=NOW),
        False,
        REJECT,
        None,
    ),
    ("second submission aborts", flow(s(T.PENDING)), s(T.PENDING, at=NOW), False, ABORT, None),
    ("pending after running aborts", flow(s(T.RUNNING)), s(T.PENDING, at=NOW), False, ABORT, None),
    (
        "named pending sub-state follows pending",
        flow(s(T.PENDING)),
        s(T.PENDING, "Submitting", at=NOW),
        False,
        ACCEPT,
        (T.PENDING, "Submitting"),
    ),
    (
        "the same sub-state twice aborts",
        flow(s(T.PENDING, "Submitting")),
        s(T.PENDING, "Submitting", at=NOW),
        False,
        ABORT,
        None,
    ),
    (
        "task cannot start in a pending flow run",
        task(s(T.PENDING), flow_run_state_type=T.PENDING),
        s(T.RUNNING, at=NOW),
        False,
        ABORT,
        None,
    ),
    (
        "task cannot start in a paused flow run",
        task(s(T.PENDING), flow_run_state_type=T.PAUSED),
        s(T.RUNNING, at=NOW),
        False,
        ABORT,
        None,
    ),
    (
        "task starts in a running flow run",
        task(s(T.PENDING), flow_run_state_type=T.RUNNING),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "task outside any flow run starts",
        task(s(T.PENDING)),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "flow start does not look at parents",
        flow(s(T.PENDING), flow_run_state_type=T.PENDING),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "only scheduled runs become late",
        flow(s(T.PENDING)),
        s(T.SCHEDULED, "Late", at=NOW),
        False,
        REJECT,
        None,
    ),
    (
        "scheduled runs become late",
        flow(s(T.SCHEDULED, scheduled_time=EARLIER)),
        s(T.SCHEDULED, "Late", at=NOW),
        False,
        ACCEPT,
        (T.SCHEDULED, "Late"),
    ),
    (
        "a flow pauses only while running",
        flow(s(T.PENDING)),
        s(T.PAUSED, at=NOW, pause_key="1"),
        False,
        REJECT,
        None,
    ),
    (
        "a flow pauses while running",
        flow(s(T.RUNNING)),
        s(T.PAUSED, at=NOW, pause_key="1"),
        False,
        ACCEPT,
        (T.PAUSED, "Paused"),
    ),
    (
        "a pause key fires once",
        flow(s(T.RUNNING), paused_keys=frozenset({"1"})),
        s(T.PAUSED, at=NOW, pause_key="1"),
        False,
        REJECT,
        None,
    ),
    (
        "task pause key fires once",
        task(s(T.RUNNING), paused_keys=frozenset({"k"})),
        s(T.PAUSED, at=NOW, pause_key="k"),
        False,
        REJECT,
        None,
    ),
    (
        "subflows cannot suspend",
        flow(s(T.RUNNING), is_subflow=True, has_deployment=True),
        s(T.PAUSED, "Suspended", at=NOW, pause_reschedule=True),
        False,
        ABORT,
        None,
    ),
    (
        "suspending needs a deployment",
        flow(s(T.RUNNING)),
        s(T.PAUSED, "Suspended", at=NOW, pause_reschedule=True),
        False,
        ABORT,
        None,
    ),
    (
        "deployed flows suspend",
        flow(s(T.RUNNING), has_deployment=True),
        s(T.PAUSED, "Suspended", at=NOW, pause_reschedule=True),
        False,
        ACCEPT,
        (T.PAUSED, "Suspended"),
    ),
    (
        "paused flow resumes running",
        flow(s(T.PAUSED)),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    ("paused flow cannot pend", flow(s(T.PAUSED)), s(T.PENDING, at=NOW), False, REJECT, None),
    (
        "suspended flow must be rescheduled",
        flow(s(T.PAUSED, "Suspended", pause_reschedule=True), has_deployment=True),
        s(T.RUNNING, at=NOW),
        False,
        ABORT,
        None,
    ),
    (
        "suspended flow is rescheduled",
        flow(s(T.PAUSED, "Suspended", pause_reschedule=True), has_deployment=True),
        s(T.SCHEDULED, "Resuming", at=NOW, scheduled_time=NOW),
        False,
        ACCEPT,
        (T.SCHEDULED, "Resuming"),
    ),
    (
        "rescheduling needs a deployment",
        flow(s(T.PAUSED, "Suspended", pause_reschedule=True)),
        s(T.SCHEDULED, "Resuming", at=NOW, scheduled_time=NOW),
        False,
        REJECT,
        None,
    ),
    (
        "an expired pause fails the run",
        flow(s(T.PAUSED, pause_timeout=NOW - timedelta(seconds=1))),
        s(T.RUNNING, at=NOW),
        False,
        REJECT,
        (T.FAILED, "Failed"),
    ),
    (
        "a pause before its timeout resumes",
        flow(s(T.PAUSED, pause_timeout=NOW + timedelta(minutes=1))),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "future scheduled run waits",
        flow(s(T.SCHEDULED, scheduled_time=NOW + timedelta(seconds=30))),
        s(T.RUNNING, at=NOW),
        False,
        WAIT,
        None,
    ),
    (
        "future pending run waits",
        flow(s(T.PENDING, scheduled_time=NOW + timedelta(seconds=30))),
        s(T.RUNNING, at=NOW),
        False,
        WAIT,
        None,
    ),
    (
        "submitting a future run is allowed",
        flow(s(T.SCHEDULED, scheduled_time=NOW + timedelta(seconds=30))),
        s(T.PENDING, at=NOW),
        False,
        ACCEPT,
        (T.PENDING, "Pending"),
    ),
    (
        "a due scheduled run starts",
        flow(s(T.SCHEDULED, scheduled_time=EARLIER)),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "less than half a second early starts",
        flow(s(T.SCHEDULED, scheduled_time=NOW + timedelta(milliseconds=400))),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Running"),
    ),
    (
        "failure with retries left is retried",
        flow(s(T.RUNNING), run_count=1, retries=2),
        s(T.FAILED, at=NOW),
        False,
        REJECT,
        (T.SCHEDULED, "AwaitingRetry"),
    ),
    (
        "task failure with retries left is retried",
        task(s(T.RUNNING), run_count=2, retries=2),
        s(T.FAILED, at=NOW),
        False,
        REJECT,
        (T.SCHEDULED, "AwaitingRetry"),
    ),
    (
        "failure without retries left fails",
        flow(s(T.RUNNING), run_count=3, retries=2),
        s(T.FAILED, at=NOW),
        False,
        ACCEPT,
        (T.FAILED, "Failed"),
    ),
    (
        "failure without retries fails",
        flow(s(T.RUNNING), run_count=1),
        s(T.FAILED, at=NOW),
        False,
        ACCEPT,
        (T.FAILED, "Failed"),
    ),
    (
        "timeouts are not retried",
        flow(s(T.RUNNING), run_count=1, retries=2),
        s(T.FAILED, "TimedOut", at=NOW),
        False,
        ACCEPT,
        (T.FAILED, "TimedOut"),
    ),
    (
        "non-retriable failures are not retried",
        task(s(T.RUNNING), run_count=1, retries=2),
        s(T.FAILED, at=NOW, retriable=False),
        False,
        ACCEPT,
        (T.FAILED, "Failed"),
    ),
    (
        "flows retry whatever retriable says",
        flow(s(T.RUNNING), run_count=1, retries=2),
        s(T.FAILED, at=NOW, retriable=False),
        False,
        REJECT,
        (T.SCHEDULED, "AwaitingRetry"),
    ),
    (
        "forced failure is not retried",
        flow(s(T.RUNNING), run_count=1, retries=2),
        s(T.FAILED, at=NOW),
        True,
        ACCEPT,
        (T.FAILED, "Failed"),
    ),
    (
        "running after AwaitingRetry is Retrying",
        flow(s(T.SCHEDULED, "AwaitingRetry", scheduled_time=EARLIER)),
        s(T.RUNNING, at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Retrying"),
    ),
    (
        "custom running names are kept",
        flow(s(T.SCHEDULED, "AwaitingRetry", scheduled_time=EARLIER)),
        s(T.RUNNING, "Warming", at=NOW),
        False,
        ACCEPT,
        (T.RUNNING, "Warming"),
    ),
    (
        "cancelling an unsubmitted run cancels it",
        flow(s(T.SCHEDULED, scheduled_time=NOW)),
        s(T.CANCELLING, at=NOW),
        False,
        REJECT,
        (T.CANCELLED, "Cancelled"),
    ),
    (
        "even when forced",
        flow(s(T.SCHEDULED, scheduled_time=NOW)),
        s(T.CANCELLING, at=NOW),
        True,
        REJECT,
        (T.CANCELLED, "Cancelled"),
    ),
    (
        "a submitted scheduled run is cancelling",
        flow(s(T.SCHEDULED, scheduled_time=NOW), has_infrastructure=True),
        s(T.CANCELLING, at=NOW),
        False,
        ACCEPT,
        (T.CANCELLING, "Cancelling"),
    ),
    (
        "a resuming run has no process yet",
        flow(s(T.SCHEDULED, "Resuming", scheduled_time=NOW), has_infrastructure=True),
        s(T.CANCELLING, at=NOW),
        False,
        REJECT,
        (T.CANCELLED, "Cancelled"),
    ),
    (
        "a suspended run has no process",
        flow(s(T.PAUSED, "Suspended", pause_reschedule=True)),
        s(T.CANCELLING, at=NOW),
        False,
        REJECT,
        (T.CANCELLED, "Cancelled"),
    ),
    (
        "a running run is cancelling",
        flow(s(T.RUNNING)),
        s(T.CANCELLING, at=NOW),
        False,
        ACCEPT,
        (T.CANCELLING, "Cancelling"),
    ),
    (
        "task runs have no such shortcut",
        task(s(T.SCHEDULED, scheduled_time=NOW)),
        s(T.CANCELLING, at=NOW),
        False,
        ACCEPT,
        (T.CANCELLING, "Cancelling"),
    ),
    (
        "a retried request changes nothing",
        flow(s(T.COMPLETED, transition_id="t1")),
        s(T.COMPLETED, at=NOW, transition_id="t1"),
        False,
        REJECT,
        None,
    ),
    (
        "a new transition id is a new request",
        flow(s(T.RUNNING, transition_id="t1")),
        s(T.COMPLETED, at=NOW, transition_id="t2"),
        False,
        ACCEPT,
        (T.COMPLETED, "Completed"),
    ),
]


@pytest.mark.parametrize(
    ("run", "proposed", "force", "status", "written"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(
    run: RunFacts,
    proposed: StateFacts,
    force: bool,
    status: SetStateStatus,
    written: tuple[T, str] | None,
) -> None:
    decision = decide(run, proposed, NOW, force=force)
    assert decision.status is status, decision.reason
    assert decision.writes is (written is not None)
    if written is not None:
        assert decision.state is not None
        assert (decision.state.type, decision.state.name) == written
    if status is not ACCEPT:
        assert decision.reason


def test_wait_carries_whole_seconds_until_the_scheduled_time() -> None:
    run = flow(s(T.SCHEDULED, scheduled_time=NOW + timedelta(seconds=29, milliseconds=600)))
    decision = decide(run, s(T.RUNNING, at=NOW), NOW)
    assert decision.status is WAIT
    assert decision.delay_seconds == 30
    assert wait_seconds(NOW + timedelta(seconds=2, milliseconds=499), NOW) == 2


def test_retry_is_scheduled_after_the_delay_for_that_attempt() -> None:
    run = flow(s(T.RUNNING), run_count=2, retries=3, retry_delays=(5.0, 60.0))
    decision = decide(run, s(T.FAILED, at=NOW, message="boom"), NOW)
    assert decision.state is not None
    assert decision.state.scheduled_time == NOW + timedelta(seconds=60)
    assert decision.state.message == "boom"
    assert retry_delay_for(replace(run, run_count=1)) == 5.0
    assert retry_delay_for(replace(run, run_count=9)) == 60.0
    assert retry_delay_for(replace(run, retry_delays=())) == 0.0


def test_submitting_keeps_the_scheduled_time() -> None:
    at = NOW + timedelta(minutes=5)
    decision = decide(flow(s(T.SCHEDULED, scheduled_time=at)), s(T.PENDING, at=NOW), NOW)
    assert decision.state is not None and decision.state.scheduled_time == at
    substate = decide(
        flow(s(T.PENDING, scheduled_time=at)), s(T.PENDING, "Submitting", at=NOW), NOW
    )
    assert substate.state is not None and substate.state.scheduled_time == at


def test_an_expired_pause_fails_with_a_message() -> None:
    run = flow(s(T.PAUSED, pause_timeout=EARLIER))
    decision = decide(run, s(T.RUNNING, at=NOW), NOW)
    assert decision.state is not None
    assert decision.state.message == "The flow was paused and never resumed."


# --- bookkeeping ------------------------------------------------------------------------------


def test_running_counts_a_run_and_sets_start_time_once() -> None:
    first = bookkeeping(flow(s(T.PENDING)), s(T.RUNNING, at=NOW))
    assert (first.run_count, first.start_time, first.end_time) == (1, NOW, None)
    again = bookkeeping(
        flow(s(T.SCHEDULED, "AwaitingRetry"), run_count=1, start_time=EARLIER),
        s(T.RUNNING, "Retrying", at=NOW),
    )
    assert (again.run_count, again.start_time) == (2, EARLIER)


def test_total_run_time_adds_up_running_stretches() -> None:
    run = flow(s(T.RUNNING, at=NOW - timedelta(seconds=5)), total_run_time=timedelta(seconds=2))
    updates = bookkeeping(run, s(T.COMPLETED, at=NOW))
    assert updates.total_run_time == timedelta(seconds=7)
    assert updates.end_time == NOW
    unchanged = bookkeeping(
        flow(s(T.PENDING), total_run_time=timedelta(seconds=2)), s(T.RUNNING, at=NOW)
    )
    assert unchanged.total_run_time == timedelta(seconds=2)


def test_a_run_that_ends_without_starting_gets_a_zero_length_span() -> None:
    updates = bookkeeping(flow(s(T.PENDING)), s(T.CANCELLED, at=NOW))
    assert updates.start_time == updates.end_time == NOW
    assert updates.run_count == 0


def test_leaving_a_terminal_state_clears_the_end_time() -> None:
    updates = bookkeeping(
        flow(s(T.FAILED), end_time=EARLIER, start_time=EARLIER), s(T.SCHEDULED, at=NOW)
    )
    assert updates.end_time is None


def test_expected_and_next_scheduled_start_times() -> None:
    at = NOW + timedelta(hours=1)
    scheduled = bookkeeping(flow(None), s(T.SCHEDULED, at=NOW, scheduled_time=at))
    assert scheduled.expected_start_time == at
    assert scheduled.next_scheduled_start_time == at
    pending = bookkeeping(flow(None), s(T.PENDING, at=NOW))
    assert pending.expected_start_time == NOW
    assert pending.next_scheduled_start_time is None
    leaving = bookkeeping(flow(s(T.SCHEDULED), expected_start_time=at), s(T.PENDING, at=NOW))
    assert leaving.expected_start_time == at
    assert leaving.next_scheduled_start_time is None


def test_resuming_from_a_pause_is_not_a_new_run() -> None:
    resumed = bookkeeping(flow(s(T.PAUSED), run_count=1), s(T.RUNNING, at=NOW))
    assert resumed.run_count == 1
    after_suspension = bookkeeping(
        flow(s(T.PENDING), run_count=1, resuming=True), s(T.RUNNING, at=NOW)
    )
    assert after_suspension.run_count == 1
    assert after_suspension.extra == {"resuming": False}


def test_flow_policy_changes() -> None:
    paused = bookkeeping(
        flow(s(T.RUNNING), paused_keys=frozenset({"1"})), s(T.PAUSED, at=NOW, pause_key="2")
    )
    assert paused.extra == {"pause_keys": ["1", "2"]}
    rescheduled = bookkeeping(flow(s(T.PAUSED, "Suspended")), s(T.SCHEDULED, "Resuming", at=NOW))
    assert rescheduled.extra == {"resuming": True}
    retry = bookkeeping(
        flow(s(T.RUNNING), paused_keys=frozenset({"1"})), s(T.SCHEDULED, "AwaitingRetry", at=NOW)
    )
    assert retry.extra == {"pause_keys": [], "resuming": False, "retry_type": "in_process"}
    assert bookkeeping(flow(s(T.PENDING)), s(T.RUNNING, at=NOW)).extra == {}
    assert bookkeeping(task(s(T.RUNNING)), s(T.PAUSED, at=NOW, pause_key="1")).extra == {}


# --- read-time estimates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "state_type", "since", "expected"),
    [
        (timedelta(seconds=3), T.RUNNING, NOW - timedelta(seconds=2), timedelta(seconds=5)),
        (timedelta(seconds=3), T.COMPLETED, NOW - timedelta(seconds=2), timedelta(seconds=3)),
        (timedelta(0), None, None, timedelta(0)),
    ],
)
def test_estimated_run_time(
    total: timedelta, state_type: T | None, since: datetime | None, expected: timedelta
) -> None:
    assert estimated_run_time(total, state_type, since, NOW) == expected


@pytest.mark.parametrize(
    ("expected_start", "start", "state_type", "lateness"),
    [
        (None, None, T.PENDING, timedelta(0)),
        (NOW - timedelta(seconds=10), NOW - timedelta(seconds=4), T.RUNNING, timedelta(seconds=6)),
        (NOW - timedelta(seconds=10), NOW - timedelta(seconds=20), T.RUNNING, timedelta(0)),
        (NOW - timedelta(seconds=10), None, T.SCHEDULED, timedelta(seconds=10)),
        (NOW + timedelta(seconds=10), None, T.SCHEDULED, timedelta(0)),
        (NOW - timedelta(seconds=10), None, T.CANCELLED, timedelta(0)),
    ],
)
def test_estimated_start_time_delta(
    expected_start: datetime | None, start: datetime | None, state_type: T, lateness: timedelta
) -> None:
    assert estimated_start_time_delta(expected_start, start, state_type, NOW) == lateness
