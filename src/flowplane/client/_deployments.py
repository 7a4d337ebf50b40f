"""Client operations on deployments: create (upsert), read, list, update, schedules, runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from pydantic import BaseModel

from flowplane.client._operations import as_uuid, body, dump, enum_value, operation, state_create
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.schemas.flow_runs import FlowRun
from flowplane.schemas.sorting import DeploymentSort

if TYPE_CHECKING:
    from flowplane.schemas.deployments import Deployment, DeploymentSchedule

# The deployment models are imported where a call needs them: a process that never
# touches deployments (most flow runs) does not build their pydantic models.

AnyFilter = Any  # a filter model or its JSON as a dict


def _deployment_id(response: Any) -> UUID:
    return UUID(response.json()["id"])


def _schedule_json(item: Any) -> dict[str, Any]:
    """A schedule to create: a ``DeploymentScheduleCreate``, its dict, a ``(schedule, active)``
    pair as Prefect's client takes, or a bare schedule model."""
    if isinstance(item, tuple):
        schedule, active = item
        return {"schedule": dump(schedule), "active": active}
    data = dump(item)
    if isinstance(data, dict) and "schedule" not in data:
        return {"schedule": data}
    return data  # type: ignore[no-any-return]


def split_name(name: str) -> tuple[str, str]:
    """``flow/deployment`` -> its two parts (``ValueError`` without the slash)."""
    flow, sep, deployment = name.partition("/")
    if not sep or not flow or not deployment:
        raise ValueError(f"Deployment names look like 'flow-name/deployment-name', not {name!r}.")
    return flow, deployment


