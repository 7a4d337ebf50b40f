"""Deployment endpoints: upsert, read, filter, update, schedules, runs from a deployment, backfills."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Response, status

from flowplane.core.deployments import merged_parameters
from flowplane.core.job_templates import variables_problem
from flowplane.core.schedules import Horizon
from flowplane.core.states import StateType
from flowplane.schemas import filters as f
from flowplane.schemas.base import UTCDateTime, now_utc
from flowplane.schemas.deployments import (
    Deployment,
    DeploymentBulkDeleteResponse,
    DeploymentCreate,
    DeploymentFlowRunCreate,
    DeploymentPaginationResponse,
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
    DeploymentUpdate,
    FlowRunBulkCreateResponse,
)
from flowplane.schemas.flow_runs import FlowRun, FlowRunCreate
from flowplane.schemas.sorting import DeploymentSort
from flowplane.schemas.states import StateCreate, StateDetails
from flowplane.schemas.workers import WorkQueue
from flowplane.server import orchestration
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import (
    MAX_LIMIT,
    conflict,
    get_bus,
    get_db,
    json_response,
    not_found,
    page_limit,
    pages,
)
from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.db import tables as t
from flowplane.server.db.session import Database
from flowplane.server.store import deployments as store
from flowplane.server.store import flow_runs as run_store
from flowplane.server.store import scheduling
from flowplane.server.store import work_pools as pool_store
from flowplane.server.store.runs import FLOW_RUNS, models_from_rows, select_runs

router = APIRouter(
    prefix=f"{API_PREFIX}/deployments", tags=["Deployments"], route_class=LazyAPIRoute
)

#: Scheduler defaults (Prefect's): how far ahead and how many runs one call creates.
DEFAULT_HORIZON = Horizon()


async def _deployment(session: Any, deployment_id: UUID) -> t.Deployment:
    row = await store.read(session, deployment_id)
    if row is None:
        not_found("Deployment", deployment_id)
    return row


def parameter_problem(schema: dict[str, Any] | None, parameters: dict[str, Any]) -> str | None:
    """Why ``parameters`` do not fit the deployment's parameter schema (None when they do)."""
    if not schema:
        return None
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    if error.validator == "required" and not error.path:
        field = str(error.message).split("'")[1] if "'" in error.message else "?"
    else:
        field = ".".join(str(p) for p in error.path) or "?"
    return f"Validation failed for field {field!r}. Failure reason: {error.message}"


def _missing_pool(exc: store.MissingWorkPool) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"Work pool {exc} not found")


# --- create, read, list ---------------------------------------------------------------------


@router.post("/", response_model=Deployment)
async def create_deployment(
    deployment: DeploymentCreate, response: Response, db: Database = Depends(get_db)
) -> Deployment:
    """Create the deployment, or replace the flow's deployment of the same name."""
    if deployment.enforce_parameter_schema is not False:
        # Defaults may leave required parameters out: only the values given must fit.
        schema = dict(deployment.parameter_openapi_schema or {})
        schema.pop("required", None)
        problem = parameter_problem(schema, deployment.parameters)
        if problem:
            raise HTTPException(422, detail=problem)
    now = now_utc()
    async with db.session() as session:
        if deployment.work_pool_name and deployment.job_variables:
            pool = await pool_store.read_pool(session, deployment.work_pool_name)
            problem = (
                variables_problem(pool.base_job_template, deployment.job_variables)
                if pool
                else None
            )
            if problem:
                raise HTTPException(422, detail=f"Error creating deployment: {problem}")
        try:
            row = await store.upsert(session, deployment, now)
        except store.MissingWorkPool as exc:
            raise _missing_pool(exc)
        if row is None:
            not_found("Flow", deployment.flow_id)
        model = (await store.models(session, [row], now))[0]
    response.status_code = status.HTTP_201_CREATED if row.created == now else status.HTTP_200_OK
    return model


@router.get("/name/{flow_name}/{deployment_name}", response_model=Deployment)
async def read_deployment_by_name(
    flow_name: str = Path(...), deployment_name: str = Path(...), db: Database = Depends(get_db)
) -> Deployment:
    async with db.read_session() as session:
        row = await store.read_by_name(session, flow_name, deployment_name)
        if row is None:
            not_found("Deployment", f"{flow_name}/{deployment_name}")
        return (await store.models(session, [row], now_utc()))[0]


@router.get("/{id}", response_model=Deployment)
async def read_deployment(id: UUID = Path(...), db: Database = Depends(get_db)) -> Deployment:
    async with db.read_session() as session:
        row = await _deployment(session, id)
        return (await store.models(session, [row], now_utc()))[0]


