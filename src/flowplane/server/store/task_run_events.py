"""Task-run state events, read back from ``task_run_state`` rows instead of stored twice.

Clients report each task-run state change as a ``prefect.task-run.<State>`` event. The
task-run recorder keeps it as a ``task_run_state`` row, and the event persister does not
store it again (see :func:`is_synthesized`). Reading events gives them back, one per
state row, shaped as the SDK sends them: the id is the state's id, ``occurred`` its
timestamp, ``received`` the row's creation time.

This module holds the two halves of that: :func:`matching` translates an
:class:`~flowplane.schemas.events.EventFilter` into a SELECT over the state rows with the
same columns as the stored-event side (``None`` when no task-run event can match, so the
caller skips the tables entirely), and :func:`load` builds the full events of one page.

The filter criteria mean what they mean for stored events, with two approximations:
the ``prefect.state-timestamp`` label reads as missing in label filters, and a text
search looks in the event name, the task run's id and name, the state message, the flow
run's and flow's names and the tags (not in the rest of the payload).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from flowplane.core.states import StateType, is_terminal
from flowplane.core.transitions import StateFacts
from flowplane.schemas.events import (
    EventAnyResourceFilter,
    EventFilter,
    EventNameFilter,
    EventRelatedFilter,
    ReceivedEvent,
    ResourceSpecification,
)
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.events.matching import (
    RESOURCE_ID,
    RESOURCE_ROLE,
    glob_matches,
    label_patterns,
    parse_text_query,
)
from flowplane.server.services.task_run_recorder import history_order, is_task_run_state_event
from flowplane.server.store.event_globs import glob

EVENT_PREFIX = "prefect.task-run."
TASK_RUN_PREFIX = "prefect.task-run."
FLOW_RUN_PREFIX = "prefect.flow-run."
FLOW_PREFIX = "prefect.flow."
TAG_PREFIX = "prefect.tag."

#: A condition known in Python (``True``/``False``) or left to the database.
Clause = bool | ColumnElement[bool]


def is_synthesized(event: ReceivedEvent) -> bool:
    """An event that is read back from its task-run state row, so is not stored as an event."""
    return is_task_run_state_event(event)


# --- folding conditions -----------------------------------------------------------------


def _and(parts: Iterable[Clause]) -> Clause:
    sql: list[ColumnElement[bool]] = []
    for part in parts:
        if part is False:
            return False
        if part is not True:
            sql.append(part)  # type: ignore[arg-type]
    return sa.and_(*sql) if sql else True


def _or(parts: Iterable[Clause]) -> Clause:
    sql: list[ColumnElement[bool]] = []
    for part in parts:
        if part is True:
            return True
        if part is not False:
            sql.append(part)  # type: ignore[arg-type]
    return sa.or_(*sql) if sql else False


def _sql(clause: Clause) -> ColumnElement[bool]:
    if clause is True:
        return sa.true()
    if clause is False:
        return sa.false()
    return clause  # type: ignore[return-value]


def _ids_under(prefix: str, resource_ids: Iterable[str]) -> list[uuid.UUID]:
    """The UUIDs of those ``resource_ids`` that are ``prefix`` + a UUID."""
    found = []
    for rid in resource_ids:
        if rid.startswith(prefix):
            try:
                value = uuid.UUID(rid[len(prefix) :])
            except ValueError:
                continue
            if str(value) == rid[len(prefix) :]:
                found.append(value)
    return found


def _text_starts(prefix: str, pattern_prefix: str, rest: Callable[[], Any]) -> Clause:
    """A text ``prefix + rest`` starts with ``pattern_prefix``."""
    if prefix.startswith(pattern_prefix):
        return True
    if pattern_prefix.startswith(prefix):
        return rest().startswith(pattern_prefix[len(prefix) :], autoescape=True)
    return False


# --- the rows and their resources, as SQL -------------------------------------------------


class _Rows:
    """The tables a synthesized event is read from; notes which joins a query needs."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.uses_task_run = False
        self.uses_flow_run = False
        self.uses_flow = False

    @property
    def state(self) -> type[t.TaskRunState]:
        return t.TaskRunState

    @property
    def task_run(self) -> type[t.TaskRun]:
        self.uses_task_run = True
        return t.TaskRun

    @property
    def flow_run(self) -> type[t.FlowRun]:
        self.uses_task_run = self.uses_flow_run = True
        return t.FlowRun

    @property
    def flow(self) -> type[t.Flow]:
        self.uses_task_run = self.uses_flow_run = self.uses_flow = True
        return t.Flow

    def from_clause(self) -> Any:
        s = t.TaskRunState
        source: Any = s.__table__
        if self.uses_task_run:
            source = source.join(t.TaskRun, t.TaskRun.id == s.task_run_id)
        if self.uses_flow_run:
            source = source.outerjoin(t.FlowRun, t.FlowRun.id == t.TaskRun.flow_run_id)
        if self.uses_flow:
            source = source.outerjoin(t.Flow, t.Flow.id == t.FlowRun.flow_id)
        return source

    def event_name(self) -> ColumnElement[str]:
        return sa.literal(EVENT_PREFIX, sa.Text) + self.state.name

    def resource_id(self) -> ColumnElement[str]:
        return sa.literal(TASK_RUN_PREFIX, sa.Text) + dialects.uuid_text(
            self.dialect, self.state.task_run_id
        )


