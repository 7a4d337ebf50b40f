"""``run_deployment``: create a run of a deployment and (unless told not to) wait for it to end.

Prefect's semantics: ``timeout=None`` waits for a final state, ``timeout=0`` returns the
new run at once, any other ``timeout`` waits that many seconds and returns the run as
it is then. Called inside a flow run with ``as_subflow=True``, the new run is linked to
the calling flow run (a task run of the caller stands for it) and inherits nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any
from uuid import UUID, uuid4

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})


def _deployment(client: Any, name: str | UUID) -> Any:
    if isinstance(name, UUID):
        return client.read_deployment(name)
    try:
        return client.read_deployment(UUID(str(name)))
    except ValueError:
        return client.read_deployment_by_name(str(name))


def _parent_task_run(client: Any, deployment: Any, flow_name: str) -> UUID | None:
    """A task run in the calling flow run that stands for the child run (``as_subflow``)."""
    from flowplane.sdk.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = getattr(context, "flow_run", None) if context is not None else None
    if flow_run is None:
        return None
    task_run = client.create_task_run(
        flow_run_id=flow_run.id,
        name=f"{flow_name}/{deployment.name}",
        task_key=f"run_deployment-{deployment.id}",
        dynamic_key=uuid4().hex[:8],
        state={"type": "PENDING", "name": "Pending"},
    )
    return getattr(task_run, "id", task_run)  # type: ignore[no-any-return]


def run_deployment(
    name: str | UUID,
    client: Any = None,
    parameters: dict[str, Any] | None = None,
    scheduled_time: dt.datetime | None = None,
    flow_run_name: str | None = None,
    timeout: float | None = None,
    poll_interval: float = 5,
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
    work_queue_name: str | None = None,
    as_subflow: bool = True,
    job_variables: dict[str, Any] | None = None,
) -> Any:
    """Create a run of deployment ``name`` (``flow-name/deployment-name`` or its id) and return it.

    Args:
        parameters: override the deployment's default parameters.
        scheduled_time: when it should start (default: now).
        timeout: seconds to wait for it to end; ``None`` waits until it does, ``0`` not at all.
        poll_interval: seconds between checks while waiting.
        idempotency_key: a second call with the same key returns the same run.
        as_subflow: inside a flow run, link the new run to it.
        job_variables: override the deployment's job variables for this run.

    Returns:
        The flow run (``FlowRun``), as it is when waiting ended.

    Raises:
        ObjectNotFound: no such deployment.
        ValueError: the name is neither ``flow/deployment`` nor an id.
        ValidationFailed: the parameters do not fit the deployment's schema.
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 seconds (or None to wait until the run ends)")
    if client is None:
        from flowplane.client import get_client

        with get_client(sync_client=True) as own:
            return run_deployment(
                name,
                own,
                parameters,
                scheduled_time,
                flow_run_name,
                timeout,
                poll_interval,
                tags,
                idempotency_key,
                work_queue_name,
                as_subflow,
                job_variables,
            )
    deployment = _deployment(client, name)
    state: dict[str, Any] = {"type": "SCHEDULED", "name": "Scheduled"}
    if scheduled_time is not None:
        when = scheduled_time
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        state["state_details"] = {"scheduled_time": when.isoformat()}
    parent = None
    if as_subflow:
        flow = client.read_flow(deployment.flow_id)
        parent = _parent_task_run(client, deployment, flow.name)
    flow_run = client.create_flow_run_from_deployment(
        deployment.id,
        parameters=parameters,
        state=state,
        name=flow_run_name,
        tags=tags,
        idempotency_key=idempotency_key,
        parent_task_run_id=parent,
        work_queue_name=work_queue_name,
        job_variables=job_variables,
    )
    if timeout == 0:
        return flow_run
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        flow_run = client.read_flow_run(flow_run.id)
        if flow_run.state is not None and flow_run.state.type.value in FINAL:
            return flow_run
        if deadline is not None and time.monotonic() >= deadline:
            return flow_run
        pause = poll_interval
        if deadline is not None:
            pause = max(min(poll_interval, deadline - time.monotonic()), 0)
        time.sleep(pause)


async def arun_deployment(name: str | UUID, **options: Any) -> Any:
    """:func:`run_deployment` for async code (the waiting happens in a worker thread)."""
    return await asyncio.to_thread(run_deployment, name, **options)


__all__ = ["arun_deployment", "run_deployment"]
