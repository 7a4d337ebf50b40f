"""Deployment models: a flow made runnable remotely, with its schedules, defaults and limits."""

from __future__ import annotations

import enum
from typing import Any
from uuid import UUID

from pydantic import Field

from flowplane.schemas.base import ActionModel, ObjectModel, UTCDateTime, WireModel
from flowplane.schemas.concurrency import GlobalConcurrencyLimitResponse
from flowplane.schemas.flow_runs import CreatedBy, FlowRun, FlowRunPolicy
from flowplane.schemas.schedules import Schedule
from flowplane.schemas.states import StateCreate


class ConcurrencyLimitStrategy(str, enum.Enum):
    """What happens to a new run of a deployment whose concurrency limit is full."""

    ENQUEUE = "ENQUEUE"
    CANCEL_NEW = "CANCEL_NEW"


class DeploymentStatus(str, enum.Enum):
    READY = "READY"
    NOT_READY = "NOT_READY"


class ConcurrencyOptions(WireModel):
    collision_strategy: ConcurrencyLimitStrategy
    grace_period_seconds: int | None = Field(default=None, ge=60, le=86400)


class VersionInfo(WireModel):
    """Where a deployment's code came from (accepted and stored with it)."""

    type: str
    version: str


class DeploymentSchedule(ObjectModel):
    deployment_id: UUID | None = None
    schedule: Schedule
    active: bool = True
    max_scheduled_runs: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = None


class DeploymentScheduleCreate(ActionModel):
    schedule: Schedule
    active: bool = True
    max_scheduled_runs: int | None = Field(default=None, gt=0)
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = None
    replaces: str | None = None


class DeploymentScheduleUpdate(ActionModel):
    schedule: Schedule | None = None
    active: bool | None = None
    max_scheduled_runs: int | None = Field(default=None, gt=0)
    parameters: dict[str, Any] | None = None
    slug: str | None = None
    replaces: str | None = None


class _DeploymentFields(ActionModel):
    """Fields a client may set on create and update."""

    version: str | None = None
    version_info: VersionInfo | None = None
    description: str | None = None
    concurrency_limit: int | None = Field(default=None, gt=0)
    concurrency_options: ConcurrencyOptions | None = None
    global_concurrency_limit_id: UUID | None = None
    parameter_openapi_schema: dict[str, Any] | None = None
    pull_steps: list[dict[str, Any]] | None = None
    work_queue_name: str | None = None
    work_pool_name: str | None = None
    storage_document_id: UUID | None = None
    infrastructure_document_id: UUID | None = None
    path: str | None = None
    entrypoint: str | None = None


class DeploymentCreate(_DeploymentFields):
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/%&><]+$")
    flow_id: UUID
    paused: bool | None = False
    schedules: list[DeploymentScheduleCreate] = Field(default_factory=list)
    enforce_parameter_schema: bool | None = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)


class DeploymentUpdate(_DeploymentFields):
    paused: bool | None = None
    schedules: list[DeploymentScheduleUpdate] | None = None
    enforce_parameter_schema: bool | None = None
    parameters: dict[str, Any] | None = None
    tags: list[str] | None = None
    job_variables: dict[str, Any] | None = None


class Deployment(ObjectModel):
    """A deployment as the API returns it (Prefect's ``DeploymentResponse``)."""

    name: str
    version: str | None = None
    version_id: UUID | None = None
    version_info: VersionInfo | None = None
    description: str | None = None
    flow_id: UUID
    paused: bool = False
    schedules: list[DeploymentSchedule] = Field(default_factory=list)
    concurrency_limit: int | None = None
    global_concurrency_limit: GlobalConcurrencyLimitResponse | None = None
    concurrency_options: ConcurrencyOptions | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] = Field(default_factory=dict)
    work_queue_name: str | None = None
    last_polled: UTCDateTime | None = None
    parameter_openapi_schema: dict[str, Any] | None = None
    path: str | None = None
    pull_steps: list[dict[str, Any]] | None = None
    entrypoint: str | None = None
    storage_document_id: UUID | None = None
    infrastructure_document_id: UUID | None = None
    created_by: CreatedBy | None = None
    updated_by: CreatedBy | None = None
    work_queue_id: UUID | None = None
    enforce_parameter_schema: bool = True
    work_pool_name: str | None = None
    status: DeploymentStatus | None = DeploymentStatus.NOT_READY


class DeploymentFlowRunCreate(ActionModel):
    """A run of a deployment: its parameters are merged over the deployment's defaults."""

    state: StateCreate | None = None
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    infrastructure_document_id: UUID | None = None
    empirical_policy: FlowRunPolicy = Field(default_factory=FlowRunPolicy)
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, Any] | None = None
    idempotency_key: str | None = None
    parent_task_run_id: UUID | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] | None = None


class DeploymentPaginationResponse(WireModel):
    results: list[Deployment]
    count: int
    limit: int
    pages: int
    page: int


class DeploymentBulkDeleteResponse(WireModel):
    deleted: list[UUID] = Field(default_factory=list)


class FlowRunBulkCreateResponse(WireModel):
    results: list[FlowRun] = Field(default_factory=list)
    errors: list[dict[str, Any]] = Field(default_factory=list)