@dataclass
class _Resource:
    """One resource a synthesized event names, as SQL over :class:`_Rows`.

    ``uuid_column`` is the column whose UUID follows ``prefix`` in the resource id (or,
    for tags, ``None``: the id is the prefix and a tag); ``labels`` maps label names to
    their SQL text (``str`` for a constant); ``scope`` wraps the conditions on a
    resource of which an event may name several (tags).
    """

    prefix: str
    role: str | None
    id_text: Callable[[], Any]
    id_in: Callable[[list[str]], Clause]
    labels: Callable[[str], Any]
    present: Callable[[], Clause]
    scope: Callable[[Clause], Clause] = lambda clause: clause


def _uuid_resource(
    rows: _Rows,
    prefix: str,
    role: str | None,
    column: Callable[[], Any],
    present: Callable[[], Clause],
    names: dict[str, Callable[[], Any]],
) -> _Resource:
    def id_text() -> Any:
        return sa.literal(prefix, sa.Text) + dialects.uuid_text(rows.dialect, column())

    def id_in(ids: list[str]) -> Clause:
        wanted = _ids_under(prefix, ids)
        return column().in_(wanted) if wanted else False

    def labels(label: str) -> Any:
        if label == RESOURCE_ID:
            return id_text()
        if label == RESOURCE_ROLE:
            return role
        make = names.get(label)
        return make() if make is not None else None

    return _Resource(prefix, role, id_text, id_in, labels, present)


def _resources(rows: _Rows) -> tuple[_Resource, list[_Resource]]:
    """The event's own resource (the task run) and its related ones (flow run, flow, tags)."""
    own = _uuid_resource(
        rows,
        TASK_RUN_PREFIX,
        None,
        lambda: rows.state.task_run_id,
        lambda: True,
        {
            "prefect.resource.name": lambda: rows.task_run.name,
            "prefect.state-name": lambda: rows.state.name,
            "prefect.state-type": lambda: rows.state.type,
            "prefect.state-message": lambda: sa.func.coalesce(rows.state.message, ""),
            "prefect.run-count": lambda: sa.cast(rows.task_run.run_count, sa.Text),
            "prefect.orchestration": lambda: "client",
        },
    )
    flow_run = _uuid_resource(
        rows,
        FLOW_RUN_PREFIX,
        "flow-run",
        lambda: rows.task_run.flow_run_id,
        lambda: rows.task_run.flow_run_id.is_not(None),
        {"prefect.resource.name": lambda: rows.flow_run.name},
    )
    flow = _uuid_resource(
        rows,
        FLOW_PREFIX,
        "flow",
        lambda: rows.flow_run.flow_id,
        lambda: rows.flow_run.flow_id.is_not(None),
        {"prefect.resource.name": lambda: rows.flow.name},
    )
    return own, [flow_run, flow, _tag_resource(rows)]


