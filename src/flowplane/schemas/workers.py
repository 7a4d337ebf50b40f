"""Work pool, work queue and worker models: where deployed runs wait and who picks them up."""

from __future__ import annotations

import enum
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator

from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime, WireModel
from flowplane.schemas.flow_runs import FlowRun

#: Names end up in URL paths, so the characters that break them are refused.
NAME_PATTERN = r"^[^/%&><]+$"


class WorkPoolStatus(str, enum.Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkQueueStatus(str, enum.Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkerStatus(str, enum.Enum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class WorkPoolStorageConfiguration(WireModel):
    bundle_upload_step: dict[str, Any] | None = None
    bundle_execution_step: dict[str, Any] | None = None
    default_result_storage_block_id: UUID | None = None


def _check_template(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A base job template must be empty or have both ``job_configuration`` and ``variables``."""
    from flowplane.core.job_templates import template_problem

    if value is None:
        return None
    problem = template_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class WorkPoolCreate(ActionModel):
    name: str = Field(min_length=1, max_length=255, pattern=NAME_PATTERN)
    description: str | None = None
    type: str = "prefect-agent"
    base_job_template: dict[str, Any] = Field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0)
    storage_configuration: WorkPoolStorageConfiguration = Field(
        default_factory=WorkPoolStorageConfiguration
    )

    _template = field_validator("base_job_template")(classmethod(lambda cls, v: _check_template(v)))


class WorkPoolUpdate(ActionModel):
    description: str | None = None
    is_paused: bool | None = None
    base_job_template: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    storage_configuration: WorkPoolStorageConfiguration | None = None

    _template = field_validator("base_job_template")(classmethod(lambda cls, v: _check_template(v)))


class WorkPool(ObjectModel):
    """A work pool as the API returns it (Prefect's ``WorkPoolResponse``)."""

    name: str
    description: str | None = None
    type: str
    base_job_template: dict[str, Any] = Field(default_factory=dict)
    is_paused: bool = False
    concurrency_limit: int | None = None
    status: WorkPoolStatus | None = None
    active_slots: int | None = None
    storage_configuration: WorkPoolStorageConfiguration = Field(
        default_factory=WorkPoolStorageConfiguration
    )
    default_queue_id: UUID | None = None


class QueueFilter(WireModel):
    tags: list[str] | None = None
    deployment_ids: list[UUID] | None = None


class WorkQueueCreate(ActionModel):
    name: str = Field(min_length=1, max_length=255, pattern=NAME_PATTERN)
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=0)
    priority: int | None = Field(default=None, ge=1)
    #: Only ``POST /work_queues/``: the pool to put the queue in (default: the default pool).
    work_pool_name: str | None = None
    filter: QueueFilter | None = None


class WorkQueueUpdate(ActionModel):
    name: str | None = Field(default=None, min_length=1, max_length=255, pattern=NAME_PATTERN)
    description: str | None = None
    is_paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    priority: int | None = Field(default=None, ge=1)
    last_polled: UTCDateTime | None = None
    work_pool_name: str | None = None
    filter: QueueFilter | None = None


class WorkQueue(ObjectModel):
    """A work queue as the API returns it (Prefect's ``WorkQueueResponse``)."""

    name: str
    description: str | None = ""
    is_paused: bool = False
    concurrency_limit: int | None = None
    priority: int = 1
    work_pool_id: UUID | None = None
    work_pool_name: str | None = None
    filter: QueueFilter | None = None
    last_polled: UTCDateTime | None = None
    status: WorkQueueStatus | None = None
    active_slots: int | None = None


class WorkQueueHealthPolicy(WireModel):
    maximum_late_runs: int | None = 0
    maximum_seconds_since_last_polled: int | None = 60


class WorkQueueStatusDetail(WireModel):
    healthy: bool
    late_runs_count: int = 0
    last_polled: UTCDateTime | None = None
    health_check_policy: WorkQueueHealthPolicy


class Worker(ObjectModel):
    """A worker that polled a pool, as the API returns it (Prefect's ``WorkerResponse``)."""

    name: str
    work_pool_id: UUID
    last_heartbeat_time: UTCDateTime | None = None
    heartbeat_interval_seconds: int | None = None
    status: WorkerStatus = WorkerStatus.OFFLINE


class WorkerFlowRunResponse(WireModel):
    work_pool_id: UUID
    work_queue_id: UUID
    flow_run: FlowRun


class WorkQueueConcurrencyStatusDetail(WireModel):
    queue_id: UUID
    queue_name: str
    concurrency_limit: int | None = None
    active_slots: int
    flow_run_count: int | None = None
    flow_runs: list[FlowRun] = Field(default_factory=list)


class WorkPoolConcurrencyStatus(WireModel):
    concurrency_limit: int | None = None
    active_slots: int
    queues: list[WorkQueueConcurrencyStatusDetail] = Field(default_factory=list)
    count: int
    limit: int
    page: int
    pages: int


class WorkQueueConcurrencyStatus(WireModel):
    concurrency_limit: int | None = None
    active_slots: int
    flow_runs: list[FlowRun] = Field(default_factory=list)
    count: int
    limit: int
    page: int
    pages: int
