"""Flow endpoints."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Response, status

from flowplane.schemas import filters as f
from flowplane.schemas.flows import (
    Flow,
    FlowBulkDeleteResponse,
    FlowCreate,
    FlowPaginationResponse,
    FlowUpdate,
)
from flowplane.schemas.sorting import FlowSort
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import MAX_LIMIT, get_db, not_found, page_limit, pages
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db.session import Database
from flowplane.server.store import flows as store

router = APIRouter(prefix=f"{API_PREFIX}/flows", tags=["Flows"], route_class=LazyAPIRoute)


@router.post("/", response_model=Flow, status_code=status.HTTP_201_CREATED)
async def create_flow(flow: FlowCreate, response: Response, db: Database = Depends(get_db)) -> Flow:
    """Create a flow; if one with that name exists, return it with 200."""
    async with db.session() as session:
        row, created = await store.create(session, flow)
    if not created:
        response.status_code = status.HTTP_200_OK
    return Flow.model_validate(row)


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_flow(
    flow: FlowUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        if not await store.update(session, id, flow):
            not_found("Flow", id)


@router.post("/count")
async def count_flows(
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    db: Database = Depends(get_db),
) -> int:
    async with db.read_session() as session:
        return await store.count(session, flows=flows, flow_runs=flow_runs, task_runs=task_runs)


@router.get("/name/{name}", response_model=Flow)
async def read_flow_by_name(name: str = Path(...), db: Database = Depends(get_db)) -> Flow:
    async with db.read_session() as session:
        row = await store.read_by_name(session, name)
    if row is None:
        not_found("Flow", name)
    return Flow.model_validate(row)


@router.get("/{id}", response_model=Flow)
async def read_flow(id: UUID = Path(...), db: Database = Depends(get_db)) -> Flow:
    async with db.read_session() as session:
        row = await store.read(session, id)
    if row is None:
        not_found("Flow", id)
    return Flow.model_validate(row)


@router.post("/filter", response_model=list[Flow])
async def read_flows(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    sort: FlowSort | None = Body(None),
    db: Database = Depends(get_db),
) -> list[Flow]:
    async with db.read_session() as session:
        rows = await store.read_many(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            sort=sort or FlowSort.NAME_ASC,
            offset=offset or 0,
            limit=page_limit(limit),
        )
    return [Flow.model_validate(r) for r in rows]


@router.post("/paginate", response_model=FlowPaginationResponse)
async def paginate_flows(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    page: int | None = Body(1, ge=1),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    sort: FlowSort | None = Body(None),
    db: Database = Depends(get_db),
) -> FlowPaginationResponse:
    size, page = page_limit(limit), page or 1
    async with db.read_session() as session:
        total = await store.count(session, flows=flows, flow_runs=flow_runs, task_runs=task_runs)
        rows = await store.read_many(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            sort=sort or FlowSort.NAME_ASC,
            offset=(page - 1) * size,
            limit=size,
        )
    return FlowPaginationResponse(
        results=[Flow.model_validate(r) for r in rows],
        count=total,
        limit=size,
        pages=pages(total, size),
        page=page,
    )


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        if not await store.delete(session, id):
            not_found("Flow", id)


@router.post("/bulk_delete", response_model=FlowBulkDeleteResponse)
async def bulk_delete_flows(
    flows: f.FlowFilter | None = Body(None, embed=True),
    limit: int = Body(50, ge=1, le=200),
    db: Database = Depends(get_db),
) -> FlowBulkDeleteResponse:
    async with db.session() as session:
        deleted = await store.delete_many(session, flows, limit)
    return FlowBulkDeleteResponse(deleted=[str(i) for i in deleted])
