"""Queries on flow runs: creation (idempotent per flow), reads, aggregates, graphs and run inputs."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind, estimated_run_time, estimated_start_time_delta
from flowplane.schemas import filters as f
from flowplane.schemas.flow_runs import (
    DependencyResult,
    FlowRun,
    FlowRunCreate,
    FlowRunInput,
    FlowRunUpdate,
    Graph,
    GraphEdge,
    GraphNode,
    GraphState,
    HistoryResponse,
)
from flowplane.schemas.sorting import FlowRunSort
from flowplane.server import orchestration
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store import runs
from flowplane.server.store.filtering import RunLinks, flow_run_where
from flowplane.server.store.runs import (
    FLOW_RUNS,
    TASK_RUNS,
    dialect_name,
    execute_count,
    random_run_name,
)
from flowplane.server.store.states import read_states

#: A graph with more nodes than this is refused rather than sent (Prefect's default limit).
MAX_GRAPH_NODES = 10_000

_FLOW = t.Flow.__table__
_RUN = FLOW_RUNS.run
_TASK = TASK_RUNS.run
#: What a new run needs of its flow (built once: it runs on every create).
_READ_FLOW = sa.select(_FLOW.c.name, _FLOW.c.tags, _FLOW.c.labels).where(
    _FLOW.c.id == sa.bindparam("flow_id")
)
_INPUT: sa.Table = t.FlowRunInput.__table__  # type: ignore[assignment]


def where(
    session: AsyncSession,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> Any:
    """The WHERE clause selecting flow runs that match all three filters."""
    return flow_run_where(dialect_name(session), flows, flow_runs, task_runs, links)


async def create(
    session: AsyncSession,
    body: FlowRunCreate,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> tuple[FlowRun, bool, orchestration.Outcome | None] | None:
    """Create a flow run in its initial state (Pending unless the body says otherwise).

    A run whose ``idempotency_key`` is already used by a run of the same flow is not
    created; that run is returned instead. ``extra`` sets further columns (a deployment's
    run gets its work queue and pool this way).

    Returns:
        ``(run, created, outcome)``, or None when the flow does not exist.
    """
    flow = (await session.execute(_READ_FLOW, {"flow_id": body.flow_id})).first()
    if flow is None:
        return None
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "created": now,
        "updated": now,
        "name": body.name or random_run_name(),
        "flow_id": body.flow_id,
        "deployment_id": body.deployment_id,
        "flow_version": body.flow_version,
        "parameters": body.parameters,
        "context": body.context,
        "parent_task_run_id": body.parent_task_run_id,
        "infrastructure_document_id": body.infrastructure_document_id,
        "empirical_policy": body.empirical_policy.model_dump(mode="json"),
        "tags": body.tags,
        # The flow's labels, then the run's identity, then what the caller asked for.
        "labels": {
            **(flow.labels or {}),
            "prefect.flow.id": str(body.flow_id),
            **(body.labels or {}),
        },
        "idempotency_key": body.idempotency_key,
        "work_pool_name": body.work_pool_name,
        "work_queue_name": body.work_queue_name,
        "job_variables": body.job_variables or {},
        "run_count": 0,
        "total_run_time": 0.0,
        "auto_scheduled": False,
    }
    if body.work_pool_name is not None or body.work_queue_name is not None:
        from flowplane.server.store.work_pools import resolve_queue

        found = await resolve_queue(session, body.work_pool_name, body.work_queue_name)
        if found is not None:
            pool, queue = found
            values.update(
                work_pool_id=pool.id,
                work_pool_name=pool.name,
                work_queue_id=queue.id,
                work_queue_name=queue.name,
            )
    values.update(extra or {})
    outcome = await orchestration.insert_run(
        session,
        RunKind.FLOW,
        values,
        body.state,
        related={"flow__name": flow.name, "flow__tags": flow.tags},
        ignore_conflicts=body.idempotency_key is not None,
        now=now,
    )
    if outcome is None:
        existing = (
            await session.execute(
                runs.select_runs(FLOW_RUNS).where(
                    _RUN.c.flow_id == body.flow_id, _RUN.c.idempotency_key == body.idempotency_key
                )
            )
        ).first()
        assert existing is not None
        return runs.models_from_rows(FLOW_RUNS, [existing], now)[0], False, None
    model = runs.run_model(FLOW_RUNS, outcome.run, outcome.result.state, now)
    return model, True, outcome  # type: ignore[return-value]


async def read(session: AsyncSession, run_id: UUID, now: datetime) -> FlowRun | None:
    return await runs.read(session, FLOW_RUNS, run_id, now)


async def read_many(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
    sort: FlowRunSort = FlowRunSort.ID_DESC,
    offset: int = 0,
    limit: int | None = None,
    now: datetime,
) -> list[FlowRun]:
    clause = where(session, flows, flow_runs, task_runs, links)
    return await runs.read_many(
        session, FLOW_RUNS, clause, sort=sort, offset=offset, limit=limit, now=now
    )


async def count(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> int:
    return await runs.count(session, FLOW_RUNS, where(session, flows, flow_runs, task_runs, links))


async def update(session: AsyncSession, run_id: UUID, body: FlowRunUpdate, now: datetime) -> bool:
    values = body.model_dump(mode="json", exclude_unset=True)
    return await runs.update(session, FLOW_RUNS, run_id, values, now)


async def read_state_type_and_deployment(
    session: AsyncSession, run_id: UUID
) -> tuple[str | None, UUID | None] | None:
    """The run's state type and deployment id (None when the run does not exist)."""
    row = (
        await session.execute(
            sa.select(_RUN.c.state_type, _RUN.c.deployment_id).where(_RUN.c.id == run_id)
        )
    ).first()
    return None if row is None else (row.state_type, row.deployment_id)


