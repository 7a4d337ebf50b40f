"""Client operations on work pools, work queues and workers."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from pydantic import BaseModel

from flowplane.client._operations import as_uuid, body, dump, operation
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.exceptions import ObjectAlreadyExists
from flowplane.schemas.flow_runs import FlowRun
from flowplane.schemas.workers import (
    Worker,
    WorkerFlowRunResponse,
    WorkPool,
    WorkQueue,
    WorkQueueStatusDetail,
)

AnyFilter = Any  # a filter model or its JSON as a dict


def _q(name: str) -> str:
    return quote(name, safe="")


def _fields(obj: Any) -> dict[str, Any]:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_unset=True)
    return dict(obj)


class WorkPoolOperations:
    """Work pools and their queues and workers: where deployed runs wait to be picked up."""

    @operation
    def create_work_pool(
        self, work_pool: Any, overwrite: bool = False
    ) -> Generator[Call[Any], Any, WorkPool]:
        """Create a work pool (``WorkPoolCreate`` or a dict with at least ``name``).

        Args:
            work_pool: the pool's fields.
            overwrite: update the pool if one of that name exists, instead of failing.

        Raises:
            ObjectAlreadyExists: the name is taken and ``overwrite`` is False.
        """
        fields = _fields(work_pool)
        try:
            return (yield Call("POST", "/work_pools/", model(WorkPool), json=fields))
        except ObjectAlreadyExists:
            if not overwrite:
                raise
        name = fields["name"]
        update = {
            k: v
            for k, v in fields.items()
            if k
            in (
                "description",
                "is_paused",
                "base_job_template",
                "concurrency_limit",
                "storage_configuration",
            )
        }
        yield Call("PATCH", f"/work_pools/{_q(name)}", nothing, json=update)
        return (yield Call("GET", f"/work_pools/{_q(name)}", model(WorkPool)))

    @operation
    def read_work_pool(self, work_pool_name: str) -> Call[WorkPool]:
        """Read a work pool by name.

        Raises:
            ObjectNotFound: no pool has that name.
        """
        return Call("GET", f"/work_pools/{_q(work_pool_name)}", model(WorkPool))

    @operation
    def read_work_pools(
        self, limit: int | None = None, offset: int = 0, work_pool_filter: AnyFilter = None
    ) -> Call[list[WorkPool]]:
        """List work pools by name."""
        payload = body(limit=limit, offset=offset, work_pools=work_pool_filter)
        return Call("POST", "/work_pools/filter", models(WorkPool), json=payload)

    @operation
    def count_work_pools(self, work_pool_filter: AnyFilter = None) -> Call[int]:
        return Call("POST", "/work_pools/count", value(int), json=body(work_pools=work_pool_filter))

    @operation
    def update_work_pool(self, work_pool_name: str, work_pool: Any) -> Call[None]:
        """Change a pool (``WorkPoolUpdate`` or a dict: pause, limit, base job template)."""
        return Call("PATCH", f"/work_pools/{_q(work_pool_name)}", nothing, json=_fields(work_pool))

    @operation
    def delete_work_pool(self, work_pool_name: str) -> Call[None]:
        """Delete a pool with its queues and workers."""
        return Call("DELETE", f"/work_pools/{_q(work_pool_name)}", nothing)

    @operation
    def get_scheduled_flow_runs_for_work_pool(
        self,
        work_pool_name: str,
        work_queue_names: list[str] | None = None,
        scheduled_before: datetime | None = None,
        scheduled_after: datetime | None = None,
        limit: int | None = None,
    ) -> Call[list[WorkerFlowRunResponse]]:
        """The pool's Scheduled runs due by ``scheduled_before``, claimed for this worker.

        With ``scheduled_before`` at most five minutes ahead the runs are claimed: no
        other poll gets them for 30 s, time to propose Pending. Without it (or further
        ahead) this is a preview and claims nothing.
        """
        payload = body(
            work_queue_names=work_queue_names,
            scheduled_before=scheduled_before.isoformat() if scheduled_before else None,
            scheduled_after=scheduled_after.isoformat() if scheduled_after else None,
            limit=limit,
        )
        path = f"/work_pools/{_q(work_pool_name)}/get_scheduled_flow_runs"
        return Call("POST", path, models(WorkerFlowRunResponse), json=payload)

    @operation
    def send_worker_heartbeat(
        self,
        work_pool_name: str,
        worker_name: str,
        heartbeat_interval_seconds: float | None = None,
    ) -> Call[None]:
        """Tell the server this worker is alive (it shows ONLINE for three intervals)."""
        payload = body(
            name=worker_name,
            heartbeat_interval_seconds=(
                int(heartbeat_interval_seconds) if heartbeat_interval_seconds else None
            ),
        )
        path = f"/work_pools/{_q(work_pool_name)}/workers/heartbeat"
        return Call("POST", path, nothing, json=payload)

    @operation
    def read_workers_for_work_pool(
        self,
        work_pool_name: str,
        worker_filter: AnyFilter = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> Call[list[Worker]]:
        """The workers that have polled the pool, newest heartbeat first."""
        payload = body(workers=worker_filter, offset=offset, limit=limit)
        path = f"/work_pools/{_q(work_pool_name)}/workers/filter"
        return Call("POST", path, models(Worker), json=payload)

    # --- queues ---------------------------------------------------------------------------

    @operation
    def create_work_queue(
        self,
        name: str,
        description: str | None = None,
        is_paused: bool | None = None,
        concurrency_limit: int | None = None,
        priority: int | None = None,
        work_pool_name: str | None = None,
    ) -> Call[WorkQueue]:
        """Create a queue in ``work_pool_name`` (default: the default agent pool).

        Raises:
            ObjectAlreadyExists: the pool has a queue of that name.
            ObjectNotFound: the pool does not exist.
        """
        payload = body(
            name=name,
            description=description,
            is_paused=is_paused,
            concurrency_limit=concurrency_limit,
            priority=priority,
        )
        if work_pool_name is not None:
            path = f"/work_pools/{_q(work_pool_name)}/queues"
            return Call("POST", path, model(WorkQueue), json=payload)
        return Call("POST", "/work_queues/", model(WorkQueue), json=payload)

    @operation
    def read_work_queue(self, id: UUID | str) -> Call[WorkQueue]:
        return Call("GET", f"/work_queues/{as_uuid(id)}", model(WorkQueue))

    @operation
    def read_work_queue_by_name(
        self, name: str, work_pool_name: str | None = None
    ) -> Call[WorkQueue]:
        """Read a queue by name, in ``work_pool_name`` if given."""
        if work_pool_name is not None:
            path = f"/work_pools/{_q(work_pool_name)}/queues/{_q(name)}"
            return Call("GET", path, model(WorkQueue))
        return Call("GET", f"/work_queues/name/{_q(name)}", model(WorkQueue))

    @operation
    def read_work_queues(
        self,
        work_pool_name: str | None = None,
        work_queue_filter: AnyFilter = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> Call[list[WorkQueue]]:
        """List queues (of one pool if ``work_pool_name``), by priority."""
        payload = body(work_queues=work_queue_filter, limit=limit, offset=offset)
        if work_pool_name is not None:
            path = f"/work_pools/{_q(work_pool_name)}/queues/filter"
            return Call("POST", path, models(WorkQueue), json=payload)
        return Call("POST", "/work_queues/filter", models(WorkQueue), json=payload)

    @operation
    def match_work_queues(
        self, prefixes: Iterable[str], work_pool_name: str | None = None
    ) -> Call[list[WorkQueue]]:
        """Queues whose names start with any of ``prefixes``."""
        flt = {"name": {"startswith_": list(prefixes)}}
        payload = body(work_queues=flt)
        if work_pool_name is not None:
            path = f"/work_pools/{_q(work_pool_name)}/queues/filter"
            return Call("POST", path, models(WorkQueue), json=payload)
        return Call("POST", "/work_queues/filter", models(WorkQueue), json=payload)

    @operation
    def update_work_queue(self, id: UUID | str, **fields: Any) -> Call[None]:
        """Change a queue: ``name``, ``priority``, ``concurrency_limit``, ``is_paused``..."""
        if not fields:
            raise ValueError("No fields given to update.")
        return Call(
            "PATCH",
            f"/work_queues/{as_uuid(id)}",
            nothing,
            json={k: dump(v) for k, v in fields.items()},
        )

    @operation
    def delete_work_queue_by_id(self, id: UUID | str) -> Call[None]:
        return Call("DELETE", f"/work_queues/{as_uuid(id)}", nothing)

    @operation
    def get_runs_in_work_queue(
        self, id: UUID | str, limit: int = 10, scheduled_before: datetime | None = None
    ) -> Call[list[FlowRun]]:
        """The queue's Scheduled runs due by ``scheduled_before`` (read only)."""
        payload = body(
            limit=limit, scheduled_before=scheduled_before.isoformat() if scheduled_before else None
        )
        return Call("POST", f"/work_queues/{as_uuid(id)}/get_runs", models(FlowRun), json=payload)

    @operation
    def read_work_queue_status(self, id: UUID | str) -> Call[WorkQueueStatusDetail]:
        return Call("GET", f"/work_queues/{as_uuid(id)}/status", model(WorkQueueStatusDetail))
