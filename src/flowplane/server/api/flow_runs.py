"""Flow run endpoints: create, read, filter, aggregates, state changes, resume, graphs, inputs, logs."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import TypeAdapter

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind, SetStateStatus
from flowplane.schemas import filters as f
from flowplane.schemas.base import UTCDateTime, now_utc
from flowplane.schemas.flow_runs import (
    DependencyResult,
    FlowRun,
    FlowRunBulkDeleteResponse,
    FlowRunBulkSetStateResponse,
    FlowRunCreate,
    FlowRunInput,
    FlowRunPaginationResponse,
    FlowRunUpdate,
    Graph,
    HistoryResponse,
)
from flowplane.schemas.logs import Log
from flowplane.schemas.sorting import FlowRunSort, LogSort
from flowplane.schemas.states import (
    FlowRunOrchestrationResult,
    OrchestrationResult,
    StateAbortDetails,
    StateCreate,
    StateDetails,
)
from flowplane.server import orchestration
from flowplane.server.api import API_PREFIX
from flowplane.server.api.deps import (
    MAX_LIMIT,
    conflict,
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
from flowplane.server.store import flow_runs as store
from flowplane.server.store import logs as log_store
from flowplane.server.store.filtering import RunLinks

router = APIRouter(prefix=f"{API_PREFIX}/flow_runs", tags=["Flow Runs"], route_class=LazyAPIRoute)

#: The most runs one bulk request changes.
BULK_LIMIT = 50
#: Log lines read per query while streaming a run's logs.
LOG_PAGE = 1000
#: Keys of run inputs: lowercase letters, digits and dashes.
INPUT_KEY = re.compile(r"^[a-z0-9-]+$")

_RUN_LIST = TypeAdapter(list[FlowRun])


# --- create, read, list --------------------------------------------------------------------


@router.post("/", response_model=FlowRun, status_code=status.HTTP_201_CREATED)
async def create_flow_run(
    flow_run: FlowRunCreate, db: Database = Depends(get_db), bus: Any = Depends(get_bus)
) -> Response:
    """Create a flow run (Pending unless a state is given); an idempotency key already
    used for the flow returns that run with 200."""
    now = now_utc()
    async with db.session() as session:
        created = await store.create(session, flow_run, now)
    if created is None:
        not_found("Flow", flow_run.flow_id)
    run, is_new, outcome = created
    orchestration.publish(bus, [outcome])
    return json_response(run, status.HTTP_201_CREATED if is_new else status.HTTP_200_OK)


@router.post("/count")
async def count_flow_runs(
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
    db: Database = Depends(get_db),
) -> int:
    links = RunLinks(deployments, work_pools, work_pool_queues)
    async with db.read_session() as session:
        return await store.count(
            session, flows=flows, flow_runs=flow_runs, task_runs=task_runs, links=links
        )


@router.post("/lateness")
async def average_flow_run_lateness(
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
    db: Database = Depends(get_db),
) -> float | None:
    """Average lateness, in seconds, of the matching runs (null when none match)."""
    links = RunLinks(deployments, work_pools, work_pool_queues)
    async with db.read_session() as session:
        return await store.average_lateness(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            now=now_utc(),
            links=links,
        )


@router.post("/history", response_model=list[HistoryResponse])
async def flow_run_history(
    history_start: UTCDateTime = Body(...),
    history_end: UTCDateTime = Body(...),
    history_interval_seconds: float = Body(...),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_queues: f.WorkQueueFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    """Runs per interval of expected start time and per state, with summed run time and lateness."""
    links = RunLinks(deployments, work_pools, work_queues)
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


@router.get("/{id}", response_model=FlowRun)
async def read_flow_run(id: UUID = Path(...), db: Database = Depends(get_db)) -> Response:
    async with db.read_session() as session:
        run = await store.read(session, id, now_utc())
    if run is None:
        not_found("Flow run", id)
    return json_response(run)


@router.post("/filter", response_model=list[FlowRun])
async def read_flow_runs(
    sort: FlowRunSort | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    offset: int = Body(0, ge=0),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    links = RunLinks(deployments, work_pools, work_pool_queues)
    async with db.read_session() as session:
        runs = await store.read_many(
            session,
            flows=flows,
            flow_runs=flow_runs,
            task_runs=task_runs,
            links=links,
            sort=sort or FlowRunSort.ID_DESC,
            offset=offset,
            limit=page_limit(limit),
            now=now_utc(),
        )
    return Response(content=_RUN_LIST.dump_json(runs), media_type="application/json")


@router.post("/paginate", response_model=FlowRunPaginationResponse)
async def paginate_flow_runs(
    sort: FlowRunSort | None = Body(None),
    limit: int | None = Body(None, ge=0, le=MAX_LIMIT),
    page: int = Body(1, ge=1),
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    deployments: f.DeploymentFilter | None = None,
    work_pools: f.WorkPoolFilter | None = None,
    work_pool_queues: f.WorkQueueFilter | None = None,
    db: Database = Depends(get_db),
) -> Response:
    links = RunLinks(deployments, work_pools, work_pool_queues)
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
            sort=sort or FlowRunSort.ID_DESC,
            offset=(page - 1) * size,
            limit=size,
            now=now_utc(),
        )
    return json_response(
        FlowRunPaginationResponse(
            results=runs, count=total, limit=size, pages=pages(total, size), page=page
        )
    )


# --- change --------------------------------------------------------------------------------


@router.patch("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def update_flow_run(
    flow_run: FlowRunUpdate, id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        if flow_run.job_variables is not None:
            # Job variables configure the infrastructure a deployment launches, so they
            # only change while the run waits to be submitted.
            found = await store.read_state_type_and_deployment(session, id)
            if found is None:
                not_found("Flow run", id)
            state_type, deployment_id = found
            if state_type != StateType.SCHEDULED.value:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    detail=f"Job variables for a flow run in state {state_type} cannot be updated",
                )
            if deployment_id is None:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    detail="A deployment for the flow run could not be found",
                )
        if not await store.update(session, id, flow_run, now_utc()):
            not_found("Flow run", id)


@router.patch("/{id}/labels", status_code=status.HTTP_204_NO_CONTENT)
async def update_flow_run_labels(
    labels: dict[str, Any] = Body(...), id: UUID = Path(...), db: Database = Depends(get_db)
) -> None:
    """Merge ``labels`` into the run's labels."""
    async with db.session() as session:
        if not await store.update_labels(session, id, labels, now_utc()):
            not_found("Flow run", id)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow_run(id: UUID = Path(...), db: Database = Depends(get_db)) -> None:
    async with db.session() as session:
        if not await store.delete(session, id):
            not_found("Flow run", id)


