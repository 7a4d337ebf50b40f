"""Client operations on task runs: create, read, list, count, states, delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from flowplane.client._operations import (
    as_uuid,
    body,
    enum_value,
    operation,
    pending,
    state_create,
    tags_of,
)
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.schemas.filters import FlowFilter, FlowRunFilter, TaskRunFilter
from flowplane.schemas.sorting import TaskRunSort
from flowplane.schemas.states import OrchestrationResult, State
from flowplane.schemas.task_runs import TaskRun, TaskRunPolicy

AnyFilter = Any  # a filter model or its JSON as a dict


def _retry_delay(delay: Any) -> Any:
    if isinstance(delay, (list, tuple)):
        return [int(d) for d in delay]
    if isinstance(delay, float):
        return int(delay)
    return delay


class TaskRunOperations:
    """Task runs: executions of a task, inside a flow run or on their own."""

    @operation
    def create_task_run(
        self,
        task: Any = None,
        flow_run_id: UUID | str | None = None,
        dynamic_key: str = "0",
        id: UUID | None = None,
        name: str | None = None,
        extra_tags: Iterable[str] | None = None,
        state: Any = None,
        task_inputs: dict[str, list[Any]] | None = None,
        *,
        task_key: str | None = None,
        task_version: str | None = None,
        cache_key: str | None = None,
        empirical_policy: TaskRunPolicy | dict[str, Any] | None = None,
        labels: dict[str, Any] | None = None,
    ) -> Call[TaskRun]:
        """Create a task run.

        Args:
            task: the task definition (its ``task_key``, ``name``, ``tags``, ``version``,
                ``retries``, ``retry_delay_seconds`` and ``retry_jitter_factor`` are used);
                or pass ``task_key`` instead.
            flow_run_id: the flow run it belongs to (``None`` for a standalone task run).
            dynamic_key: tells apart the runs of one task within a flow run.
            id: a client-chosen id (durable identity); the server makes one otherwise.
            name: the run's name.
            extra_tags: tags added to the task's own.
            state: the initial state (default ``Pending``).
            task_inputs: what the task's arguments came from (other runs, parameters).
            task_key: the task's key, when no ``task`` object is given.

        Raises:
            ObjectNotFound: the flow run does not exist.
        """
        if task is not None:
            task_key = task_key or task.task_key
            task_version = task_version or getattr(task, "version", None)
            if empirical_policy is None and getattr(task, "retries", None) is not None:
                empirical_policy = {
                    "retries": task.retries,
                    "retry_delay": _retry_delay(getattr(task, "retry_delay_seconds", None)),
                    "retry_jitter_factor": getattr(task, "retry_jitter_factor", None),
                }
        if not task_key:
            raise TypeError("create_task_run needs a task (or task_key)")
        payload = body(
            id=id,
            name=name if name is not None else getattr(task, "name", None),
            flow_run_id=as_uuid(flow_run_id) if flow_run_id is not None else None,
            task_key=task_key,
            dynamic_key=str(dynamic_key),
            tags=tags_of(getattr(task, "tags", None), extra_tags),
            task_version=task_version,
            cache_key=cache_key,
            empirical_policy=empirical_policy,
            labels=labels,
            state=state_create(state) if state is not None else pending(),
            task_inputs=task_inputs or {},
        )
        return Call("POST", "/task_runs/", model(TaskRun), json=payload)

    @operation
    def read_task_run(self, task_run_id: UUID | str) -> Call[TaskRun]:
        """Read a task run by id.

        Raises:
            ObjectNotFound: no task run has that id.
        """
        return Call("GET", f"/task_runs/{as_uuid(task_run_id)}", model(TaskRun))

    @operation
    def read_task_runs(
        self,
        *,
        flow_filter: FlowFilter | AnyFilter | None = None,
        flow_run_filter: FlowRunFilter | AnyFilter | None = None,
        task_run_filter: TaskRunFilter | AnyFilter | None = None,
        sort: TaskRunSort | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Call[list[TaskRun]]:
        """List the task runs that match every filter given."""
        payload = body(
            flows=flow_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            sort=enum_value(sort),
            limit=limit,
            offset=offset,
        )
        return Call("POST", "/task_runs/filter", models(TaskRun), json=payload)

    @operation
    def count_task_runs(
        self,
        *,
        flow_filter: FlowFilter | AnyFilter | None = None,
        flow_run_filter: FlowRunFilter | AnyFilter | None = None,
        task_run_filter: TaskRunFilter | AnyFilter | None = None,
    ) -> Call[int]:
        """Count the task runs that match every filter given."""
        payload = body(flows=flow_filter, flow_runs=flow_run_filter, task_runs=task_run_filter)
        return Call("POST", "/task_runs/count", value(int), json=payload)

    @operation
    def set_task_run_state(
        self, task_run_id: UUID | str, state: Any, force: bool = False
    ) -> Call[OrchestrationResult]:
        """Propose a new state for a task run; the orchestrator decides.

        Returns:
            The decision (status, resulting state, details).

        Raises:
            ObjectNotFound: no task run has that id.
        """
        run_id = as_uuid(task_run_id)
        payload = {"state": state_create(state, task_run_id=run_id), "force": force}
        return Call(
            "POST", f"/task_runs/{run_id}/set_state", model(OrchestrationResult), json=payload
        )

    @operation
    def read_task_run_states(self, task_run_id: UUID | str) -> Call[list[State]]:
        """Every state a task run has had, oldest first."""
        params = {"task_run_id": as_uuid(task_run_id)}
        return Call("GET", "/task_run_states/", models(State), params=params)

    @operation
    def set_task_run_name(self, task_run_id: UUID | str, name: str) -> Call[None]:
        """Rename a task run."""
        return Call("PATCH", f"/task_runs/{as_uuid(task_run_id)}", nothing, json={"name": name})

    @operation
    def delete_task_run(self, task_run_id: UUID | str) -> Call[None]:
        """Delete a task run.

        Raises:
            ObjectNotFound: no task run has that id.
        """
        return Call("DELETE", f"/task_runs/{as_uuid(task_run_id)}", nothing)
