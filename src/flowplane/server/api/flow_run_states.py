"""Flow run state endpoints: a run's state history, and one state by id."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Response

from flowplane.core.transitions import RunKind
from flowplane.schemas.states import State
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import get_db, not_found
from flowplane.server.api.flow_runs import json_response
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db.session import Database
from flowplane.server.store import states as store

router = APIRouter(
    prefix=f"{API_PREFIX}/flow_run_states", tags=["Flow Run States"], route_class=LazyAPIRoute
)


@router.get("/", response_model=list[State])
async def read_flow_run_states(
    flow_run_id: UUID = Query(...), db: Database = Depends(get_db)
) -> Response:
    """The run's states, oldest first."""
    async with db.read_session() as session:
        return json_response(await store.read_states(session, RunKind.FLOW, flow_run_id))


@router.get("/{id}", response_model=State)
async def read_flow_run_state(id: UUID = Path(...), db: Database = Depends(get_db)) -> Response:
    async with db.read_session() as session:
        state = await store.read_state(session, RunKind.FLOW, id)
    if state is None:
        not_found("Flow run state", id)
    return json_response(state)
