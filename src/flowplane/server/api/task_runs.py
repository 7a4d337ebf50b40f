"""Task run endpoints: create, read, filter, count, history, update, delete and state changes."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Response, status
from pydantic import TypeAdapter

from flowplane.core.transitions import RunKind
from flowplane.schemas import filters as f
from flowplane.schemas.base import UTCDateTime, now_utc
from flowplane.schemas.flow_runs import HistoryResponse
from flowplane.schemas.sorting import TaskRunSort
from flowplane.schemas.states import OrchestrationResult, StateCreate
from flowplane.schemas.task_runs import (
    TaskRun,
    TaskRunCreate,
    TaskRunPaginationResponse,
    TaskRunUpdate,
)
from flowplane.server import orchestration
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import (
    MAX_LIMIT,
    get_bus,
    get_db,
    history_interval,
    json_response,
    not_found,
    page_limit,
    pages,
)
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db.session import Database
from flowplane.server.store import task_runs as store
from flowplane.server.store.filtering import RunLinks

router = APIRouter(prefix=f"{API_PREFIX}/task_runs", tags=["Task Runs"], route_class=LazyAPIRoute)

_RUN_LIST = TypeAdapter(list[TaskRun])


@router.post("/", response_model=TaskRun, status_code=status.HTTP_201_CREATED)
async def create_task_run(task_run: TaskRunCreate, db: Database = Depends(get_db)) -> Response:
    """Create a task run (Pending unless a state is given); one that exists with the same
    flow run, task key and dynamic key is returned with 200 instead."""
    now = now_utc()
    async with db.session() as session:
        created = await store.create(session, task_run, now)
    if created is None:
        not_found("Flow run", task_run.flow_run_id or "")
    run, is_new = created
    return json_response(run, status.HTTP_201_CREATED if is_new else status.HTTP_200_OK)


@router.post("/count")
async def count_task_runs(
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    db: Database = Depends(get_db),
) -> int:
    links = RunLinks(deployments)
    async with db.read_session() as session:
        return await store.count(
            session, flows=flows, flow_runs=flow_runs, task_runs=task_runs, links=links
        )


@router.post("/history", response_model=list[HistoryResponse])
async def task_run_history(
    history_start: UTCDateTime = Body(...),
    history_end: UTCDateTime = Body(...),
    history_interval_seconds: float = Body(...),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    """Runs per interval of expected start time and per state, with summed run time and lateness."""
    links = RunLinks(deployments)
    interval = history_interval(history_interval_seconds)
    async with db.read_session() as session:
        history = await store.history(
            session,
            start=history_start,
            end=history_end,
            interval=interval,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            links=links,
            now=now_utc(),
        )
    return json_response(history)


@router.get("/{id}", response_model=TaskRun)
async def read_task_run(id: UUID = Path(...), db: Database = Depends(get_db)) -> Response:
    async with db.read_session() as session:
        run = await store.read(session, id, now_utc())
    if run is None:
        not_found("Task run", id)
    return json_response(run)


@router.post("/filter", response_model=list[TaskRun])
async def read_task_runs(
    sort: TaskRunSort | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int = Body(0, ge=0),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    links = RunLinks(deployments)
    async with db.read_session() as session:
        runs = await store.read_many(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            links=links,
            sort=sort or TaskRunSort.ID_DESC,
            offset=offset,
            limit=page_limit(limit),
            now=now_utc(),
        )
    return Response(content=_RUN_LIST.dump_json(runs), media_type="application/json")


@router.post("/paginate", response_model=TaskRunPaginationResponse)
async def paginate_task_runs(
    sort: TaskRunSort | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    page: int = Body(1, ge=1),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    links = RunLinks(deployments)
    size = page_limit(limit)
    async with db.read_session() as session:
        total = await store.count(
            session, flows=flows, flow_runs=flow_runs, task_runs=task_runs, links=links
        )
        runs = await store.read_many(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            links=links,
            sort=sort or TaskRunSort.ID_DESC,
            offset=(page - 1) * size,
            limit=size,
            now=now_utc(),
        )
    return json_response(
        TaskRunPaginationResponse(
            results=runs, count=total, limit=size, pages=pages(total, size), page=page
        )
    )


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_task_run(
    task_run: TaskRunUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        if not await store.update(session, id, task_run, now_utc()):
            not_found("Task run", id)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task_run(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        if not await store.delete(session, id):
            not_found("Task run", id)


@router.post("/{id}/set_state", response_model=OrchestrationResult)
async def set_task_run_state(
    id: UUID = Path(...),
    state: StateCreate = Body(...),
    force: bool = Body(False),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> Response:
    """Propose a state; 201 when a state was recorded, 200 when the run kept its state."""
    async with db.session() as session:
        outcome = await orchestration.set_state(session, RunKind.TASK, id, state, force=force)
    if outcome is None:
        not_found("Task run", id)
    orchestration.publish(bus, [outcome])
    return json_response(
        outcome.result, status.HTTP_201_CREATED if outcome.written else status.HTTP_200_OK
    )
