"""Filter models for list endpoints.

A *leaf* filter constrains one column; its ``column`` class variable names the
column and its field names say the operation (``any_`` is IN, ``not_any_`` NOT IN,
``like_`` a case-insensitive substring, ``before_``/``after_`` and ``le_``/``ge_``
bounds, ``is_null_`` a null test, ``all_`` every listed tag). A *composite*
filter combines leaves and other composites with its ``operator``. The server
compiles them generically (``flowplane.server.store.filtering``); the handful
of filters that need a join say so with ``column = ""`` and get a handler there.
"""

from __future__ import annotations

import enum
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from flowplane.core.states import StateType
from flowplane.schemas.base import ActionModel, UTCDateTime


class Operator(str, enum.Enum):
    and_ = "and_"
    or_ = "or_"


class Filter(ActionModel):
    """Base of every filter."""


class LeafFilter(Filter):
    """A filter on one column."""

    column: ClassVar[str] = ""


class CompositeFilter(Filter):
    """A filter made of other filters, joined by ``operator``."""

    operator: Operator = Operator.and_


# --- flows -----------------------------------------------------------------


class FlowFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class FlowFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None
    like_: str | None = None


class FlowFilterTags(LeafFilter):
    column = "tags"
    operator: Operator = Operator.and_
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowFilterDeployment(LeafFilter):
    """Flows with (``is_null_=False``) or without (``True``) deployments."""

    operator: Operator = Operator.and_
    is_null_: bool | None = None


class FlowFilter(CompositeFilter):
    id: FlowFilterId | None = None
    deployment: FlowFilterDeployment | None = None
    name: FlowFilterName | None = None
    tags: FlowFilterTags | None = None


# --- flow runs -------------------------------------------------------------


class FlowRunFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class FlowRunFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None
    like_: str | None = None


class FlowRunFilterTags(LeafFilter):
    column = "tags"
    operator: Operator = Operator.and_
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilterDeploymentId(LeafFilter):
    column = "deployment_id"
    operator: Operator = Operator.and_
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class FlowRunFilterWorkQueueName(LeafFilter):
    column = "work_queue_name"
    operator: Operator = Operator.and_
    any_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilterStateType(LeafFilter):
    column = "state_type"
    any_: list[StateType] | None = None
    not_any_: list[StateType] | None = None


class FlowRunFilterStateName(LeafFilter):
    column = "state_name"
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class FlowRunFilterState(CompositeFilter):
    type: FlowRunFilterStateType | None = None
    name: FlowRunFilterStateName | None = None


class FlowRunFilterFlowVersion(LeafFilter):
    column = "flow_version"
    any_: list[str] | None = None


class FlowRunFilterStartTime(LeafFilter):
    column = "start_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None
    is_null_: bool | None = None


class FlowRunFilterEndTime(LeafFilter):
    column = "end_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None
    is_null_: bool | None = None


class FlowRunFilterExpectedStartTime(LeafFilter):
    column = "expected_start_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None


class FlowRunFilterNextScheduledStartTime(LeafFilter):
    column = "next_scheduled_start_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None


class FlowRunFilterParentFlowRunId(LeafFilter):
    """Subflow runs of the listed flow runs (joined through the parent task run)."""

    operator: Operator = Operator.and_
    any_: list[UUID] | None = None


class FlowRunFilterParentTaskRunId(LeafFilter):
    column = "parent_task_run_id"
    operator: Operator = Operator.and_
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class FlowRunFilterIdempotencyKey(LeafFilter):
    column = "idempotency_key"
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class FlowRunFilterCreatedBy(LeafFilter):
    """Runs created by the listed actors (``created_by`` is a JSON object)."""

    operator: Operator = Operator.and_
    id_: list[UUID] | None = None
    type_: list[str] | None = None
    is_null_: bool | None = None


class FlowRunFilter(CompositeFilter):
    id: FlowRunFilterId | None = None
    name: FlowRunFilterName | None = None
    tags: FlowRunFilterTags | None = None
    deployment_id: FlowRunFilterDeploymentId | None = None
    work_queue_name: FlowRunFilterWorkQueueName | None = None
    state: FlowRunFilterState | None = None
    flow_version: FlowRunFilterFlowVersion | None = None
    start_time: FlowRunFilterStartTime | None = None
    end_time: FlowRunFilterEndTime | None = None
    expected_start_time: FlowRunFilterExpectedStartTime | None = None
    next_scheduled_start_time: FlowRunFilterNextScheduledStartTime | None = None
    parent_flow_run_id: FlowRunFilterParentFlowRunId | None = None
    parent_task_run_id: FlowRunFilterParentTaskRunId | None = None
    idempotency_key: FlowRunFilterIdempotencyKey | None = None
    created_by: FlowRunFilterCreatedBy | None = None


# --- task runs -------------------------------------------------------------


class TaskRunFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None


class TaskRunFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None
    like_: str | None = None


class TaskRunFilterTags(LeafFilter):
    column = "tags"
    operator: Operator = Operator.and_
    all_: list[str] | None = None
    is_null_: bool | None = None


class TaskRunFilterStateType(LeafFilter):
    column = "state_type"
    any_: list[StateType] | None = None


