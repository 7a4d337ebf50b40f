"""Task run models: one execution of a task inside (or outside) a flow run."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import Field

from flowplane.core.states import StateType
from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime, WireModel
from flowplane.schemas.states import State, StateCreate


class TaskRunPolicy(WireModel):
    max_retries: int = 0
    retry_delay_seconds: float = 0
    retries: int | None = None
    retry_delay: int | float | list[int] | list[float] | None = None
    retry_jitter_factor: float | None = None


class TaskRunResult(WireModel):
    input_type: Literal["task_run"] = "task_run"
    id: UUID


class FlowRunResult(WireModel):
    input_type: Literal["flow_run"] = "flow_run"
    id: UUID


class Parameter(WireModel):
    input_type: Literal["parameter"] = "parameter"
    name: str


class Constant(WireModel):
    input_type: Literal["constant"] = "constant"
    type: str


TaskRunInput = Annotated[
    Union[TaskRunResult, FlowRunResult, Parameter, Constant], Field(discriminator="input_type")
]


class TaskRun(ObjectModel):
    name: str = ""
    flow_run_id: UUID | None = None
    task_key: str
    dynamic_key: str
    cache_key: str | None = None
    cache_expiration: UTCDateTime | None = None
    task_version: str | None = None
    empirical_policy: TaskRunPolicy = Field(default_factory=TaskRunPolicy)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = Field(default_factory=dict)
    state_id: UUID | None = None
    task_inputs: dict[str, list[TaskRunInput]] = Field(default_factory=dict)
    state_type: StateType | None = None
    state_name: str | None = None
    run_count: int = 0
    flow_run_run_count: int = 0
    expected_start_time: UTCDateTime | None = None
    next_scheduled_start_time: UTCDateTime | None = None
    start_time: UTCDateTime | None = None
    end_time: UTCDateTime | None = None
    total_run_time: float = 0.0
    estimated_run_time: float = 0.0
    estimated_start_time_delta: float = 0.0
    state: State | None = None


class TaskRunCreate(ActionModel):
    id: UUID | None = None
    name: str | None = None
    flow_run_id: UUID | None = None
    task_key: str
    dynamic_key: str
    cache_key: str | None = None
    cache_expiration: UTCDateTime | None = None
    task_version: str | None = None
    empirical_policy: TaskRunPolicy = Field(default_factory=TaskRunPolicy)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = None
    task_inputs: dict[str, list[TaskRunInput]] = Field(default_factory=dict)
    state: StateCreate | None = None


class TaskRunUpdate(ActionModel):
    name: str | None = None


class TaskRunPaginationResponse(WireModel):
    results: list[TaskRun]
    count: int
    limit: int
    pages: int
    page: int
