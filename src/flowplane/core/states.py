"""State types, their groupings and the canonical names each type carries."""

from __future__ import annotations

import enum


class StateType(str, enum.Enum):
    """The nine kinds of state a flow or task run can be in."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    def __str__(self) -> str:  # so f-strings show "COMPLETED", not "StateType.COMPLETED"
        return self.value


TERMINAL_TYPES: frozenset[StateType] = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)

#: The default name of a state of each type.
DEFAULT_NAMES: dict[StateType, str] = {
    StateType.SCHEDULED: "Scheduled",
    StateType.PENDING: "Pending",
    StateType.RUNNING: "Running",
    StateType.COMPLETED: "Completed",
    StateType.FAILED: "Failed",
    StateType.CANCELLED: "Cancelled",
    StateType.CRASHED: "Crashed",
    StateType.PAUSED: "Paused",
    StateType.CANCELLING: "Cancelling",
}

#: Every named state flowplane knows, with the type it belongs to.
NAMED_STATES: dict[str, StateType] = {
    "Scheduled": StateType.SCHEDULED,
    "Late": StateType.SCHEDULED,
    "AwaitingRetry": StateType.SCHEDULED,
    "AwaitingConcurrencySlot": StateType.SCHEDULED,
    "Pending": StateType.PENDING,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Completed": StateType.COMPLETED,
    "Cached": StateType.COMPLETED,
    "RolledBack": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "TimedOut": StateType.FAILED,
    "Cancelled": StateType.CANCELLED,
    "Crashed": StateType.CRASHED,
    "Paused": StateType.PAUSED,
    "Suspended": StateType.PAUSED,
    "Cancelling": StateType.CANCELLING,
}


def is_terminal(state_type: StateType | None) -> bool:
    """Whether a run in this state type has finished for good."""
    return state_type in TERMINAL_TYPES


def default_name(state_type: StateType) -> str:
    """The name a state of ``state_type`` gets when none is given."""
    return DEFAULT_NAMES[state_type]
