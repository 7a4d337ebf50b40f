"""Client operations on flows: register by name, read, list, count, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from flowplane.client._operations import as_uuid, body, enum_value, operation
from flowplane.client._protocol import Call, model, models, nothing, value
from flowplane.schemas.filters import FlowFilter, FlowRunFilter, TaskRunFilter
from flowplane.schemas.flows import Flow
from flowplane.schemas.sorting import FlowSort


def _flow_id(response: httpx.Response) -> UUID:
    return Flow.model_validate_json(response.content).id


def create_flow_call(name: str) -> Call[UUID]:
    """The call that registers flow ``name`` (an upsert) and answers its id."""
    return Call("POST", "/flows/", _flow_id, json={"name": name})


class FlowOperations:
    """Flows: named workflow definitions that runs belong to."""

    @operation
    def create_flow(self, flow: Any) -> Call[UUID]:
        """Register a flow definition (anything with a ``name``) with the API.

        Args:
            flow: the flow, e.g. a ``@flow``-decorated function.

        Returns:
            The flow's id; registering an existing name returns the existing id.
        """
        return create_flow_call(flow.name)

    @operation
    def create_flow_from_name(self, flow_name: str) -> Call[UUID]:
        """Register a flow by name.

        Returns:
            The flow's id; registering an existing name returns the existing id.

        Raises:
            ValidationFailed: the name is empty or too long.
        """
        return create_flow_call(flow_name)

    @operation
    def read_flow(self, flow_id: UUID | str) -> Call[Flow]:
        """Read a flow by id.

        Raises:
            ObjectNotFound: no flow has that id.
        """
        return Call("GET", f"/flows/{as_uuid(flow_id)}", model(Flow))

    @operation
    def read_flow_by_name(self, flow_name: str) -> Call[Flow]:
        """Read a flow by name.

        Raises:
            ObjectNotFound: no flow has that name.
        """
        return Call("GET", f"/flows/name/{quote(flow_name, safe='')}", model(Flow))

    @operation
    def read_flows(
        self,
        *,
        flow_filter: FlowFilter | dict[str, Any] | None = None,
        flow_run_filter: FlowRunFilter | dict[str, Any] | None = None,
        task_run_filter: TaskRunFilter | dict[str, Any] | None = None,
        sort: FlowSort | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Call[list[Flow]]:
        """List the flows that match every filter given.

        Args:
            flow_filter: conditions on the flows.
            flow_run_filter: keep flows with a run matching this.
            task_run_filter: keep flows with a task run matching this.
            sort: the order (default: by name).
            limit: at most this many (the server caps it at 200).
            offset: skip this many first.
        """
        payload = body(
            flows=flow_filter,
            flow_runs=flow_run_filter,
            task_runs=task_run_filter,
            sort=enum_value(sort),
            limit=limit,
            offset=offset,
        )
        return Call("POST", "/flows/filter", models(Flow), json=payload)

    @operation
    def count_flows(
        self,
        *,
        flow_filter: FlowFilter | dict[str, Any] | None = None,
        flow_run_filter: FlowRunFilter | dict[str, Any] | None = None,
        task_run_filter: TaskRunFilter | dict[str, Any] | None = None,
    ) -> Call[int]:
        """Count the flows that match every filter given."""
        payload = body(flows=flow_filter, flow_runs=flow_run_filter, task_runs=task_run_filter)
        return Call("POST", "/flows/count", value(int), json=payload)

    @operation
    def delete_flow(self, flow_id: UUID | str) -> Call[None]:
        """Delete a flow and, with it, its runs.

        Raises:
            ObjectNotFound: no flow has that id.
        """
        return Call("DELETE", f"/flows/{as_uuid(flow_id)}", nothing)