class DeploymentOperations:
    """Deployments: flows made runnable by name, on schedules or on demand."""

    @operation
    def create_deployment(
        self,
        flow_id: UUID | str,
        name: str,
        version: str | None = None,
        schedules: Iterable[Any] | None = None,
        concurrency_limit: int | None = None,
        concurrency_options: Any = None,
        parameters: dict[str, Any] | None = None,
        description: str | None = None,
        work_queue_name: str | None = None,
        work_pool_name: str | None = None,
        tags: list[str] | None = None,
        storage_document_id: UUID | None = None,
        path: str | None = None,
        entrypoint: str | None = None,
        infrastructure_document_id: UUID | None = None,
        parameter_openapi_schema: dict[str, Any] | None = None,
        paused: bool | None = None,
        pull_steps: list[dict[str, Any]] | None = None,
        enforce_parameter_schema: bool | None = None,
        job_variables: dict[str, Any] | None = None,
    ) -> Call[UUID]:
        """Create a deployment of a flow, or replace the flow's deployment of that name.

        Returns:
            The deployment's id.

        Raises:
            ObjectNotFound: the flow or the work pool does not exist.
            ValidationFailed: a schedule or the default parameters are invalid.
        """
        payload = body(
            flow_id=str(as_uuid(flow_id)),
            name=name,
            version=version,
            schedules=[_schedule_json(s) for s in schedules] if schedules is not None else None,
            concurrency_limit=concurrency_limit,
            concurrency_options=concurrency_options,
            parameters=parameters,
            description=description,
            work_queue_name=work_queue_name,
            work_pool_name=work_pool_name,
            tags=tags,
            storage_document_id=str(storage_document_id) if storage_document_id else None,
            path=path,
            entrypoint=entrypoint,
            infrastructure_document_id=(
                str(infrastructure_document_id) if infrastructure_document_id else None
            ),
            parameter_openapi_schema=parameter_openapi_schema,
            paused=paused,
            pull_steps=pull_steps,
            enforce_parameter_schema=enforce_parameter_schema,
            job_variables=job_variables,
        )
        return Call("POST", "/deployments/", _deployment_id, json=payload)

    @operation
    def read_deployment(self, deployment_id: UUID | str) -> Call[Deployment]:
        """Read a deployment by id.

        Raises:
            ObjectNotFound: no deployment has that id.
        """
        from flowplane.schemas.deployments import Deployment

        return Call("GET", f"/deployments/{as_uuid(deployment_id)}", model(Deployment))

    @operation
    def read_deployment_by_name(self, name: str) -> Call[Deployment]:
        """Read a deployment by its full name, ``flow-name/deployment-name``.

        Raises:
            ValueError: the name has no ``/``.
            ObjectNotFound: no such deployment.
        """
        from flowplane.schemas.deployments import Deployment

        flow, deployment = split_name(name)
        path = f"/deployments/name/{quote(flow, safe='')}/{quote(deployment, safe='')}"
        return Call("GET", path, model(Deployment))

    @operation
    def read_deployments(
        self,
        *,
        flow_filter: AnyFilter = None,
        flow_run_filter: AnyFilter = None,
        task_run_filter: AnyFilter = None,
        deployment_filter: AnyFilter = None,
        work_pool_filter: AnyFilter = None,
        work_queue_filter: AnyFilter = None,
        limit: int | None = None,
        sort: DeploymentSort | str | None = None,
        offset: int = 0,
    ) -> Call[list[Deployment]]:
        """List the deployments that match every filter given (by name unless ``sort``)."""
        from flowplane.schemas.deployments import Deployment

        payload = body(
            flows=flow_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            deployments=deployment_filter,
            work_pools=work_pool_filter,
            work_pool_queues=work_queue_filter,
            limit=limit,
            sort=enum_value(sort),
            offset=offset,
        )
        return Call("POST", "/deployments/filter", models(Deployment), json=payload)

    @operation
    def count_deployments(
        self, *, deployment_filter: AnyFilter = None, flow_filter: AnyFilter = None
    ) -> Call[int]:
        """Count the deployments that match the filters."""
        payload = body(deployments=deployment_filter, flows=flow_filter)
        return Call("POST", "/deployments/count", value(int), json=payload)

    @operation
    def update_deployment(self, deployment_id: UUID | str, deployment: Any) -> Call[None]:
        """Change a deployment: ``deployment`` is a ``DeploymentUpdate`` or a dict of fields.

        Raises:
            ObjectNotFound: no deployment has that id (or the named pool does not exist).
            ValidationFailed: a field is invalid.
        """
        payload = (
            deployment.model_dump(mode="json", exclude_unset=True)
            if isinstance(deployment, BaseModel)
            else dict(deployment)
        )
        return Call("PATCH", f"/deployments/{as_uuid(deployment_id)}", nothing, json=payload)

    @operation
    def delete_deployment(self, deployment_id: UUID | str) -> Call[None]:
        """Delete a deployment (its runs stay; future scheduled ones go).

        Raises:
            ObjectNotFound: no deployment has that id.
        """
        return Call("DELETE", f"/deployments/{as_uuid(deployment_id)}", nothing)

    @operation
    def pause_deployment(self, deployment_id: UUID | str) -> Call[None]:
        """Pause a deployment: its schedules stop making runs."""
        return Call("POST", f"/deployments/{as_uuid(deployment_id)}/pause_deployment", nothing)

    @operation
    def resume_deployment(self, deployment_id: UUID | str) -> Call[None]:
        """Resume a paused deployment."""
        return Call("POST", f"/deployments/{as_uuid(deployment_id)}/resume_deployment", nothing)

    @operation
    def backfill_deployment(
        self,
        deployment_id: UUID | str,
        start: datetime,
        end: datetime,
        max_runs: int = 1000,
    ) -> Call[dict[str, int]]:
        """Create the runs the deployment's active schedules call for in ``[start, end]``.

        Beyond Prefect (its ``/schedule`` endpoint answers nothing): idempotent, so
        repeating a backfill or overlapping the scheduler makes no second run for a time.

        Args:
            deployment_id: the deployment.
            start: the window's first instant (may be in the past).
            end: the window's last instant.
            max_runs: most runs per schedule.

        Returns:
            ``{"created": n, "existing": m}``: runs made, and times that already had one.

        Raises:
            ObjectNotFound: no deployment has that id.
            ValidationFailed: ``end`` is before ``start``.
        """
        payload = {
            "start_time": start.isoformat(),
            "end_time": end.isoformat(),
            "min_time": max(0.0, (end - start).total_seconds()),
            "min_runs": max_runs,
            "max_runs": max_runs,
        }
        path = f"/deployments/{as_uuid(deployment_id)}/schedule"
        return Call("POST", path, value(dict[str, int]), json=payload)

    @operation
    def create_deployment_schedules(
        self, deployment_id: UUID | str, schedules: Iterable[Any]
    ) -> Call[list[DeploymentSchedule]]:
        """Add schedules to a deployment (``(schedule, active)`` pairs or schedule creates)."""
        from flowplane.schemas.deployments import DeploymentSchedule

        payload = [_schedule_json(s) for s in schedules]
        path = f"/deployments/{as_uuid(deployment_id)}/schedules"
        return Call("POST", path, models(DeploymentSchedule), json=payload)

    @operation
    def read_deployment_schedules(
        self, deployment_id: UUID | str
    ) -> Call[list[DeploymentSchedule]]:
        """The deployment's schedules."""
        from flowplane.schemas.deployments import DeploymentSchedule

        path = f"/deployments/{as_uuid(deployment_id)}/schedules"
        return Call("GET", path, models(DeploymentSchedule))

    @operation
    def update_deployment_schedule(
        self,
        deployment_id: UUID | str,
        schedule_id: UUID | str,
        active: bool | None = None,
        schedule: Any = None,
    ) -> Call[None]:
        """Turn a schedule on or off, or change its rule."""
        payload = body(active=active, schedule=schedule)
        path = f"/deployments/{as_uuid(deployment_id)}/schedules/{as_uuid(schedule_id)}"
        return Call("PATCH", path, nothing, json=payload)

    @operation
    def delete_deployment_schedule(
        self, deployment_id: UUID | str, schedule_id: UUID | str
    ) -> Call[None]:
        """Remove a schedule from a deployment."""
        path = f"/deployments/{as_uuid(deployment_id)}/schedules/{as_uuid(schedule_id)}"
        return Call("DELETE", path, nothing)

    @operation
    def create_flow_run_from_deployment(
        self,
        deployment_id: UUID | str,
        *,
        parameters: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        state: Any = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        idempotency_key: str | None = None,
        parent_task_run_id: UUID | None = None,
        work_queue_name: str | None = None,
        job_variables: dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Call[FlowRun]:
        """Create a run of a deployment (Scheduled for now unless ``state`` says otherwise).

        Its parameters are the deployment's defaults overridden by ``parameters``; a run
        with the same ``idempotency_key`` is returned instead of a new one.

        Raises:
            ObjectNotFound: no deployment has that id.
            ValidationFailed: the parameters do not fit the deployment's schema.
        """
        payload = body(
            parameters=parameters,
            context=context,
            state=state_create(state) if state is not None else None,
            name=name,
            tags=list(tags) if tags is not None else None,
            idempotency_key=idempotency_key,
            parent_task_run_id=str(parent_task_run_id) if parent_task_run_id else None,
            work_queue_name=work_queue_name,
            job_variables=job_variables,
            labels=labels,
        )
        path = f"/deployments/{as_uuid(deployment_id)}/create_flow_run"
        return Call("POST", path, model(FlowRun), json=payload)

    @operation
    def get_scheduled_flow_runs_for_deployments(
        self,
        deployment_ids: Iterable[UUID | str],
        scheduled_before: datetime | None = None,
        limit: int | None = None,
    ) -> Call[list[FlowRun]]:
        """Scheduled runs of these deployments due by ``scheduled_before``."""
        payload = body(
            deployment_ids=[str(as_uuid(i)) for i in deployment_ids],
            scheduled_before=scheduled_before.isoformat() if scheduled_before else None,
            limit=limit,
        )
        return Call("POST", "/deployments/get_scheduled_flow_runs", models(FlowRun), json=payload)