def _tag_resource(rows: _Rows) -> _Resource:
    elements: list[Any] = []

    def element() -> Any:
        if not elements:
            elements.append(dialects.json_array_elements(rows.dialect, rows.task_run.tags))
        return elements[0].c.value

    def id_text() -> Any:
        return sa.literal(TAG_PREFIX, sa.Text) + element()

    def id_in(ids: list[str]) -> Clause:
        tags = [rid[len(TAG_PREFIX) :] for rid in ids if rid.startswith(TAG_PREFIX)]
        return element().in_(tags) if tags else False

    def labels(label: str) -> Any:
        if label == RESOURCE_ID:
            return id_text()
        if label == RESOURCE_ROLE:
            return "tag"
        return None

    def scope(clause: Clause) -> Clause:
        if clause is False:
            return False
        element()  # the tags are what the condition is about, whatever it reads
        inner = sa.select(sa.literal(1)).select_from(elements[0])
        if clause is not True:
            inner = inner.where(clause)  # type: ignore[arg-type]
        return sa.exists(inner)

    return _Resource(TAG_PREFIX, "tag", id_text, id_in, labels, lambda: True, scope)


def _id_starts(resource: _Resource, prefix: str) -> Clause:
    """The resource's id starts with ``prefix``."""
    if resource.prefix.startswith(prefix):
        return True
    if prefix.startswith(resource.prefix):
        return resource.id_text().startswith(prefix, autoescape=True)
    return False


def _label_clause(resource: _Resource, spec: ResourceSpecification) -> Clause:
    parts: list[Clause] = []
    for label, value in spec.items():
        patterns = label_patterns(value)
        if not patterns:
            return False
        column = resource.labels(label)
        if column is None or isinstance(column, str):
            known = column
            parts.append(any(glob_matches(p, known) for p in patterns))
        else:
            parts.append(_or(glob(column, p) for p in patterns))
    return _and(parts)


def _resource_matches(
    resource: _Resource,
    *,
    ids: list[str] | None = None,
    id_prefixes: list[str] | None = None,
    roles: list[str] | None = None,
    pairs: list[tuple[str, str]] | None = None,
    labels: ResourceSpecification | None = None,
) -> Clause:
    """One resource of the event meets every given criterion."""
    parts: list[Clause] = [resource.present()]
    if ids:
        parts.append(resource.id_in(ids))
    if id_prefixes:
        parts.append(_or(_id_starts(resource, p) for p in id_prefixes))
    if roles:
        parts.append((resource.role or "") in roles)
    if pairs:
        parts.append(resource.id_in([rid for rid, role in pairs if role == resource.role]))
    if labels:
        parts.append(_label_clause(resource, labels))
    folded = _and(parts)
    return resource.scope(folded) if folded is not False else False


# --- the filter ----------------------------------------------------------------------------


def _name(rows: _Rows, flt: EventNameFilter) -> Clause:
    s = rows.state
    parts: list[Clause] = []
    if flt.prefix:
        parts.append(_or(_text_starts(EVENT_PREFIX, p, lambda: s.name) for p in flt.prefix))
    for p in flt.exclude_prefix or ():
        starts = _text_starts(EVENT_PREFIX, p, lambda: s.name)
        parts.append(not starts if isinstance(starts, bool) else sa.not_(starts))
    if flt.name:
        names = [n[len(EVENT_PREFIX) :] for n in flt.name if n.startswith(EVENT_PREFIX)]
        parts.append(s.name.in_(names) if names else False)
    if flt.exclude_name:
        names = [n[len(EVENT_PREFIX) :] for n in flt.exclude_name if n.startswith(EVENT_PREFIX)]
        if names:
            parts.append(s.name.not_in(names))
    return _and(parts)


def _related(related: list[_Resource], flt: EventRelatedFilter) -> Clause:
    if not (flt.id or flt.role or flt.resources_in_roles or flt.labels):
        return True
    return _or(
        _resource_matches(
            r, ids=flt.id, roles=flt.role, pairs=flt.resources_in_roles, labels=flt.labels
        )
        for r in related
    )


def _any_resource(everything: list[_Resource], flt: EventAnyResourceFilter) -> Clause:
    if not (flt.id or flt.id_prefix or flt.labels):
        return True
    return _or(
        _resource_matches(r, ids=flt.id, id_prefixes=flt.id_prefix, labels=flt.labels)
        for r in everything
    )


