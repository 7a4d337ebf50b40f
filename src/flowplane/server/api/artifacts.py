"""Artifact endpoints (``/artifacts``): create, read, latest by key, filter and count (all, or the latest per key), update, delete."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, status

from flowplane.schemas import filters as f
from flowplane.schemas.artifacts import (
    Artifact,
    ArtifactCollection,
    ArtifactCollectionFilter,
    ArtifactCreate,
    ArtifactFilter,
    ArtifactSort,
    ArtifactUpdate,
    progress_problem,
)
from flowplane.schemas.base import now_utc
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import (
    MAX_LIMIT,
    get_db,
    not_found,
    page_limit,
)
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.store import artifacts as store

router = APIRouter(prefix=f"{API_PREFIX}/artifacts", tags=["Artifacts"], route_class=LazyAPIRoute)


def _filters(
    artifacts: Any,
    flows: f.FlowFilter | None,
    flow_runs: f.FlowRunFilter | None,
    task_runs: f.TaskRunFilter | None,
    deployments: f.DeploymentFilter | None,
) -> dict[str, Any]:
    return {
        "artifacts": artifacts,
        "flows": flows,
        "flow_runs": flow_runs,
        "task_runs": task_runs,
        "deployments": deployments,
    }


@router.post("/", response_model=Artifact, status_code=status.HTTP_201_CREATED)
async def create_artifact(artifact: ArtifactCreate, db: Database = Depends(get_db)) -> Artifact:
    problem = progress_problem(artifact.type, artifact.data)
    if problem:
        raise HTTPException(422, detail=problem)
    async with db.session() as session:
        row = await store.create(session, artifact, now_utc())
        return Artifact.model_validate(row)


@router.get("/{id}", response_model=Artifact)
async def read_artifact(id: UUID = Path(...), db: Database = Depends(get_db)) -> Artifact:
    async with db.read_session() as session:
        row = await store.read(session, id)
    if row is None:
        not_found("Artifact", id)
    return Artifact.model_validate(row)


@router.get("/{key}/latest", response_model=Artifact)
async def read_latest_artifact(key: str = Path(...), db: Database = Depends(get_db)) -> Artifact:
    async with db.read_session() as session:
        row = await store.read_latest(session, key)
    if row is None:
        not_found("Artifact with key", key)
    return Artifact.model_validate(row)


@router.post("/filter", response_model=list[Artifact])
async def read_artifacts(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    sort: ArtifactSort | None = Body(None),
    artifacts: ArtifactFilter | None = None,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = Body(None),
    db: Database = Depends(get_db),
) -> list[Artifact]:
    filters = _filters(artifacts, flows, flow_runs, task_runs, deployments)
    async with db.read_session() as session:
        rows = await store.read_many(
            session,
            t.Artifact,
            filters,
            sort=sort or ArtifactSort.ID_DESC,
            offset=offset or 0,
            limit=page_limit(limit),
        )
    return [Artifact.model_validate(r) for r in rows]


@router.post("/latest/filter", response_model=list[ArtifactCollection])
async def read_latest_artifacts(
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    sort: ArtifactSort | None = Body(None),
    artifacts: ArtifactCollectionFilter | None = None,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = Body(None),
    db: Database = Depends(get_db),
) -> list[ArtifactCollection]:
    filters = _filters(artifacts, flows, flow_runs, task_runs, deployments)
    async with db.read_session() as session:
        rows = await store.read_many(
            session,
            t.ArtifactCollection,
            filters,
            sort=sort or ArtifactSort.ID_DESC,
            offset=offset or 0,
            limit=page_limit(limit),
        )
    return [ArtifactCollection.model_validate(r) for r in rows]


@router.post("/count")
async def count_artifacts(
    artifacts: ArtifactFilter | None = None,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = Body(None),
    db: Database = Depends(get_db),
) -> int:
    filters = _filters(artifacts, flows, flow_runs, task_runs, deployments)
    async with db.read_session() as session:
        return await store.count(session, t.Artifact, filters)


@router.post("/latest/count")
async def count_latest_artifacts(
    artifacts: ArtifactCollectionFilter | None = None,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = Body(None),
    db: Database = Depends(get_db),
) -> int:
    filters = _filters(artifacts, flows, flow_runs, task_runs, deployments)
    async with db.read_session() as session:
        return await store.count(session, t.ArtifactCollection, filters)


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_artifact(
    artifact: ArtifactUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        if "data" in artifact.model_fields_set:
            current = await store.read(session, id)
            problem = current and progress_problem(current.type, artifact.data)
            if problem:
                raise HTTPException(422, detail=problem)
        row = await store.update(session, id, artifact, now_utc())
    if row is None:
        not_found("Artifact", id)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_artifact(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        deleted = await store.delete(session, id, now_utc())
    if not deleted:
        not_found("Artifact", id)
