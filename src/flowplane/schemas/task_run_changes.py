"""A task-run state change as plain values: what an in-process API records without an event in between.

Clients orchestrate their task runs and report each state change as a
``prefect.task-run.<State>`` event (see ``flowplane.server.services.task_run_recorder``).
In embedded mode the API lives in the same process as the engine, so the writer hands
it the same facts as a flat tuple instead: no JSON, no event model, no event row. The
run's bookkeeping (run count, start and end, time spent running, expected start) is
the engine's, computed by the rules of ``core.transitions.bookkeeping``, as a server
that trusts its clients stores what their events say.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from flowplane.schemas.states import StateDetails


class TaskRunChange(NamedTuple):
    """One task run entering one state, with the run as of that state."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    name: str
    task_key: str
    dynamic_key: str
    task_version: str | None
    empirical_policy: dict[str, Any]
    tags: list[str]
    task_inputs: dict[str, Any]
    flow_run_run_count: int
    #: The state's id as its 128-bit integer (``uuid.UUID(int=state_id)``): the engine
    #: mints it as one, and the embedded store writes its hex; no UUID object in between.
    state_id: int
    state_type: str
    state_name: str
    timestamp: dt.datetime
    message: str | None
    details: dict[str, Any] | None
    run_count: int
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    total_run_time: float
    expected_start_time: dt.datetime | None
    next_scheduled_start_time: dt.datetime | None

    def state_details(self) -> StateDetails:
        """The details of this change's state, naming its task run and flow run."""
        from flowplane.schemas.states import StateDetails

        return StateDetails.model_validate(
            {**(self.details or {}), "task_run_id": self.id, "flow_run_id": self.flow_run_id}
        )

    def state_uuid(self) -> uuid.UUID:
        """The state's id as a UUID."""
        return uuid.UUID(int=self.state_id)

    def stored_details(self) -> dict[str, Any]:
        """The details of this change's state as stored (as the task-run recorder stores them)."""
        return self.state_details().model_dump(mode="json")
