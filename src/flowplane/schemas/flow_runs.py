"""Flow run models: one execution of a flow, with its state and bookkeeping."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from flowplane.core.states import StateType
from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime, WireModel
from flowplane.schemas.states import FlowRunOrchestrationResult, State, StateCreate
from flowplane.schemas.task_runs import TaskRunResult


class FlowRunPolicy(WireModel):
    """Retry settings of a flow run (``max_retries``/``retry_delay_seconds`` are legacy)."""

    max_retries: int = 0
    retry_delay_seconds: float = 0
    retries: int | None = None
    retry_delay: int | None = None
    pause_keys: list[str] | None = Field(default_factory=list)
    resuming: bool | None = False
    retry_type: Literal["in_process", "reschedule"] | None = None


class CreatedBy(WireModel):
    id: UUID | None = None
    type: str | None = None
    display_value: str | None = None


class FlowRun(ObjectModel):
    name: str = ""
    flow_id: UUID
    state_id: UUID | None = None
    deployment_id: UUID | None = None
    deployment_version: str | None = None
    work_queue_id: UUID | None = None
    work_queue_name: str | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    empirical_policy: FlowRunPolicy = Field(default_factory=FlowRunPolicy)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] = Field(default_factory=dict)
    parent_task_run_id: UUID | None = None
    state_type: StateType | None = None
    state_name: str | None = None
    run_count: int = 0
    expected_start_time: UTCDateTime | None = None
    next_scheduled_start_time: UTCDateTime | None = None
    start_time: UTCDateTime | None = None
    end_time: UTCDateTime | None = None
    total_run_time: float = 0.0
    estimated_run_time: float = 0.0
    estimated_start_time_delta: float = 0.0
    auto_scheduled: bool = False
    infrastructure_document_id: UUID | None = None
    infrastructure_pid: str | None = None
    created_by: CreatedBy | None = None
    work_pool_id: UUID | None = None
    work_pool_name: str | None = None
    job_variables: dict[str, Any] | None = Field(default_factory=dict)
    state: State | None = None


class FlowRunCreate(ActionModel):
    name: str | None = None
    flow_id: UUID
    deployment_id: UUID | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    parent_task_run_id: UUID | None = None
    infrastructure_document_id: UUID | None = None
    empirical_policy: FlowRunPolicy = Field(default_factory=FlowRunPolicy)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = None
    idempotency_key: str | None = None
    work_pool_name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None
    state: StateCreate | None = None


class FlowRunUpdate(ActionModel):
    name: str | None = None
    flow_version: str | None = None
    parameters: dict[str, Any] | None = None
    empirical_policy: FlowRunPolicy | None = None
    tags: list[str] | None = None
    infrastructure_pid: str | None = None
    job_variables: dict[str, Any] | None = None


class FlowRunPaginationResponse(WireModel):
    results: list[FlowRun]
    count: int
    limit: int
    pages: int
    page: int


class FlowRunBulkDeleteResponse(WireModel):
    deleted: list[UUID] = Field(default_factory=list)


class FlowRunBulkSetStateResponse(WireModel):
    results: list[FlowRunOrchestrationResult] = Field(default_factory=list)


class FlowRunInput(ObjectModel):
    flow_run_id: UUID
    key: str
    value: str
    sender: str | None = None

    @property
    def decoded_value(self) -> Any:
        """The stored value, decoded from its JSON text."""
        import json

        return json.loads(self.value)


class HistoryResponseState(WireModel):
    state_type: StateType
    state_name: str
    count_runs: int
    sum_estimated_run_time: float
    sum_estimated_lateness: float


class HistoryResponse(WireModel):
    interval_start: UTCDateTime
    interval_end: UTCDateTime
    states: list[HistoryResponseState]


# --- graphs ---------------------------------------------------------------------------


class DependencyResult(WireModel):
    """A task run of a flow run and the task runs whose results it consumed (graph v1)."""

    id: UUID
    name: str
    upstream_dependencies: list[TaskRunResult]
    state: State | None = None
    expected_start_time: UTCDateTime | None = None
    start_time: UTCDateTime | None = None
    end_time: UTCDateTime | None = None
    total_run_time: float | None = None
    estimated_run_time: float | None = None
    untrackable_result: bool = False


class GraphEdge(WireModel):
    id: UUID


class GraphArtifact(WireModel):
    id: UUID
    created: UTCDateTime
    key: str | None = None
    type: str | None = None
    is_latest: bool = True
    data: Any | None = None


class GraphState(WireModel):
    id: UUID
    timestamp: UTCDateTime
    type: StateType
    name: str


class GraphNode(WireModel):
    kind: Literal["flow-run", "task-run"]
    id: UUID
    label: str
    state_type: StateType
    start_time: UTCDateTime
    end_time: UTCDateTime | None = None
    parents: list[GraphEdge] = Field(default_factory=list)
    children: list[GraphEdge] = Field(default_factory=list)
    encapsulating: list[GraphEdge] = Field(default_factory=list)
    artifacts: list[GraphArtifact] = Field(default_factory=list)


class Graph(WireModel):
    """A flow run's task and subflow runs as nodes with their links (graph v2)."""

    start_time: UTCDateTime | None = None
    end_time: UTCDateTime | None = None
    root_node_ids: list[UUID] = Field(default_factory=list)
    nodes: list[tuple[UUID, GraphNode]] = Field(default_factory=list)
    artifacts: list[GraphArtifact] = Field(default_factory=list)
    states: list[GraphState] = Field(default_factory=list)