def _text(rows: _Rows, flt: EventFilter) -> Clause:
    if flt.text is None:
        return True
    parsed = parse_text_query(flt.text.query)
    if parsed.empty:
        return True
    haystack = sa.func.lower(
        sa.func.concat_ws(
            " ",
            rows.event_name(),
            rows.resource_id(),
            rows.task_run.name,
            rows.state.message,
            rows.flow_run.name,
            rows.flow.name,
            sa.cast(rows.task_run.tags, sa.Text),
        )
        if rows.dialect == "postgresql"
        else (
            rows.event_name()
            + " "
            + rows.resource_id()
            + " "
            + sa.func.coalesce(rows.task_run.name, "")
            + " "
            + sa.func.coalesce(rows.state.message, "")
            + " "
            + sa.func.coalesce(rows.flow_run.name, "")
            + " "
            + sa.func.coalesce(rows.flow.name, "")
            + " "
            + sa.cast(rows.task_run.tags, sa.Text)
        )
    )

    def has(term: str) -> ColumnElement[bool]:
        return haystack.contains(term.lower(), autoescape=True)

    parts: list[Clause] = []
    if parsed.include:
        parts.append(_or(has(term) for term in parsed.include))
    parts.extend(sa.not_(has(term)) for term in parsed.exclude)
    parts.extend(has(term) for term in parsed.required)
    return _and(parts)


def _where(rows: _Rows, flt: EventFilter) -> Clause:
    s = rows.state
    own, related = _resources(rows)
    parts: list[Clause] = [
        s.timestamp >= flt.occurred.since,
        s.timestamp <= flt.occurred.until,
    ]
    if flt.id.id:
        parts.append(s.id.in_(flt.id.id))
    if flt.event is not None:
        parts.append(_name(rows, flt.event))
    if flt.resource is not None:
        res = flt.resource
        parts.append(
            _resource_matches(own, ids=res.id, id_prefixes=res.id_prefix, labels=res.labels)
        )
    for rel in flt.related_filters():
        parts.append(_related(related, rel))
    # Among all of an event's resources its own has the role "" (as event_resource rows say).
    own_among_all = replace(
        own, labels=lambda label: "" if label == RESOURCE_ROLE else own.labels(label)
    )
    for anyf in flt.any_resource_filters():
        parts.append(_any_resource([own_among_all, *related], anyf))
    parts.append(_text(rows, flt))
    return _and(parts)


#: The columns both kinds of event offer to the queries in ``store.events``.
COLUMNS = ("occurred", "id", "event", "resource_id", "label", "kind")
#: The ``kind`` column's value for synthesized events (stored ones have 0).
KIND = 1


def matching(dialect: str, flt: EventFilter, columns: Sequence[str]) -> sa.Select[Any] | None:
    """The synthesized events matching ``flt``, as a SELECT of ``columns`` (of :data:`COLUMNS`).

    Returns:
        ``None`` when no task-run event can match ``flt`` (then skip this side).
    """
    rows = _Rows(dialect)
    where = _where(rows, flt)
    if where is False:
        return None
    makers: dict[str, Callable[[], Any]] = {
        "occurred": lambda: rows.state.timestamp,
        "id": lambda: rows.state.id,
        "event": rows.event_name,
        "resource_id": rows.resource_id,
        "label": lambda: rows.task_run.name,
        "kind": lambda: sa.literal(KIND),
    }
    selected = [makers[name]().label(name) for name in columns]
    return sa.select(*selected).select_from(rows.from_clause()).where(_sql(where))


# --- building a page's events ------------------------------------------------------------


def _initial_states(
    history: Iterable[Any],
) -> dict[uuid.UUID, dict[str, str] | None]:
    """For each state id, the state before it in its run's history (or ``None``)."""
    runs: dict[uuid.UUID, list[tuple[tuple[datetime, int, uuid.UUID], Any]]] = {}
    for row in history:
        facts = StateFacts(type=StateType(row.type), name=row.name, timestamp=row.timestamp)
        runs.setdefault(row.task_run_id, []).append((history_order(row.id, facts), row))
    before: dict[uuid.UUID, dict[str, str] | None] = {}
    for states in runs.values():
        states.sort(key=lambda item: item[0])
        previous = None
        for _, row in states:
            before[row.id] = previous
            previous = {"type": row.type, "name": row.name}
    return before


