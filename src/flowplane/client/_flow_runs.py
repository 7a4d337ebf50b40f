"""Client operations on flow runs: create, read, list, count, update, delete, states, resume and run input."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any
from urllib.parse import quote
from uuid import UUID

from flowplane.client._flows import create_flow_call
from flowplane.client._operations import (
    as_uuid,
    body,
    enum_value,
    operation,
    pending,
    state_create,
)
from flowplane.client._protocol import Call, model, models, nothing, text, value
from flowplane.schemas.filters import FlowFilter, FlowRunFilter, TaskRunFilter
from flowplane.schemas.flow_runs import FlowRun, FlowRunInput, FlowRunPolicy
from flowplane.schemas.sorting import FlowRunSort
from flowplane.schemas.states import OrchestrationResult, State

AnyFilter = Any  # a filter model or its JSON as a dict


def _policy_of(flow: Any) -> dict[str, Any] | None:
    retries = getattr(flow, "retries", None)
    delay = getattr(flow, "retry_delay_seconds", None)
    if retries is None and delay is None:
        return None
    return {"retries": retries, "retry_delay": int(delay or 0)}


class FlowRunOperations:
    """Flow runs: executions of a flow, with their states and inputs."""

    @operation
    def create_flow_run(
        self,
        flow: Any = None,
        name: str | None = None,
        parameters: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        parent_task_run_id: UUID | None = None,
        state: Any = None,
        *,
        flow_id: UUID | str | None = None,
        idempotency_key: str | None = None,
        flow_version: str | None = None,
        labels: dict[str, Any] | None = None,
        empirical_policy: FlowRunPolicy | dict[str, Any] | None = None,
        work_pool_name: str | None = None,
        work_queue_name: str | None = None,
        job_variables: dict[str, Any] | None = None,
    ) -> Generator[Call[Any], Any, FlowRun]:
        """Create a run of a flow.

        Args:
            flow: the flow's id, or a flow definition (anything with a ``name``;
                its ``version``, ``retries`` and ``retry_delay_seconds`` are used),
                which is registered first.
            name: the run's name (the server picks one if omitted).
            parameters: the run's parameters (JSON values).
            context: free-form run context.
            tags: the run's tags.
            parent_task_run_id: for a subflow, the task run standing for it in the parent.
            state: the initial state (default ``Pending``).
            flow_id: the flow's id, as a keyword.
            idempotency_key: a second create with the same key (and flow) returns the
                first run instead of making another.

        Returns:
            The new (or, with an idempotency key, the existing) flow run.

        Raises:
            ObjectNotFound: no flow has ``flow_id`` (or the parent task run is missing).
            ValidationFailed: the server rejected the request.
        """
        if flow_id is None:
            if isinstance(flow, (UUID, str)):
                flow_id = as_uuid(flow)
            elif flow is not None and hasattr(flow, "name"):
                flow_id = yield create_flow_call(flow.name)
                flow_version = flow_version or getattr(flow, "version", None)
                empirical_policy = empirical_policy or _policy_of(flow)
            else:
                raise TypeError("create_flow_run needs a flow (or flow_id)")
        payload = body(
            flow_id=as_uuid(flow_id),
            name=name,
            parameters=parameters or {},
            context=context or {},
            tags=list(tags or []),
            parent_task_run_id=parent_task_run_id,
            state=state_create(state) if state is not None else pending(),
            idempotency_key=idempotency_key,
            flow_version=flow_version,
            labels=labels,
            empirical_policy=empirical_policy,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=job_variables,
        )
        return (yield Call("POST", "/flow_runs/", model(FlowRun), json=payload))

    @operation
    def read_flow_run(self, flow_run_id: UUID | str) -> Call[FlowRun]:
        """Read a flow run by id.

        Raises:
            ObjectNotFound: no flow run has that id.
        """
        return Call("GET", f"/flow_runs/{as_uuid(flow_run_id)}", model(FlowRun))

    @operation
    def read_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | AnyFilter | None = None,
        flow_run_filter: FlowRunFilter | AnyFilter | None = None,
        task_run_filter: TaskRunFilter | AnyFilter | None = None,
        deployment_filter: AnyFilter = None,
        work_pool_filter: AnyFilter = None,
        work_queue_filter: AnyFilter = None,
        sort: FlowRunSort | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Call[list[FlowRun]]:
        """List the flow runs that match every filter given.

        Args:
            flow_filter: conditions on the runs' flows.
            flow_run_filter: conditions on the runs.
            task_run_filter: keep runs with a task run matching this.
            deployment_filter: keep runs of deployments matching this.
            work_pool_filter: keep runs queued in work pools matching this.
            work_queue_filter: keep runs queued in work queues matching this.
            sort: the order (server default: newest id first).
            limit: at most this many (the server caps it).
            offset: skip this many first.
        """
        payload = body(
            flows=flow_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            deployments=deployment_filter,
            work_pools=work_pool_filter,
            work_pool_queues=work_queue_filter,
            sort=enum_value(sort),
            limit=limit,
            offset=offset,
        )
        return Call("POST", "/flow_runs/filter", models(FlowRun), json=payload)

    @operation
    def count_flow_runs(
        self,
        *,
        flow_filter: FlowFilter | AnyFilter | None = None,
        flow_run_filter: FlowRunFilter | AnyFilter | None = None,
        task_run_filter: TaskRunFilter | AnyFilter | None = None,
        deployment_filter: AnyFilter = None,
        work_pool_filter: AnyFilter = None,
        work_queue_filter: AnyFilter = None,
    ) -> Call[int]:
        """Count the flow runs that match every filter given."""
        payload = body(
            flows=flow_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            deployments=deployment_filter,
            work_pools=work_pool_filter,
            work_pool_queues=work_queue_filter,
        )
        return Call("POST", "/flow_runs/count", value(int), json=payload)

    @operation
    def update_flow_run(
        self,
        flow_run_id: UUID | str,
        flow_version: str | None = None,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        tags: Iterable[str] | None = None,
        empirical_policy: FlowRunPolicy | dict[str, Any] | None = None,
        infrastructure_pid: str | None = None,
        job_variables: dict[str, Any] | None = None,
    ) -> Call[None]:
        """Change a flow run's details; fields left ``None`` are kept (lists are replaced, not merged).

        Raises:
            ObjectNotFound: no flow run has that id.
        """
        payload = body(
            flow_version=flow_version,
            parameters=parameters,
            name=name,
            tags=list(tags) if tags is not None else None,
            empirical_policy=empirical_policy,
            infrastructure_pid=infrastructure_pid,
            job_variables=job_variables,
        )
        return Call("PATCH", f"/flow_runs/{as_uuid(flow_run_id)}", nothing, json=payload)

    @operation
    def set_flow_run_name(self, flow_run_id: UUID | str, name: str) -> Call[None]:
        """Rename a flow run."""
        return Call("PATCH", f"/flow_runs/{as_uuid(flow_run_id)}", nothing, json={"name": name})

    @operation
    def delete_flow_run(self, flow_run_id: UUID | str) -> Call[None]:
        """Delete a flow run (with its states, task runs and logs).

        Raises:
            ObjectNotFound: no flow run has that id.
        """
        return Call("DELETE", f"/flow_runs/{as_uuid(flow_run_id)}", nothing)

    @operation
    def set_flow_run_state(
        self, flow_run_id: UUID | str, state: Any, force: bool = False
    ) -> Call[OrchestrationResult]:
        """Propose a new state for a flow run; the orchestrator decides.

        Args:
            flow_run_id: the run.
            state: the proposed state (a ``State``, ``StateCreate``, SDK state or mapping).
            force: skip the orchestration rules and record the state as given.

        Returns:
            The decision: ``status`` (ACCEPT, REJECT, WAIT, ABORT), the run's ``state``
            afterwards and ``details`` (a reason or a delay).

        Raises:
            ObjectNotFound: no flow run has that id.
        """
        run_id = as_uuid(flow_run_id)
        payload = {"state": state_create(state, flow_run_id=run_id), "force": force}
        return Call(
            "POST", f"/flow_runs/{run_id}/set_state", model(OrchestrationResult), json=payload
        )

    @operation
    def read_flow_run_states(self, flow_run_id: UUID | str) -> Call[list[State]]:
        """Every state a flow run has had, oldest first."""
        params = {"flow_run_id": as_uuid(flow_run_id)}
        return Call("GET", "/flow_run_states/", models(State), params=params)

    @operation
    def resume_flow_run(
        self, flow_run_id: UUID | str, run_input: dict[str, Any] | None = None
    ) -> Call[OrchestrationResult]:
        """Resume a paused flow run, optionally with the input it waits for.

        Raises:
            ObjectNotFound: no flow run has that id.
        """
        payload = {"run_input": run_input}
        return Call(
            "POST",
            f"/flow_runs/{as_uuid(flow_run_id)}/resume",
            model(OrchestrationResult),
            json=payload,
        )

    # --- run input (pause/resume and send/receive) ---

    @operation
    def create_flow_run_input(
        self, flow_run_id: UUID | str, key: str, value: str, sender: str | None = None
    ) -> Call[None]:
        """Store ``value`` (a JSON string) under ``key`` for a flow run.

        Raises:
            ObjectAlreadyExists: the run already has input under ``key``.
            ObjectNotFound: no flow run has that id.
        """
        payload = {"key": key, "value": value, "sender": sender}
        return Call("POST", f"/flow_runs/{as_uuid(flow_run_id)}/input", nothing, json=payload)

    @operation
    def read_flow_run_input(self, flow_run_id: UUID | str, key: str) -> Call[str]:
        """The value stored under ``key`` for a flow run, as the JSON text it was stored as.

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
        """
        path = f"/flow_runs/{as_uuid(flow_run_id)}/input/{quote(key, safe='')}"
        return Call("GET", path, text)

    @operation
    def filter_flow_run_input(
        self,
        flow_run_id: UUID | str,
        key_prefix: str,
        limit: int = 1,
        exclude_keys: Iterable[str] | None = None,
    ) -> Call[list[FlowRunInput]]:
        """Inputs of a flow run whose keys start with ``key_prefix``, oldest first."""
        payload = {"prefix": key_prefix, "limit": limit, "exclude_keys": sorted(exclude_keys or ())}
        path = f"/flow_runs/{as_uuid(flow_run_id)}/input/filter"
        return Call("POST", path, models(FlowRunInput), json=payload)

    @operation
    def delete_flow_run_input(self, flow_run_id: UUID | str, key: str) -> Call[None]:
        """Delete the input stored under ``key``.

        Raises:
            ObjectNotFound: nothing is stored under ``key``.
        """
        path = f"/flow_runs/{as_uuid(flow_run_id)}/input/{quote(key, safe='')}"
        return Call("DELETE", path, nothing)
