"""State models and the orchestrator's answers to proposed states."""

from __future__ import annotations

from typing import Any, Literal, Union
from uuid import UUID, uuid4

from pydantic import Field, model_validator

from flowplane.core.states import StateType, default_name
from flowplane.core.transitions import SetStateStatus
from flowplane.schemas.base import ActionModel, UTCDateTime, WireModel, now_utc

__all__ = [
    "StateType",
    "SetStateStatus",
    "StateDetails",
    "State",
    "StateCreate",
    "StateAcceptDetails",
    "StateRejectDetails",
    "StateWaitDetails",
    "StateAbortDetails",
    "OrchestrationResult",
    "FlowRunOrchestrationResult",
]


class StateDetails(WireModel):
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    child_flow_run_id: UUID | None = None
    scheduled_time: UTCDateTime | None = None
    cache_key: str | None = None
    cache_expiration: UTCDateTime | None = None
    deferred: bool | None = False
    untrackable_result: bool = False
    pause_timeout: UTCDateTime | None = None
    pause_reschedule: bool = False
    pause_key: str | None = None
    run_input_keyset: dict[str, str] | None = None
    refresh_cache: bool | None = None
    retriable: bool | None = None
    transition_id: UUID | None = None
    task_parameters_id: UUID | None = None
    traceparent: str | None = None
    deployment_concurrency_lease_id: UUID | None = None


class _StateFields(WireModel):
    type: StateType
    name: str | None = None
    message: str | None = None
    data: Any | None = None
    state_details: StateDetails = Field(default_factory=StateDetails)

    @model_validator(mode="after")
    def _default_name(self) -> _StateFields:
        if not self.name:
            self.name = default_name(self.type)
        return self


class StateCreate(_StateFields):
    """A proposed state, as the client sends it."""

    model_config = ActionModel.model_config
    # Clients built on Prefect send these too; they are accepted and used when valid.
    id: UUID | None = None
    timestamp: UTCDateTime | None = None


class State(_StateFields):
    """A recorded state."""

    id: UUID = Field(default_factory=uuid4)
    timestamp: UTCDateTime = Field(default_factory=now_utc)

    def is_final(self) -> bool:
        from flowplane.core.states import is_terminal

        return is_terminal(self.type)


class StateAcceptDetails(WireModel):
    type: Literal["accept_details"] = "accept_details"


class StateRejectDetails(WireModel):
    type: Literal["reject_details"] = "reject_details"
    reason: str | None = None


class StateWaitDetails(WireModel):
    type: Literal["wait_details"] = "wait_details"
    delay_seconds: int
    reason: str | None = None


class StateAbortDetails(WireModel):
    type: Literal["abort_details"] = "abort_details"
    reason: str | None = None


StateResponseDetails = Union[
    StateAcceptDetails, StateWaitDetails, StateRejectDetails, StateAbortDetails
]


class OrchestrationResult(WireModel):
    state: State | None = None
    status: SetStateStatus
    details: StateResponseDetails = Field(discriminator="type")


class FlowRunOrchestrationResult(OrchestrationResult):
    flow_run_id: UUID