def _filters(
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
) -> dict[str, Any]:
    return {
        "flows": flows,
        "flow_runs": flow_runs,
        "task_runs": task_runs,
        "deployments": deployments,
        "work_pools": work_pools,
        "work_pool_queues": work_pool_queues,
    }


@router.post("/filter", response_model=list[Deployment])
async def read_deployments(
    filters: dict[str, Any] = Depends(_filters),
    sort: DeploymentSort | None = Body(DeploymentSort.NAME_ASC),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int | None = Body(0, ge=0),
    db: Database = Depends(get_db),
) -> list[Deployment]:
    async with db.read_session() as session:
        clause = store.where(session, **filters)
        rows = await store.read_many(
            session,
            clause,
            sort=sort or DeploymentSort.NAME_ASC,
            offset=offset or 0,
            limit=page_limit(limit),
        )
        return await store.models(session, rows, now_utc())


@router.post("/paginate", response_model=DeploymentPaginationResponse)
async def paginate_deployments(
    filters: dict[str, Any] = Depends(_filters),
    sort: DeploymentSort | None = Body(DeploymentSort.NAME_ASC),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    page: int = Body(1, ge=1),
    db: Database = Depends(get_db),
) -> DeploymentPaginationResponse:
    size = page_limit(limit)
    async with db.read_session() as session:
        clause = store.where(session, **filters)
        total = await store.count(session, clause)
        rows = await store.read_many(
            session,
            clause,
            sort=sort or DeploymentSort.NAME_ASC,
            offset=(page - 1) * size,
            limit=size,
        )
        results = await store.models(session, rows, now_utc())
    return DeploymentPaginationResponse(
        results=results, count=total, limit=size, pages=pages(total, size), page=page
    )


@router.post("/count")
async def count_deployments(
    filters: dict[str, Any] = Depends(_filters), db: Database = Depends(get_db)
) -> int:
    async with db.read_session() as session:
        return await store.count(session, store.where(session, **filters))


@router.post("/get_scheduled_flow_runs", response_model=list[FlowRun])
async def get_scheduled_flow_runs_for_deployments(
    deployment_ids: list[UUID] = Body(...),
    scheduled_before: UTCDateTime | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    db: Database = Depends(get_db),
) -> Response:
    """Scheduled runs of these deployments due by ``scheduled_before``; marks them polled."""
    now = now_utc()
    async with db.session() as session:
        stmt = (
            select_runs(FLOW_RUNS)
            .where(
                t.FlowRun.deployment_id.in_(deployment_ids),
                t.FlowRun.state_type == StateType.SCHEDULED.value,
            )
            .order_by(t.FlowRun.next_scheduled_start_time, t.FlowRun.id)
            .limit(page_limit(limit))
        )
        if scheduled_before is not None:
            stmt = stmt.where(t.FlowRun.next_scheduled_start_time <= scheduled_before)
        runs = models_from_rows(FLOW_RUNS, (await session.execute(stmt)).all(), now)
        await store.mark_polled(session, deployment_ids, now)
    return json_response(runs)