async def update_labels(
    session: AsyncSession, run_id: UUID, labels: dict[str, Any], now: datetime
) -> bool:
    """Merge ``labels`` into the run's labels; False when the run does not exist."""
    row = (await session.execute(sa.select(_RUN.c.labels).where(_RUN.c.id == run_id))).first()
    if row is None:
        return False
    merged = {**(row.labels or {}), **labels}
    await session.execute(
        sa.update(_RUN).where(_RUN.c.id == run_id).values(labels=merged, updated=now)
    )
    return True


async def delete(session: AsyncSession, run_id: UUID) -> bool:
    """Delete the run (its task runs, states and inputs go with it) and its log lines."""
    if not await runs.delete(session, FLOW_RUNS, run_id):
        return False
    await session.execute(sa.delete(t.Log).where(t.Log.flow_run_id == run_id))
    return True


async def delete_many(
    session: AsyncSession, flow_runs: f.FlowRunFilter | None, limit: int
) -> list[UUID]:
    ids = (
        (
            await session.execute(
                sa.select(_RUN.c.id).where(where(session, None, flow_runs)).limit(limit)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        await session.execute(sa.delete(_RUN).where(_RUN.c.id.in_(ids)))
        await session.execute(sa.delete(t.Log).where(t.Log.flow_run_id.in_(ids)))
    return list(ids)


async def ids_matching(
    session: AsyncSession, flow_runs: f.FlowRunFilter | None, limit: int
) -> list[UUID]:
    stmt = (
        sa.select(_RUN.c.id)
        .where(where(session, None, flow_runs))
        .order_by(_RUN.c.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


# --- aggregates ----------------------------------------------------------------------------


async def history(
    session: AsyncSession,
    *,
    start: datetime,
    end: datetime,
    interval: timedelta,
    flows: f.FlowFilter | None,
    flow_runs: f.FlowRunFilter | None,
    task_runs: f.TaskRunFilter | None,
    now: datetime,
    links: RunLinks | None = None,
) -> list[HistoryResponse]:
    clause = where(session, flows, flow_runs, task_runs, links)
    return await runs.history(
        session, FLOW_RUNS, clause, start=start, end=end, interval=interval, now=now
    )


async def average_lateness(
    session: AsyncSession,
    *,
    flows: f.FlowFilter | None,
    flow_runs: f.FlowRunFilter | None,
    task_runs: f.TaskRunFilter | None,
    links: RunLinks | None = None,
    now: datetime,
) -> float | None:
    """Mean lateness in seconds of the matching runs that have an expected start (None if none).

    Lateness depends on the clock for runs that have not started, so it is computed with
    the same function as each run's ``estimated_start_time_delta``.
    """
    stmt = sa.select(_RUN.c.expected_start_time, _RUN.c.start_time, _RUN.c.state_type).where(
        where(session, flows, flow_runs, task_runs, links), _RUN.c.expected_start_time.is_not(None)
    )
    total, n = 0.0, 0
    for row in (await session.execute(stmt)).all():
        state_type = StateType(row.state_type) if row.state_type else None
        total += estimated_start_time_delta(
            row.expected_start_time, row.start_time, state_type, now
        ).total_seconds()
        n += 1
    return total / n if n else None


# --- graphs ----------------------------------------------------------------------------


async def exists(session: AsyncSession, run_id: UUID) -> bool:
    return (
        await session.execute(sa.select(_RUN.c.id).where(_RUN.c.id == run_id))
    ).first() is not None


async def dependencies(
    session: AsyncSession, run_id: UUID, now: datetime
) -> list[DependencyResult] | None:
    """Each task run of the flow run with the task runs it consumed (None: no such run)."""
    if not await exists(session, run_id):
        return None
    stmt = runs.select_runs(TASK_RUNS).where(_TASK.c.flow_run_id == run_id)
    out = []
    for row in (await session.execute(stmt)).all():
        m = row._mapping
        state = runs.state_from_row(m)
        upstream: dict[str, dict[str, str]] = {}
        for inputs in (m["task_inputs"] or {}).values():
            for item in inputs:
                if item.get("input_type") == "task_run" and item.get("id"):
                    upstream[str(item["id"])] = {"input_type": "task_run", "id": item["id"]}
        state_type = StateType(m["state_type"]) if m["state_type"] else None
        out.append(
            DependencyResult(
                id=m["id"],
                name=m["name"],
                upstream_dependencies=list(upstream.values()),  # type: ignore[arg-type]
                state=state,
                expected_start_time=m["expected_start_time"],
                start_time=m["start_time"],
                end_time=m["end_time"],
                total_run_time=m["total_run_time"],
                estimated_run_time=estimated_run_time(
                    timedelta(seconds=m["total_run_time"] or 0.0),
                    state_type,
                    m["state_timestamp"],
                    now,
                ).total_seconds(),
                untrackable_result=bool(state and state.state_details.untrackable_result),
            )
        )
    return out


class GraphTooLarge(Exception):
    """The flow run's graph has more nodes than :data:`MAX_GRAPH_NODES`."""


async def graph(session: AsyncSession, run_id: UUID, since: datetime) -> Graph | None:
    """The flow run's task runs and subflow runs as nodes, linked by the data they passed.

    A task run that stands for a subflow appears as the subflow run. Inputs recorded
    under ``__parents__`` mean "ran inside" (encapsulating) rather than "consumed".
    Nodes that ended before ``since`` are left out (clients poll for what changed).

    Raises:
        GraphTooLarge: past :data:`MAX_GRAPH_NODES` nodes.
    """
    head = (
        await session.execute(
            sa.select(
                sa.func.coalesce(_RUN.c.start_time, _RUN.c.expected_start_time).label("start"),
                _RUN.c.end_time,
            ).where(_RUN.c.id == run_id)
        )
    ).first()
    if head is None:
        return None
    sub = _RUN.alias("subflow_run")
    flow = _FLOW.alias("subflow")
    stmt = (
        sa.select(
            _TASK.c.id,
            _TASK.c.name,
            _TASK.c.state_type,
            _TASK.c.start_time,
            _TASK.c.expected_start_time,
            _TASK.c.end_time,
            _TASK.c.task_inputs,
            sub.c.id.label("sub_id"),
            sub.c.name.label("sub_name"),
            sub.c.state_type.label("sub_state_type"),
            sub.c.start_time.label("sub_start_time"),
            sub.c.expected_start_time.label("sub_expected_start_time"),
            sub.c.end_time.label("sub_end_time"),
            flow.c.name.label("flow_name"),
        )
        .select_from(
            _TASK.outerjoin(sub, sub.c.parent_task_run_id == _TASK.c.id).outerjoin(
                flow, flow.c.id == sub.c.flow_id
            )
        )
        .where(_TASK.c.flow_run_id == run_id, _TASK.c.state_type != StateType.PENDING.value)
    )
    nodes: dict[UUID, dict[str, Any]] = {}
    for row in (await session.execute(stmt)).all():
        start = row.sub_start_time or row.sub_expected_start_time or row.start_time
        start = start or row.expected_start_time
        if start is None:
            continue
        end = row.sub_end_time or row.end_time
        if end is None and row.state_type == StateType.COMPLETED.value:
            end = row.expected_start_time
        node_id = row.sub_id or row.id
        refs: list[tuple[UUID, bool]] = []
        for key, inputs in (row.task_inputs or {}).items():
            for item in inputs:
                if item.get("id"):
                    refs.append((UUID(str(item["id"])), key == "__parents__"))
        nodes[node_id] = {
            "kind": "flow-run" if row.sub_id else "task-run",
            "id": node_id,
            "label": f"{row.flow_name} / {row.sub_name}" if row.sub_id else row.name,
            "state_type": row.sub_state_type or row.state_type,
            "start_time": start,
            "end_time": end,
            "refs": refs,
        }
        if len(nodes) > MAX_GRAPH_NODES:
            raise GraphTooLarge(
                f"The graph of flow run {run_id} has more than {MAX_GRAPH_NODES} nodes."
            )

    parents: dict[UUID, list[UUID]] = defaultdict(list)
    children: dict[UUID, list[UUID]] = defaultdict(list)
    encapsulating: dict[UUID, list[UUID]] = defaultdict(list)
    for node in nodes.values():
        for ref, is_encapsulating in node["refs"]:
            if ref not in nodes:
                continue
            target = encapsulating if is_encapsulating else parents
            if ref not in target[node["id"]]:
                target[node["id"]].append(ref)
                if not is_encapsulating:
                    children[ref].append(node["id"])

    def by_start(ids: list[UUID]) -> list[GraphEdge]:
        return [GraphEdge(id=i) for i in sorted(ids, key=lambda i: nodes[i]["start_time"])]

    far_future = datetime.max.replace(tzinfo=since.tzinfo)
    kept = [n for n in nodes.values() if n["end_time"] is None or n["end_time"] >= since]
    kept.sort(key=lambda n: (n["start_time"], n["end_time"] or far_future))
    graph_nodes = [
        (
            n["id"],
            GraphNode(
                kind=n["kind"],
                id=n["id"],
                label=n["label"],
                state_type=n["state_type"],
                start_time=n["start_time"],
                end_time=n["end_time"],
                parents=by_start(parents[n["id"]]),
                children=by_start(children[n["id"]]),
                encapsulating=by_start(encapsulating[n["id"]]),
                artifacts=[],
            ),
        )
        for n in kept
    ]
    states = await read_states(session, RunKind.FLOW, run_id)
    return Graph(
        start_time=head.start,
        end_time=head.end_time,
        root_node_ids=[node_id for node_id, node in graph_nodes if not node.parents],
        nodes=graph_nodes,
        artifacts=[],
        states=[
            GraphState(id=s.id, timestamp=s.timestamp, type=s.type, name=s.name or "")
            for s in states
        ],
    )


# --- run inputs ----------------------------------------------------------------------------


async def create_input(
    session: AsyncSession, run_id: UUID, key: str, value: str, sender: str | None, now: datetime
) -> bool | None:
    """Store an input; False when the key is taken, None when the run does not exist."""
    if not await exists(session, run_id):
        return None
    stmt = (
        dialects.insert(dialect_name(session), _INPUT)
        .values(
            id=uuid.uuid4(),
            flow_run_id=run_id,
            key=key,
            value=value,
            sender=sender,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing()
    )
    return await execute_count(session, stmt) == 1


async def filter_inputs(
    session: AsyncSession, run_id: UUID, prefix: str, limit: int, exclude_keys: list[str]
) -> list[FlowRunInput]:
    """Inputs whose key starts with ``prefix`` (oldest first), minus ``exclude_keys``."""
    stmt = (
        sa.select(_INPUT)
        .where(
            _INPUT.c.flow_run_id == run_id,
            _INPUT.c.key.startswith(prefix, autoescape=True),
            _INPUT.c.key.not_in(exclude_keys),
        )
        .order_by(_INPUT.c.created, _INPUT.c.key)
        .limit(limit)
    )
    return [
        FlowRunInput.model_validate(row._mapping) for row in (await session.execute(stmt)).all()
    ]


async def read_input(session: AsyncSession, run_id: UUID, key: str) -> FlowRunInput | None:
    stmt = sa.select(_INPUT).where(_INPUT.c.flow_run_id == run_id, _INPUT.c.key == key)
    row = (await session.execute(stmt)).first()
    return None if row is None else FlowRunInput.model_validate(row._mapping)


async def delete_input(session: AsyncSession, run_id: UUID, key: str) -> bool:
    stmt = sa.delete(_INPUT).where(_INPUT.c.flow_run_id == run_id, _INPUT.c.key == key)
    return await execute_count(session, stmt) > 0


# --- pauses --------------------------------------------------------------------------------


async def paused_runs(
    session: AsyncSession, after: UUID | None, limit: int
) -> list[tuple[UUID, UUID | None, datetime | None]]:
    """Paused runs by id after ``after``: ``(run id, state id, pause timeout)`` each.

    The state type is indexed, so an idle server pays one cheap lookup per pass.
    """
    state = FLOW_RUNS.state
    stmt = (
        sa.select(_RUN.c.id, _RUN.c.state_id, state.c.state_details)
        .select_from(runs.with_state(FLOW_RUNS))
        .where(_RUN.c.state_type == StateType.PAUSED.value)
        .order_by(_RUN.c.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(_RUN.c.id > after)
    found = []
    for row in (await session.execute(stmt)).all():
        timeout = (row.state_details or {}).get("pause_timeout")
        found.append((row.id, row.state_id, _timestamp(timeout) if timeout else None))
    return found


def _timestamp(value: Any) -> datetime | None:
    """A stored ISO timestamp as aware UTC (None if it cannot be read)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


async def lock_state_id(session: AsyncSession, run_id: UUID) -> UUID | None:
    """The run's current state id, with the run locked until the transaction ends (PostgreSQL)."""
    stmt = sa.select(_RUN.c.state_id).where(_RUN.c.id == run_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()
