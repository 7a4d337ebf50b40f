"""The orchestration rules: decide whether a proposed state change is accepted, and what it updates.

Everything here is pure. The caller passes the run's current facts and the clock; the
functions return a :class:`Decision` (what the API answers) and :class:`RunUpdates`
(what the store writes). Flow runs and task runs share one rule set; the differences
(retries policy source, parent flow checks) are expressed as data on :class:`RunFacts`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from flowplane.core.states import StateType, is_terminal


class SetStateStatus(str, enum.Enum):
    """How the orchestrator answered a proposed state."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    ABORT = "ABORT"
    WAIT = "WAIT"


class RunKind(str, enum.Enum):
    FLOW = "flow"
    TASK = "task"


@dataclass(frozen=True)
class StateFacts:
    """The parts of a state the rules look at."""

    type: StateType
    name: str
    timestamp: datetime
    scheduled_time: datetime | None = None
    pause_reschedule: bool = False
    pause_key: str | None = None
    pause_timeout: datetime | None = None
    #: Set by clients on each proposal; a repeat of the current state's id is a retried request.
    transition_id: str | None = None
    #: False when the client says this failure must not be retried.
    retriable: bool = True
    #: The message of a replacement state the rules substitute (the caller's otherwise).
    message: str | None = None


@dataclass(frozen=True)
class RunFacts:
    """The parts of a run the rules look at.

    ``retries`` and ``retry_delays`` come from the run's empirical policy.
    ``flow_run_state_type`` is the parent flow run's state, for task runs.
    ``resuming`` marks a flow run that left a pause and has not run again yet.
    """

    kind: RunKind
    state: StateFacts | None
    run_count: int = 0
    retries: int = 0
    retry_delays: tuple[float, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    total_run_time: timedelta = timedelta(0)
    expected_start_time: datetime | None = None
    flow_run_state_type: StateType | None = None
    paused_keys: frozenset[str] = frozenset()
    resuming: bool = False
    has_deployment: bool = False
    has_infrastructure: bool = False
    is_subflow: bool = False


@dataclass(frozen=True)
class Decision:
    """The orchestrator's answer.

    ``state`` is the state to record (ACCEPT) or the state the run should take
    instead (REJECT with a replacement, e.g. AwaitingRetry); ``None`` means
    "keep the proposal" for ACCEPT and "keep the current state" otherwise.
    """

    status: SetStateStatus
    state: StateFacts | None = None
    reason: str | None = None
    delay_seconds: float | None = None

    @property
    def writes(self) -> bool:
        """Whether this decision records a new state."""
        return self.status is SetStateStatus.ACCEPT or (
            self.status is SetStateStatus.REJECT and self.state is not None
        )


@dataclass(frozen=True)
class RunUpdates:
    """Bookkeeping fields the store writes along with an accepted state.

    ``extra`` holds changes to a flow run's empirical policy (``pause_keys``,
    ``resuming``, ``retry_type``), to merge into the stored policy.
    """

    state_type: StateType
    state_name: str
    state_timestamp: datetime
    run_count: int
    start_time: datetime | None
    end_time: datetime | None
    total_run_time: timedelta
    expected_start_time: datetime | None
    next_scheduled_start_time: datetime | None
    extra: dict[str, object] = field(default_factory=dict)


def _accept(state: StateFacts) -> Decision:
    return Decision(SetStateStatus.ACCEPT, state=state)


def retry_delay_for(run: RunFacts) -> float:
    """The delay before retry number ``run.run_count`` (lists repeat their last entry)."""
    if not run.retry_delays:
        return 0.0
    index = max(run.run_count - 1, 0)
    return run.retry_delays[min(index, len(run.retry_delays) - 1)]


def wait_seconds(scheduled_time: datetime, now: datetime) -> int:
    """Whole seconds until ``scheduled_time``, rounded half up (the wire carries integers)."""
    return math.floor((scheduled_time - now).total_seconds() + 0.5)


def decide(run: RunFacts, proposed: StateFacts, now: datetime, force: bool = False) -> Decision:
    """Apply the orchestration rules to one proposed transition.

    Args:
        run: the run's current facts.
        proposed: the state the client proposes.
        now: the current time (aware UTC).
        force: bypass the rules and accept (a run with nothing to cancel still goes
            straight to Cancelled, as a forced proposal would otherwise strand it).

    Returns:
        The decision, with a replacement state where a rule substitutes one.
    """
    if run.state is None:
        return _accept(proposed)

    initial = run.state
    to = proposed.type

    # Cancelling exists so that something stops the run's process; a run without
    # one (scheduled and not yet submitted, or suspended) is cancelled at once.
    if (
        run.kind is RunKind.FLOW
        and to is StateType.CANCELLING
        and (
            (
                initial.type is StateType.SCHEDULED
                and (not run.has_infrastructure or initial.name == "Resuming")
            )
            or (initial.type is StateType.PAUSED and initial.pause_reschedule)
        )
    ):
        return Decision(
            SetStateStatus.REJECT,
            state=StateFacts(type=StateType.CANCELLED, name="Cancelled", timestamp=now),
            reason="This run has no process to stop, so it is cancelled directly.",
        )

    if force:
        return _accept(proposed)

    # A client retrying a request it already made (same transition id) changes nothing.
    if proposed.transition_id is not None and proposed.transition_id == initial.transition_id:
        return Decision(
            SetStateStatus.REJECT, reason="This run has already made this state transition."
        )

    # Terminal states stay terminal.
    if is_terminal(initial.type):
        return Decision(
            SetStateStatus.ABORT,
            reason=f"This run is in a terminal state ({initial.name}) and cannot "
            f"transition to {proposed.name}; pass force=True to override.",
        )

    # A cancelling run may only finish.
    if initial.type is StateType.CANCELLING and not is_terminal(to):
        return Decision(
            SetStateStatus.REJECT,
            reason=f"This run is cancelling and cannot transition to {proposed.name}.",
        )

    # Pending is only entered from states that have not begun executing, so a second
    # worker submitting the same run is turned away. Named Pending sub-states
    # (Submitting, InfrastructurePending) may follow each other.
    if to is StateType.PENDING and initial.type in (
        StateType.PENDING,
        StateType.RUNNING,
        StateType.CANCELLING,
    ):
        if (
            initial.type is StateType.PENDING
            and proposed.name != initial.name
            and proposed.name != "Pending"
        ):
            return _accept(replace(proposed, scheduled_time=initial.scheduled_time))
        return Decision(
            SetStateStatus.ABORT,
            reason=f"This run is in a {initial.type.value} state and cannot transition "
            "to a PENDING state.",
        )

    # Duplicate transitions (e.g. two processes starting the same run) are rejected.
    if to is StateType.RUNNING and initial.type is StateType.RUNNING:
        return Decision(
            SetStateStatus.REJECT,
            reason="This run is already RUNNING.",
        )

    # Tasks may not start while their flow run is not running.
    if (
        run.kind is RunKind.TASK
        and to is StateType.RUNNING
        and run.flow_run_state_type is not None
        and run.flow_run_state_type is not StateType.RUNNING
    ):
        return Decision(
            SetStateStatus.ABORT,
            reason=f"The enclosing flow run is {run.flow_run_state_type.value}, "
            "so this task run cannot start.",
        )

    # Only scheduled runs can be late.
    if (
        to is StateType.SCHEDULED
        and proposed.name == "Late"
        and initial.type is not StateType.SCHEDULED
    ):
        return Decision(SetStateStatus.REJECT, reason="Only scheduled runs can be marked late.")

    # A flow pauses only while it runs, once per pause key, and suspends (pauses
    # with reschedule) only if a deployment can run it again.
    if run.kind is RunKind.FLOW and to is StateType.PAUSED:
        verb = "suspend" if proposed.name == "Suspended" else "pause"
        if initial.type is not StateType.RUNNING:
            return Decision(
                SetStateStatus.REJECT,
                reason=f"Cannot {verb} flows that are not currently running.",
            )
        if proposed.pause_key is not None and proposed.pause_key in run.paused_keys:
            return Decision(SetStateStatus.REJECT, reason=f"This {verb} has already fired.")
        if proposed.pause_reschedule and run.is_subflow:
            return Decision(SetStateStatus.ABORT, reason=f"Cannot {verb} subflows.")
        if proposed.pause_reschedule and not run.has_deployment:
            return Decision(
                SetStateStatus.ABORT, reason=f"Cannot {verb} flows without a deployment."
            )

    # Pausing the same pause key twice is refused (a run may pause once per key).
    if (
        to is StateType.PAUSED
        and proposed.pause_key is not None
        and proposed.pause_key in run.paused_keys
    ):
        return Decision(SetStateStatus.REJECT, reason="This pause has already fired.")

    # A suspended run (paused with reschedule) must be rescheduled before it runs.
    if (
        initial.type is StateType.PAUSED
        and initial.pause_reschedule
        and to in (StateType.RUNNING, StateType.PENDING)
    ):
        return Decision(
            SetStateStatus.ABORT,
            reason="This run is suspended; resume it so that it is rescheduled.",
        )

    # Leaving a flow's pause: not into Pending, not after the pause timed out, and
    # back to Scheduled only with a deployment to pick the run up.
    if run.kind is RunKind.FLOW and initial.type is StateType.PAUSED:
        if to is StateType.PENDING:
            return Decision(
                SetStateStatus.REJECT,
                reason="This run cannot transition to the PENDING state from the PAUSED state.",
            )
        if (
            to in (StateType.RUNNING, StateType.SCHEDULED)
            and initial.pause_timeout is not None
            and initial.pause_timeout < now
        ):
            noun = "suspended" if initial.name == "Suspended" else "paused"
            return Decision(
                SetStateStatus.REJECT,
                state=StateFacts(
                    type=StateType.FAILED,
                    name="Failed",
                    timestamp=now,
                    message=f"The flow was {noun} and never resumed.",
                ),
                reason="The pause has timed out and the run can no longer resume.",
            )
        if to is StateType.SCHEDULED and initial.pause_reschedule and not run.has_deployment:
            return Decision(
                SetStateStatus.REJECT,
                reason="Cannot reschedule a suspended flow run without a deployment.",
            )

    # A scheduled run does not start before its time (Pending inherits the time).
    if (
        to is StateType.RUNNING
        and initial.type in (StateType.SCHEDULED, StateType.PENDING)
        and initial.scheduled_time is not None
    ):
        delay = wait_seconds(initial.scheduled_time, now)
        if delay > 0:
            return Decision(
                SetStateStatus.WAIT,
                reason=f"Scheduled start time is {delay}s in the future.",
                delay_seconds=delay,
            )

    # Submitting a scheduled run keeps its scheduled time on the Pending state.
    if (
        to is StateType.PENDING
        and initial.type is StateType.SCHEDULED
        and proposed.scheduled_time is None
    ):
        proposed = replace(proposed, scheduled_time=initial.scheduled_time)

    # Failed runs with retries left are rescheduled. Only a task's client may veto
    # the retry (its retry condition said no); flow clients send retriable=False anyway.
    if (
        to is StateType.FAILED
        and proposed.name != "TimedOut"
        and (proposed.retriable or run.kind is RunKind.FLOW)
        and initial.type is StateType.RUNNING
        and run.run_count <= run.retries
    ):
        retry_at = now + timedelta(seconds=retry_delay_for(run))
        return Decision(
            SetStateStatus.REJECT,
            state=StateFacts(
                type=StateType.SCHEDULED,
                name="AwaitingRetry",
                timestamp=now,
                scheduled_time=retry_at,
                message=proposed.message,
            ),
            reason=f"Retrying (attempt {run.run_count + 1} of {run.retries + 1}).",
        )

    # A run restarting after AwaitingRetry is called Retrying.
    if (
        to is StateType.RUNNING
        and initial.type is StateType.SCHEDULED
        and initial.name == "AwaitingRetry"
        and proposed.name == "Running"
    ):
        return _accept(replace(proposed, name="Retrying"))

    return _accept(proposed)


def bookkeeping(run: RunFacts, new: StateFacts) -> RunUpdates:
    """The run fields that change when ``new`` becomes the run's state."""
    initial = run.state
    run_count = run.run_count
    start_time = run.start_time
    end_time = run.end_time
    total = run.total_run_time

    if initial is not None and initial.type is StateType.RUNNING:
        total = total + max(new.timestamp - initial.timestamp, timedelta(0))

    if new.type is StateType.RUNNING:
        # Resuming from a pause continues the same attempt; it is not a new run.
        resumed = run.resuming or (initial is not None and initial.type is StateType.PAUSED)
        if not resumed:
            run_count += 1
        if start_time is None:
            start_time = new.timestamp

    if is_terminal(new.type):
        end_time = new.timestamp
        # A run that ends without ever starting gets a zero-length span, so that its
        # duration and lateness are defined.
        if start_time is None:
            start_time = new.timestamp
    elif new.type in (StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING):
        end_time = None

    expected = run.expected_start_time
    next_scheduled = None
    if new.type is StateType.SCHEDULED:
        next_scheduled = new.scheduled_time or new.timestamp
        if expected is None or run.start_time is None:
            expected = new.scheduled_time or new.timestamp
    elif expected is None:
        expected = new.timestamp if new.type is not StateType.RUNNING else start_time

    return RunUpdates(
        state_type=new.type,
        state_name=new.name,
        state_timestamp=new.timestamp,
        run_count=run_count,
        start_time=start_time,
        end_time=end_time,
        total_run_time=total,
        expected_start_time=expected,
        next_scheduled_start_time=next_scheduled,
        extra=_policy_changes(run, new) if run.kind is RunKind.FLOW else {},
    )


def _policy_changes(run: RunFacts, new: StateFacts) -> dict[str, object]:
    """How a flow run's empirical policy changes when ``new`` becomes its state."""
    initial = run.state
    changes: dict[str, object] = {}
    if new.type is StateType.PAUSED and new.pause_key is not None:
        changes["pause_keys"] = sorted(run.paused_keys | {new.pause_key})
    if (
        new.type is StateType.SCHEDULED
        and new.name == "AwaitingRetry"
        and initial is not None
        and initial.type is StateType.RUNNING
    ):
        # A retry starts afresh: earlier pauses may fire again.
        changes["pause_keys"] = []
        changes["resuming"] = False
        changes["retry_type"] = "in_process"
    elif (
        initial is not None
        and initial.type is StateType.PAUSED
        and new.type in (StateType.SCHEDULED, StateType.PENDING)
    ):
        # Rescheduled out of a suspension: the next Running continues this attempt.
        changes["resuming"] = True
    elif run.resuming and (new.type is StateType.RUNNING or is_terminal(new.type)):
        changes["resuming"] = False
    return changes


def estimated_run_time(
    total_run_time: timedelta,
    state_type: StateType | None,
    state_timestamp: datetime | None,
    now: datetime,
) -> timedelta:
    """Run time so far: the recorded total plus the current running stretch."""
    if state_type is StateType.RUNNING and state_timestamp is not None:
        return total_run_time + max(now - state_timestamp, timedelta(0))
    return total_run_time


def estimated_start_time_delta(
    expected_start_time: datetime | None,
    start_time: datetime | None,
    state_type: StateType | None,
    now: datetime,
) -> timedelta:
    """How late a run started (or is, if it has not started yet)."""
    if expected_start_time is None:
        return timedelta(0)
    if start_time is not None:
        return max(start_time - expected_start_time, timedelta(0))
    if state_type is not None and is_terminal(state_type):
        return timedelta(0)
    return max(now - expected_start_time, timedelta(0))