# --- change -------------------------------------------------------------------------------


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_deployment(
    deployment: DeploymentUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        row = await _deployment(session, id)
        enforce = row.enforce_parameter_schema
        if deployment.enforce_parameter_schema is not None:
            enforce = deployment.enforce_parameter_schema
        if enforce and deployment.parameters is not None:
            schema = dict(deployment.parameter_openapi_schema or row.parameter_openapi_schema or {})
            schema.pop("required", None)
            problem = parameter_problem(schema, deployment.parameters)
            if problem:
                raise HTTPException(422, detail=problem)
        try:
            await store.update(session, row, deployment, now_utc())
        except store.MissingWorkPool as exc:
            raise _missing_pool(exc)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc))


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deployment(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        await store.delete(session, await _deployment(session, id))


@router.post("/bulk_delete", response_model=DeploymentBulkDeleteResponse)
async def bulk_delete_deployments(
    deployments: f.DeploymentFilter | None = Body(None, embed=True),
    limit: int = Body(50, ge=1, le=MAX_LIMIT),
    db: Database = Depends(get_db),
) -> DeploymentBulkDeleteResponse:
    async with db.session() as session:
        ids = await store.delete_many(session, store.where(session, deployments=deployments), limit)
    return DeploymentBulkDeleteResponse(deleted=ids)


@router.post("/{id}/pause_deployment")
async def pause_deployment(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        await store.set_paused(session, await _deployment(session, id), True, now_utc())


@router.post("/{id}/resume_deployment")
async def resume_deployment(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        await store.set_paused(session, await _deployment(session, id), False, now_utc())


@router.get("/{id}/work_queue_check", response_model=list[WorkQueue])
async def work_queue_check_for_deployment(
    id: UUID = Path(...), db: Database = Depends(get_db)
) -> list[WorkQueue]:
    """The work queues that would pick up this deployment's runs."""
    async with db.read_session() as session:
        row = await _deployment(session, id)
        if row.work_queue_id is None:
            return []
        queue = await pool_store.read_queue_by_id(session, row.work_queue_id)
        return await pool_store.queue_models(session, [queue] if queue else [], now_utc())


# --- schedules ------------------------------------------------------------------------------


@router.get("/{id}/schedules", response_model=list[DeploymentSchedule])
async def read_deployment_schedules(
    id: UUID = Path(...), db: Database = Depends(get_db)
) -> list[DeploymentSchedule]:
    async with db.read_session() as session:
        await _deployment(session, id)
        return [store.schedule_model(r) for r in await store.read_schedules(session, id)]


@router.post(
    "/{id}/schedules",
    response_model=list[DeploymentSchedule],
    status_code=status.HTTP_201_CREATED,
)
async def create_deployment_schedules(
    schedules: list[DeploymentScheduleCreate],
    id: UUID = Path(...),
    db: Database = Depends(get_db),
) -> list[DeploymentSchedule]:
    slugs = [s.slug for s in schedules if s.slug]
    if len(slugs) != len(set(slugs)):
        raise HTTPException(422, detail="Schedule slugs must be unique within a deployment.")
    now = now_utc()
    async with db.session() as session:
        await _deployment(session, id)
        for slug in slugs:
            if await store.slug_taken(session, id, slug):
                conflict(f"The deployment already has a schedule with slug {slug!r}.")
        rows = await store.add_schedules(session, id, schedules, now)
        return [store.schedule_model(r) for r in rows]


@router.patch("/{id}/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_deployment_schedule(
    schedule: DeploymentScheduleUpdate,
    id: UUID = Path(...),
    schedule_id: UUID = Path(...),
    db: Database = Depends(get_db),
) -> None:
    async with db.session() as session:
        await _deployment(session, id)
        row = await store.read_schedule(session, id, schedule_id)
        if row is None:
            not_found("Schedule", schedule_id)
        if "slug" in schedule.model_fields_set and await store.slug_taken(
            session, id, schedule.slug, skip=row.id
        ):
            conflict(f"The deployment already has a schedule with slug {schedule.slug!r}.")
        store.apply_schedule_update(row, schedule, now_utc())
        await store.delete_future_auto_runs(session, id)


@router.delete("/{id}/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deployment_schedule(
    id: UUID = Path(...), schedule_id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        await _deployment(session, id)
        row = await store.read_schedule(session, id, schedule_id)
        if row is None:
            not_found("Schedule", schedule_id)
        await session.delete(row)
        await store.delete_future_auto_runs(session, id)


@router.post("/{id}/schedule")
async def schedule_deployment(
    id: UUID = Path(...),
    start_time: UTCDateTime | None = Body(None),
    end_time: UTCDateTime | None = Body(None),
    min_time: float | None = Body(None, ge=0),
    min_runs: int | None = Body(None, ge=0),
    max_runs: int | None = Body(None, ge=0),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> dict[str, int]:
    """Create the Scheduled runs the deployment's active schedules call for in a window.

    Each run's idempotency key names the deployment, schedule and time, so scheduling
    the same window again (or from two servers) never makes a run twice. Answers how
    many runs were created and how many times already had one (Prefect answers null).
    """
    start = start_time or now_utc()
    end = end_time or start + DEFAULT_HORIZON.max_time
    if end < start:
        raise HTTPException(422, detail="end_time must not be before start_time.")
    horizon = Horizon(
        min_runs=DEFAULT_HORIZON.min_runs if min_runs is None else min_runs,
        max_runs=DEFAULT_HORIZON.max_runs if max_runs is None else max_runs,
        min_time=DEFAULT_HORIZON.min_time if min_time is None else timedelta(seconds=min_time),
        max_time=end - start,
    )
    async with db.session() as session:
        await _deployment(session, id)
        done = await scheduling.schedule_deployments(
            session, [id], start, horizon, skip_paused=False
        )
    orchestration.publish(bus, done.outcomes)
    return {"created": done.created, "existing": done.existing}


# --- runs -----------------------------------------------------------------------------------


async def _create_run(
    session: Any,
    row: t.Deployment,
    body: DeploymentFlowRunCreate,
    now: Any,
    *,
    auto_scheduled: bool = False,
) -> tuple[FlowRun, bool, orchestration.Outcome | None]:
    extra: dict[str, Any] = {
        "deployment_version": row.version,
        "auto_scheduled": auto_scheduled,
    }
    queue = None
    if body.work_queue_name and body.work_queue_name != row.work_queue_name:
        pool = None
        if row.work_queue_id is not None:
            current = await pool_store.read_queue_by_id(session, row.work_queue_id)
            pool = (
                await pool_store.read_pool_by_id(session, current.work_pool_id) if current else None
            )
        try:
            queue = await store._queue_for(
                session, pool.name if pool else None, body.work_queue_name, now
            )
        except store.MissingWorkPool as exc:  # pragma: no cover - the pool was just read
            raise _missing_pool(exc)
    elif row.work_queue_id is not None:
        queue = await pool_store.read_queue_by_id(session, row.work_queue_id)
    job_variables = {**(row.job_variables or {}), **(body.job_variables or {})}
    if queue is not None:
        pool = await pool_store.read_pool_by_id(session, queue.work_pool_id)
        problem = variables_problem(pool.base_job_template, job_variables) if pool else None
        if problem:
            raise HTTPException(422, detail=f"Error creating flow run: {problem}")
        extra.update(
            work_queue_id=queue.id,
            work_queue_name=queue.name,
            work_pool_id=pool.id if pool else None,
            work_pool_name=pool.name if pool else None,
        )
    state = body.state or StateCreate(
        type=StateType.SCHEDULED, state_details=StateDetails(scheduled_time=now)
    )
    create = FlowRunCreate(
        name=body.name,
        flow_id=row.flow_id,
        deployment_id=row.id,
        parameters=merged_parameters(row.parameters, body.parameters),
        context=body.context,
        parent_task_run_id=body.parent_task_run_id,
        infrastructure_document_id=body.infrastructure_document_id
        or row.infrastructure_document_id,
        empirical_policy=body.empirical_policy,
        tags=list(dict.fromkeys([*(row.tags or []), *body.tags])),
        labels={**(row.labels or {}), "prefect.deployment.id": str(row.id), **(body.labels or {})},
        idempotency_key=body.idempotency_key,
        job_variables=job_variables,
        state=state,
    )
    created = await run_store.create(session, create, now, extra)
    assert created is not None  # the deployment's flow exists (cascade)
    return created


def _check_parameters(row: t.Deployment, body: DeploymentFlowRunCreate) -> None:
    enforce = row.enforce_parameter_schema
    if body.enforce_parameter_schema is not None:
        enforce = body.enforce_parameter_schema
    if enforce:
        problem = parameter_problem(
            row.parameter_openapi_schema, merged_parameters(row.parameters, body.parameters)
        )
        if problem:
            raise HTTPException(422, detail=f"Error creating flow run: {problem}")


@router.post("/{id}/create_flow_run", response_model=FlowRun)
async def create_flow_run_from_deployment(
    flow_run: DeploymentFlowRunCreate,
    id: UUID = Path(...),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> Response:
    """Create a run of the deployment (Scheduled for now unless a state is given)."""
    now = now_utc()
    async with db.session() as session:
        row = await _deployment(session, id)
        _check_parameters(row, flow_run)
        run, is_new, outcome = await _create_run(session, row, flow_run, now)
    orchestration.publish(bus, [outcome])
    return json_response(run, status.HTTP_201_CREATED if is_new else status.HTTP_200_OK)


@router.post("/{id}/create_flow_run/bulk", response_model=FlowRunBulkCreateResponse)
async def create_flow_runs_from_deployment(
    flow_runs: list[DeploymentFlowRunCreate],
    id: UUID = Path(...),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> FlowRunBulkCreateResponse:
    """Create several runs; a run whose parameters do not fit is reported, not created."""
    now = now_utc()
    results, errors, outcomes = [], [], []
    async with db.session() as session:
        row = await _deployment(session, id)
        for index, body in enumerate(flow_runs):
            try:
                _check_parameters(row, body)
            except HTTPException as exc:
                errors.append({"index": index, "detail": exc.detail})
                continue
            run, _, outcome = await _create_run(session, row, body, now)
            results.append(run)
            outcomes.append(outcome)
    orchestration.publish(bus, outcomes)
    return FlowRunBulkCreateResponse(results=results, errors=errors)