_NOT_STARTED = frozenset({StateType.PENDING.value, StateType.SCHEDULED.value})


def _event(row: Any, initial: dict[str, str] | None) -> ReceivedEvent:
    type_ = row.type
    task_run_id = row.task_run_id
    related: list[dict[str, str]] = []
    if row.flow_run_id is not None:
        related.append(
            {
                RESOURCE_ID: f"{FLOW_RUN_PREFIX}{row.flow_run_id}",
                RESOURCE_ROLE: "flow-run",
                "prefect.resource.name": row.flow_run_name or "",
            }
        )
        if row.flow_id is not None:
            related.append(
                {
                    RESOURCE_ID: f"{FLOW_PREFIX}{row.flow_id}",
                    RESOURCE_ROLE: "flow",
                    "prefect.resource.name": row.flow_name or "",
                }
            )
    related.extend({RESOURCE_ID: f"{TAG_PREFIX}{tag}", RESOURCE_ROLE: "tag"} for tag in row.tags)
    task_run: dict[str, Any] = {
        "name": row.task_run_name,
        "task_key": row.task_key,
        "dynamic_key": row.dynamic_key,
        "flow_run_run_count": row.flow_run_run_count,
        "empirical_policy": row.empirical_policy,
        "tags": row.tags,
        "task_inputs": row.task_inputs,
        "task_version": row.task_version,
        "run_count": row.run_count,
        "expected_start_time": row.expected_start_time,
    }
    if type_ not in _NOT_STARTED and row.start_time is not None:
        task_run["start_time"] = row.start_time
    if is_terminal(StateType(type_)):
        task_run["end_time"] = row.timestamp
    return ReceivedEvent.model_construct(
        id=row.id,
        occurred=row.timestamp,
        received=row.created,
        event=f"{EVENT_PREFIX}{row.name}",
        resource={
            RESOURCE_ID: f"{TASK_RUN_PREFIX}{task_run_id}",
            "prefect.resource.name": row.task_run_name,
            "prefect.run-count": str(row.run_count),
            "prefect.state-message": row.message or "",
            "prefect.state-name": row.name,
            "prefect.state-timestamp": row.timestamp.isoformat(),
            "prefect.state-type": type_,
            "prefect.orchestration": "client",
        },
        related=related,
        payload={
            "intended": {"from": initial["type"] if initial else None, "to": type_},
            "initial_state": initial,
            "validated_state": {
                "type": type_,
                "name": row.name,
                "message": row.message,
                "state_details": row.state_details or {},
                "data": None,
            },
            "task_run": task_run,
        },
        follows=None,
    )


async def load(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ReceivedEvent]:
    """The synthesized events of the states ``ids`` (one page's worth), by id."""
    if not ids:
        return {}
    s, tr, fr, f = t.TaskRunState, t.TaskRun, t.FlowRun, t.Flow
    rows = (
        await session.execute(
            sa.select(
                s.id,
                s.task_run_id,
                s.type,
                s.name,
                s.timestamp,
                s.message,
                s.state_details,
                s.created,
                tr.name.label("task_run_name"),
                tr.flow_run_id,
                tr.task_key,
                tr.dynamic_key,
                tr.flow_run_run_count,
                tr.empirical_policy,
                tr.tags,
                tr.task_inputs,
                tr.task_version,
                tr.run_count,
                tr.expected_start_time,
                tr.start_time,
                fr.name.label("flow_run_name"),
                fr.flow_id,
                f.name.label("flow_name"),
            )
            .select_from(s)
            .join(tr, tr.id == s.task_run_id)
            .outerjoin(fr, fr.id == tr.flow_run_id)
            .outerjoin(f, f.id == fr.flow_id)
            .where(s.id.in_(ids))
        )
    ).all()
    run_ids = {row.task_run_id for row in rows}
    history = (
        await session.execute(
            sa.select(s.id, s.task_run_id, s.type, s.name, s.timestamp).where(
                s.task_run_id.in_(run_ids)
            )
        )
    ).all()
    before = _initial_states(history)
    return {row.id: _event(row, before.get(row.id)) for row in rows}
