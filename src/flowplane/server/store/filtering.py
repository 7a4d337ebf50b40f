"""Compile filter models (``flowplane.schemas.filters``) into SQL WHERE clauses.

Leaf filters are compiled generically from their ``column`` and field names; the few
that need a join or a JSON lookup are handled by name in ``_SPECIAL``. Sort enums map
to ORDER BY clauses in ``SORTS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from flowplane.schemas import filters as f
from flowplane.schemas import sorting as s
from flowplane.server.db import dialects
from flowplane.server.db import tables as t


def _combine(operator: f.Operator, clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not clauses:
        return sa.true()
    if operator is f.Operator.or_:
        return sa.or_(*clauses)
    return sa.and_(*clauses)


def _values(values: list[Any]) -> list[Any]:
    return [v.value if hasattr(v, "value") else v for v in values]


def _leaf(dialect: str, table: Any, leaf: f.LeafFilter) -> ColumnElement[bool]:
    special = _SPECIAL.get(type(leaf))
    if special is not None:
        return special(dialect, table, leaf)
    column = getattr(table, leaf.column)
    is_json_array = leaf.column == "tags"
    clauses: list[ColumnElement[bool]] = []
    for name in type(leaf).model_fields:
        if name == "operator":
            continue
        value = getattr(leaf, name)
        if value is None:
            continue
        if name == "any_":
            if is_json_array:
                clauses.append(dialects.json_array_has_any(dialect, column, value))
            else:
                clauses.append(column.in_(_values(value)))
        elif name == "not_any_":
            clauses.append(sa.or_(column.is_(None), column.not_in(_values(value))))
        elif name == "all_":
            clauses.append(dialects.json_array_has_all(dialect, column, value))
        elif name == "like_":
            clauses.append(column.ilike(f"%{value}%"))
        elif name in ("before_", "le_"):
            clauses.append(column <= value)
        elif name in ("after_", "ge_"):
            clauses.append(column >= value)
        elif name == "exists_":
            clauses.append(column.is_not(None) if value else column.is_(None))
        elif name == "eq_":
            clauses.append(column == value)
        elif name == "is_null_":
            if is_json_array:
                empty = dialects.json_array_is_empty(dialect, column)
                clauses.append(empty if value else sa.not_(empty))
            else:
                clauses.append(column.is_(None) if value else column.is_not(None))
        else:  # pragma: no cover - a new filter field without a compiler is a bug
            raise NotImplementedError(f"{type(leaf).__name__}.{name}")
    return _combine(getattr(leaf, "operator", f.Operator.and_), clauses)


def compile_filter(dialect: str, table: Any, flt: f.Filter | None) -> ColumnElement[bool]:
    """The WHERE clause for ``flt`` over ``table`` (TRUE when there is no filter)."""
    if flt is None:
        return sa.true()
    if isinstance(flt, f.LeafFilter):
        return _leaf(dialect, table, flt)
    clauses = []
    for name in type(flt).model_fields:
        if name == "operator":
            continue
        value = getattr(flt, name)
        if value is not None:
            clauses.append(compile_filter(dialect, table, value))
    return _combine(getattr(flt, "operator", f.Operator.and_), clauses)


# --- filters that need more than one column -----------------------------------


def _flow_deployment(dialect: str, table: Any, leaf: f.FlowFilterDeployment) -> ColumnElement[bool]:
    if leaf.is_null_ is None:
        return sa.true()
    has = sa.exists(
        sa.select(t.FlowRun.id).where(
            t.FlowRun.flow_id == table.id, t.FlowRun.deployment_id.is_not(None)
        )
    )
    return sa.not_(has) if leaf.is_null_ else has


def _parent_flow_run(
    dialect: str, table: Any, leaf: f.FlowRunFilterParentFlowRunId
) -> ColumnElement[bool]:
    if leaf.any_ is None:
        return sa.true()
    parents = sa.select(t.TaskRun.id).where(t.TaskRun.flow_run_id.in_(leaf.any_))
    return table.parent_task_run_id.in_(parents)


def _created_by(dialect: str, table: Any, leaf: f.FlowRunFilterCreatedBy) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if leaf.id_ is not None:
        clauses.append(
            dialects.json_field_text(dialect, table.created_by, "id").in_(
                [str(i) for i in leaf.id_]
            )
        )
    if leaf.type_ is not None:
        clauses.append(dialects.json_field_text(dialect, table.created_by, "type").in_(leaf.type_))
    if leaf.is_null_ is not None:
        clauses.append(
            table.created_by.is_(None) if leaf.is_null_ else table.created_by.is_not(None)
        )
    return _combine(leaf.operator, clauses)


def _subflow_runs(
    dialect: str, table: Any, leaf: f.TaskRunFilterSubFlowRuns
) -> ColumnElement[bool]:
    if leaf.exists_ is None:
        return sa.true()
    has = sa.exists(sa.select(t.FlowRun.id).where(t.FlowRun.parent_task_run_id == table.id))
    return has if leaf.exists_ else sa.not_(has)


def _log_text(dialect: str, table: Any, leaf: f.LogFilterTextSearch) -> ColumnElement[bool]:
    pattern = f"%{leaf.query}%"
    return sa.or_(table.message.ilike(pattern), table.name.ilike(pattern))


def _deployment_or_flow_name(
    dialect: str, table: Any, leaf: f.DeploymentOrFlowNameFilter
) -> ColumnElement[bool]:
    if leaf.like_ is None:
        return sa.true()
    pattern = f"%{leaf.like_}%"
    flows = sa.select(t.Flow.id).where(t.Flow.name.ilike(pattern))
    return sa.or_(table.name.ilike(pattern), table.flow_id.in_(flows))


def _work_queue_name(dialect: str, table: Any, leaf: f.WorkQueueFilterName) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if leaf.any_ is not None:
        clauses.append(table.name.in_(leaf.any_))
    if leaf.startswith_ is not None:
        clauses.append(
            sa.or_(*(table.name.startswith(p, autoescape=True) for p in leaf.startswith_))
        )
    return sa.or_(*clauses) if clauses else sa.true()


_SPECIAL: dict[type, Callable[[str, Any, Any], ColumnElement[bool]]] = {
    f.DeploymentOrFlowNameFilter: _deployment_or_flow_name,
    f.WorkQueueFilterName: _work_queue_name,
    f.FlowFilterDeployment: _flow_deployment,
    f.FlowRunFilterParentFlowRunId: _parent_flow_run,
    f.FlowRunFilterCreatedBy: _created_by,
    f.TaskRunFilterSubFlowRuns: _subflow_runs,
    f.LogFilterTextSearch: _log_text,
}


# --- sorting -------------------------------------------------------------------


def _runs_sort(table: Any) -> dict[str, list[Any]]:
    return {
        "ID_DESC": [table.id.desc()],
        "START_TIME_ASC": [table.start_time.asc().nulls_last(), table.id],
        "START_TIME_DESC": [table.start_time.desc().nulls_last(), table.id],
        "EXPECTED_START_TIME_ASC": [table.expected_start_time.asc(), table.id],
        "EXPECTED_START_TIME_DESC": [table.expected_start_time.desc(), table.id],
        "NAME_ASC": [table.name.asc(), table.id],
        "NAME_DESC": [table.name.desc(), table.id],
        "NEXT_SCHEDULED_START_TIME_ASC": [table.next_scheduled_start_time.asc(), table.id],
        "END_TIME_DESC": [table.end_time.desc().nulls_last(), table.id],
    }


SORTS: dict[type, dict[str, list[Any]]] = {
    s.FlowSort: {
        "CREATED_DESC": [t.Flow.created.desc(), t.Flow.id],
        "UPDATED_DESC": [t.Flow.updated.desc(), t.Flow.id],
        "NAME_ASC": [t.Flow.name.asc()],
        "NAME_DESC": [t.Flow.name.desc()],
    },
    s.FlowRunSort: _runs_sort(t.FlowRun),
    s.TaskRunSort: _runs_sort(t.TaskRun),
    s.DeploymentSort: {
        "CREATED_DESC": [t.Deployment.created.desc(), t.Deployment.id],
        "UPDATED_DESC": [t.Deployment.updated.desc(), t.Deployment.id],
        "NAME_ASC": [t.Deployment.name.asc(), t.Deployment.id],
        "NAME_DESC": [t.Deployment.name.desc(), t.Deployment.id],
    },
    s.LogSort: {
        "TIMESTAMP_ASC": [t.Log.timestamp.asc(), t.Log.id],
        "TIMESTAMP_DESC": [t.Log.timestamp.desc(), t.Log.id],
    },
}


def order_by(sort: Any) -> list[Any]:
    """The ORDER BY clauses for a sort enum member."""
    return SORTS[type(sort)][sort.value]


# --- filters across resources ----------------------------------------------------
# List endpoints accept filters on related resources at once (e.g. flow runs whose
# flow has a tag and which have a failed task run); these build the joined clause.


def flow_where(
    dialect: str,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
) -> ColumnElement[bool]:
    """Flows matching ``flows`` that have a run matching ``flow_runs``/``task_runs``."""
    clause = compile_filter(dialect, t.Flow, flows)
    if flow_runs is not None or task_runs is not None:
        runs = sa.select(t.FlowRun.flow_id).where(
            flow_run_where(dialect, None, flow_runs, task_runs)
        )
        clause = sa.and_(clause, t.Flow.id.in_(runs))
    return clause


@dataclass(frozen=True)
class RunLinks:
    """Filters on what a flow run is linked to: its deployment, work pool and work queue."""

    deployments: f.DeploymentFilter | None = None
    work_pools: f.WorkPoolFilter | None = None
    work_pool_queues: f.WorkQueueFilter | None = None

    def __bool__(self) -> bool:
        return any(
            v is not None for v in (self.deployments, self.work_pools, self.work_pool_queues)
        )


def _links_clause(dialect: str, links: RunLinks) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    if links.deployments is not None:
        deployments = sa.select(t.Deployment.id).where(
            compile_filter(dialect, t.Deployment, links.deployments)
        )
        clauses.append(t.FlowRun.deployment_id.in_(deployments))
    if links.work_pools is not None:
        pools = sa.select(t.WorkPool.id).where(
            compile_filter(dialect, t.WorkPool, links.work_pools)
        )
        clauses.append(t.FlowRun.work_pool_id.in_(pools))
    if links.work_pool_queues is not None:
        queues = sa.select(t.WorkQueue.id).where(
            compile_filter(dialect, t.WorkQueue, links.work_pool_queues)
        )
        clauses.append(t.FlowRun.work_queue_id.in_(queues))
    return _combine(f.Operator.and_, clauses)


def flow_run_where(
    dialect: str,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> ColumnElement[bool]:
    """Flow runs matching ``flow_runs``, of a flow matching ``flows``, with a matching task run."""
    clause = compile_filter(dialect, t.FlowRun, flow_runs)
    if links:
        clause = sa.and_(clause, _links_clause(dialect, links))
    if flows is not None:
        matching = sa.select(t.Flow.id).where(compile_filter(dialect, t.Flow, flows))
        clause = sa.and_(clause, t.FlowRun.flow_id.in_(matching))
    if task_runs is not None:
        tasks = sa.select(t.TaskRun.flow_run_id).where(
            compile_filter(dialect, t.TaskRun, task_runs)
        )
        clause = sa.and_(clause, t.FlowRun.id.in_(tasks))
    return clause


def task_run_where(
    dialect: str,
    flows: f.FlowFilter | None = None,
    flow_runs: f.FlowRunFilter | None = None,
    task_runs: f.TaskRunFilter | None = None,
    links: RunLinks | None = None,
) -> ColumnElement[bool]:
    """Task runs matching ``task_runs`` whose flow run (and its flow) match the others."""
    clause = compile_filter(dialect, t.TaskRun, task_runs)
    if flows is not None or flow_runs is not None or links:
        runs = sa.select(t.FlowRun.id).where(flow_run_where(dialect, flows, flow_runs, None, links))
        clause = sa.and_(clause, t.TaskRun.flow_run_id.in_(runs))
    return clause