class TaskRunFilterStateName(LeafFilter):
    column = "state_name"
    any_: list[str] | None = None


class TaskRunFilterState(CompositeFilter):
    type: TaskRunFilterStateType | None = None
    name: TaskRunFilterStateName | None = None


class TaskRunFilterSubFlowRuns(LeafFilter):
    """Task runs that stand for a subflow (``exists_=True``) or not."""

    exists_: bool | None = None


class TaskRunFilterStartTime(LeafFilter):
    column = "start_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None
    is_null_: bool | None = None


class TaskRunFilterEndTime(LeafFilter):
    column = "end_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None
    is_null_: bool | None = None


class TaskRunFilterExpectedStartTime(LeafFilter):
    column = "expected_start_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None


class TaskRunFilterFlowRunId(LeafFilter):
    column = "flow_run_id"
    operator: Operator = Operator.and_
    any_: list[UUID] | None = None
    is_null_: bool | None = False


class TaskRunFilter(CompositeFilter):
    id: TaskRunFilterId | None = None
    name: TaskRunFilterName | None = None
    tags: TaskRunFilterTags | None = None
    state: TaskRunFilterState | None = None
    start_time: TaskRunFilterStartTime | None = None
    end_time: TaskRunFilterEndTime | None = None
    expected_start_time: TaskRunFilterExpectedStartTime | None = None
    subflow_runs: TaskRunFilterSubFlowRuns | None = None
    flow_run_id: TaskRunFilterFlowRunId | None = None


# --- logs --------------------------------------------------------------------


class LogFilterLevel(LeafFilter):
    column = "level"
    ge_: int | None = None
    le_: int | None = None


class LogFilterTimestamp(LeafFilter):
    column = "timestamp"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None


class LogFilterFlowRunId(LeafFilter):
    column = "flow_run_id"
    any_: list[UUID] | None = None


class LogFilterTaskRunId(LeafFilter):
    column = "task_run_id"
    any_: list[UUID] | None = None
    is_null_: bool | None = None


class LogFilterTextSearch(LeafFilter):
    """Case-insensitive substring of the message or the logger name."""

    query: str = Field(max_length=200)


class LogFilter(CompositeFilter):
    level: LogFilterLevel | None = None
    timestamp: LogFilterTimestamp | None = None
    flow_run_id: LogFilterFlowRunId | None = None
    task_run_id: LogFilterTaskRunId | None = None
    text: LogFilterTextSearch | None = None


# --- deployments ---------------------------------------------------------------


class DeploymentFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None
    not_any_: list[UUID] | None = None


class DeploymentFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None
    like_: str | None = None


class DeploymentOrFlowNameFilter(LeafFilter):
    """Deployments whose own name or whose flow's name contains ``like_``."""

    like_: str | None = None


class DeploymentFilterPaused(LeafFilter):
    column = "paused"
    eq_: bool | None = None


class DeploymentFilterWorkQueueName(LeafFilter):
    column = "work_queue_name"
    any_: list[str] | None = None


class DeploymentFilterTags(LeafFilter):
    column = "tags"
    operator: Operator = Operator.and_
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class DeploymentFilterConcurrencyLimit(LeafFilter):
    column = "concurrency_limit"
    ge_: int | None = None
    le_: int | None = None
    is_null_: bool | None = None


class DeploymentFilter(CompositeFilter):
    id: DeploymentFilterId | None = None
    name: DeploymentFilterName | None = None
    flow_or_deployment_name: DeploymentOrFlowNameFilter | None = None
    paused: DeploymentFilterPaused | None = None
    tags: DeploymentFilterTags | None = None
    work_queue_name: DeploymentFilterWorkQueueName | None = None
    concurrency_limit: DeploymentFilterConcurrencyLimit | None = None


# --- work pools, queues, workers ---------------------------------------------------


class WorkPoolFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None


class WorkPoolFilterName(LeafFilter):
    column = "name"
    any_: list[str] | None = None


class WorkPoolFilterType(LeafFilter):
    column = "type"
    any_: list[str] | None = None


class WorkPoolFilter(CompositeFilter):
    id: WorkPoolFilterId | None = None
    name: WorkPoolFilterName | None = None
    type: WorkPoolFilterType | None = None


class WorkQueueFilterId(LeafFilter):
    column = "id"
    any_: list[UUID] | None = None


class WorkQueueFilterName(LeafFilter):
    """Queues named one of ``any_`` or starting with one of ``startswith_``."""

    any_: list[str] | None = None
    startswith_: list[str] | None = None


class WorkQueueFilter(CompositeFilter):
    id: WorkQueueFilterId | None = None
    name: WorkQueueFilterName | None = None


class WorkerFilterLastHeartbeatTime(LeafFilter):
    column = "last_heartbeat_time"
    before_: UTCDateTime | None = None
    after_: UTCDateTime | None = None


class WorkerFilterStatus(LeafFilter):
    """Workers by liveness; the status is derived from the last heartbeat."""

    any_: list[str] | None = None
    not_any_: list[str] | None = None


class WorkerFilter(CompositeFilter):
    last_heartbeat_time: WorkerFilterLastHeartbeatTime | None = None
    status: WorkerFilterStatus | None = None