@router.post("/bulk_delete", response_model=FlowRunBulkDeleteResponse)
async def bulk_delete_flow_runs(
    flow_runs: f.FlowRunFilter | None = Body(None),
    limit: int = Body(BULK_LIMIT, ge=1, le=BULK_LIMIT),
    db: Database = Depends(get_db),
) -> FlowRunBulkDeleteResponse:
    async with db.session() as session:
        deleted = await store.delete_many(session, flow_runs, limit)
    return FlowRunBulkDeleteResponse(deleted=deleted)


@router.post("/{id}/set_state", response_model=OrchestrationResult)
async def set_flow_run_state(
    id: UUID = Path(...),
    state: StateCreate = Body(...),
    force: bool = Body(False),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> Response:
    """Propose a state; 201 when a state was recorded, 200 when the run kept its state."""
    async with db.session() as session:
        outcome = await orchestration.set_state(session, RunKind.FLOW, id, state, force=force)
    if outcome is None:
        not_found("Flow run", id)
    orchestration.publish(bus, [outcome])
    return json_response(
        outcome.result, status.HTTP_201_CREATED if outcome.written else status.HTTP_200_OK
    )


@router.post("/bulk_set_state", response_model=FlowRunBulkSetStateResponse)
async def bulk_set_flow_run_state(
    state: StateCreate = Body(...),
    flow_runs: f.FlowRunFilter | None = Body(None),
    force: bool = Body(False),
    limit: int = Body(BULK_LIMIT, ge=1, le=BULK_LIMIT),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> Response:
    """Propose ``state`` for each matching run, each in its own transaction."""
    async with db.read_session() as session:
        ids = await store.ids_matching(session, flow_runs, limit)
    results: list[FlowRunOrchestrationResult] = []
    for run_id in ids:
        try:
            async with db.session() as session:
                outcome = await orchestration.set_state(
                    session, RunKind.FLOW, run_id, state, force=force
                )
        except Exception as exc:  # one run's failure must not stop the others
            results.append(
                FlowRunOrchestrationResult(
                    flow_run_id=run_id,
                    status=SetStateStatus.ABORT,
                    details=StateAbortDetails(reason=str(exc)),
                )
            )
            continue
        if outcome is None:  # deleted since it was listed
            continue
        orchestration.publish(bus, [outcome])
        results.append(
            FlowRunOrchestrationResult(flow_run_id=run_id, **outcome.result.model_dump())
        )
    return json_response(FlowRunBulkSetStateResponse(results=results))


@router.post("/{id}/resume", response_model=OrchestrationResult)
async def resume_flow_run(
    id: UUID = Path(...),
    run_input: dict[str, Any] | None = Body(None, embed=True),
    db: Database = Depends(get_db),
    bus: Any = Depends(get_bus),
) -> Response:
    """Resume a paused run: back to Running, or to Scheduled if it was suspended.

    A pause that waits for input (its state names a keyset) resumes only with a
    ``run_input`` valid against the schema the run stored; that input is then saved
    under the keyset's response key.
    """
    now = now_utc()
    async with db.session() as session:
        run = await store.read(session, id, now)
        if run is None:
            not_found("Flow run", id)
        state = run.state
        if state is None or state.type is not StateType.PAUSED:
            return json_response(
                OrchestrationResult(
                    state=None,
                    status=SetStateStatus.ABORT,
                    details=StateAbortDetails(
                        reason="Cannot resume a flow run that is not paused."
                    ),
                )
            )
        keyset = state.state_details.run_input_keyset
        if keyset:
            run_input = run_input or {}
            problem = await _run_input_problem(session, id, keyset, run_input)
            if problem is not None:
                # Prefect answers REJECT with abort details here; clients read the reason.
                return json_response(
                    OrchestrationResult(
                        state=state,
                        status=SetStateStatus.REJECT,
                        details=StateAbortDetails(reason=problem),
                    )
                )
        if state.state_details.pause_reschedule:
            proposed = StateCreate(
                type=StateType.SCHEDULED,
                name="Resuming",
                state_details=StateDetails(scheduled_time=now),
            )
        else:
            proposed = StateCreate(type=StateType.RUNNING)
        outcome = await orchestration.set_state(session, RunKind.FLOW, id, proposed, now=now)
        assert outcome is not None
        if keyset and run_input and outcome.result.status is SetStateStatus.ACCEPT:
            await store.create_input(
                session, id, keyset["response"], json.dumps(run_input), None, now
            )
    orchestration.publish(bus, [outcome])
    return json_response(
        outcome.result, status.HTTP_201_CREATED if outcome.written else status.HTTP_200_OK
    )


async def _run_input_problem(
    session: Any, run_id: UUID, keyset: dict[str, str], run_input: dict[str, Any]
) -> str | None:
    """Why ``run_input`` cannot resume the run (None when it can)."""
    import jsonschema

    stored = await store.read_input(session, run_id, keyset.get("schema", ""))
    if stored is None:
        return "Run input schema not found."
    try:
        schema = json.loads(stored.value)
    except ValueError:
        return "Run input schema is not valid JSON."
    try:
        jsonschema.validate(run_input, schema)
    except jsonschema.ValidationError as exc:
        return f"Reason: {exc.message}"
    except (jsonschema.SchemaError, RecursionError):
        return "Invalid schema: Unable to validate run input against it."
    return None


# --- graphs --------------------------------------------------------------------------------


@router.get("/{id}/graph", response_model=list[DependencyResult])
async def read_flow_run_graph_v1(id: UUID = Path(...), db: Database = Depends(get_db)) -> Response:
    """Each task run of the flow run with the task runs it took results from."""
    async with db.read_session() as session:
        result = await store.dependencies(session, id, now_utc())
    if result is None:
        not_found("Flow run", id)
    return json_response(result)


@router.get("/{id}/graph-v2", response_model=Graph)
async def read_flow_run_graph_v2(
    id: UUID = Path(...),
    since: datetime = Query(datetime.min.replace(tzinfo=timezone.utc)),
    db: Database = Depends(get_db),
) -> Response:
    """The task runs and subflow runs of the flow run, and how they connect."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    async with db.read_session() as session:
        try:
            graph = await store.graph(session, id, since)
        except store.GraphTooLarge as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc))
    if graph is None:
        not_found("Flow run", id)
    return json_response(graph)


# --- run inputs ----------------------------------------------------------------------------


@router.post("/{id}/input", status_code=status.HTTP_201_CREATED)
async def create_flow_run_input(
    id: UUID = Path(...),
    key: str = Body(...),
    value: str = Body(...),
    sender: str | None = Body(None),
    db: Database = Depends(get_db),
) -> None:
    """Store a value for the run under ``key`` (409 if the key is taken)."""
    if not INPUT_KEY.match(key):
        raise HTTPException(
            422,
            detail="An input key may contain only lowercase letters, numbers and dashes.",
        )
    async with db.session() as session:
        stored = await store.create_input(session, id, key, value, sender, now_utc())
    if stored is None:
        not_found("Flow run", id)
    if not stored:
        conflict("A flow run input with this key already exists.")


@router.post("/{id}/input/filter", response_model=list[FlowRunInput])
async def filter_flow_run_input(
    id: UUID = Path(...),
    prefix: str = Body(..., embed=True),
    limit: int = Body(1, ge=0, le=MAX_LIMIT, embed=True),
    exclude_keys: list[str] = Body([], embed=True),
    db: Database = Depends(get_db),
) -> Response:
    async with db.read_session() as session:
        inputs = await store.filter_inputs(session, id, prefix, limit, exclude_keys)
    return json_response(inputs)


@router.get("/{id}/input/{key}", response_class=PlainTextResponse)
async def read_flow_run_input(
    id: UUID = Path(...), key: str = Path(...), db: Database = Depends(get_db)
) -> PlainTextResponse:
    async with db.read_session() as session:
        found = await store.read_input(session, id, key)
    if found is None:
        not_found("Flow run input", key)
    return PlainTextResponse(found.value)


@router.delete("/{id}/input/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow_run_input(
    id: UUID = Path(...), key: str = Path(...), db: Database = Depends(get_db)
) -> None:
    async with db.session() as session:
        if not await store.delete_input(session, id, key):
            not_found("Flow run input", key)


# --- logs ----------------------------------------------------------------------------------


@router.get("/{id}/logs/download")
async def download_logs(id: UUID = Path(...), db: Database = Depends(get_db)) -> StreamingResponse:
    """The run's log lines as CSV, oldest first, read a page at a time while streaming."""
    async with db.read_session() as session:
        run = await store.read(session, id, now_utc())
    if run is None:
        not_found("Flow run", id)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["timestamp", "level", "flow_run_id", "task_run_id", "message"])
        yield _drain(buffer)
        log_filter = f.LogFilter(flow_run_id=f.LogFilterFlowRunId(any_=[id]))
        offset = 0
        while True:
            async with db.read_session() as session:
                page = await log_store.read_many(
                    session,
                    logs=log_filter,
                    sort=LogSort.TIMESTAMP_ASC,
                    offset=offset,
                    limit=LOG_PAGE,
                )
                lines = [Log.model_validate(line) for line in page]
            if not lines:
                return
            offset += len(lines)
            for line in lines:
                writer.writerow(
                    [
                        line.timestamp,
                        line.level,
                        line.flow_run_id,
                        line.task_run_id or "",
                        line.message,
                    ]
                )
            yield _drain(buffer)

    return StreamingResponse(
        rows(),
        media_type="text/csv",
        headers={"Content-Disposition": f"attachment; filename={run.name}-logs.csv"},
    )


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text
