"""Queries shared by flow runs and task runs: one description per run kind, one row-to-model path."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind, estimated_run_time, estimated_start_time_delta
from flowplane.schemas.flow_runs import FlowRun, HistoryResponse, HistoryResponseState
from flowplane.schemas.states import State
from flowplane.schemas.task_runs import TaskRun
from flowplane.server.db import tables as t
from flowplane.server.store.filtering import order_by

#: The state columns read along with a run, labelled ``state__<name>`` in result rows.
STATE_FIELDS = ("id", "type", "name", "timestamp", "message", "state_details", "data")

#: History answers at most this many intervals (as Prefect's server does).
MAX_HISTORY_INTERVALS = 500


@dataclass(frozen=True)
class RunTables:
    """Where one kind of run lives: its table, its states' table, and its wire model."""

    kind: RunKind
    run: sa.Table
    state: sa.Table
    #: The state table's column pointing at the run.
    state_fk: str
    model: type[FlowRun] | type[TaskRun]
    #: How error messages name this kind ("Flow run", "Task run").
    label: str


FLOW_RUNS = RunTables(
    RunKind.FLOW,
    t.FlowRun.__table__,  # type: ignore[arg-type]
    t.FlowRunState.__table__,  # type: ignore[arg-type]
    "flow_run_id",
    FlowRun,
    "Flow run",
)
TASK_RUNS = RunTables(
    RunKind.TASK,
    t.TaskRun.__table__,  # type: ignore[arg-type]
    t.TaskRunState.__table__,  # type: ignore[arg-type]
    "task_run_id",
    TaskRun,
    "Task run",
)


def dialect_name(session: AsyncSession) -> str:
    """The name of the database dialect ``session`` talks to."""
    return session.get_bind().dialect.name


async def execute_count(session: AsyncSession, statement: Any, params: Any = None) -> int:
    """Execute a data-changing statement; the number of rows it changed."""
    result = cast("sa.CursorResult[Any]", await session.execute(statement, params))
    return result.rowcount


def tables_for(kind: RunKind) -> RunTables:
    """The tables of ``kind`` runs."""
    return FLOW_RUNS if kind is RunKind.FLOW else TASK_RUNS


def state_columns(spec: RunTables) -> list[Any]:
    """The current state's columns, labelled for :func:`state_from_row`."""
    return [spec.state.c[name].label(f"state__{name}") for name in STATE_FIELDS]


def with_state(spec: RunTables) -> Any:
    """The run table outer-joined to its current state row."""
    return spec.run.outerjoin(spec.state, spec.state.c.id == spec.run.c.state_id)


def select_runs(spec: RunTables) -> sa.Select[Any]:
    """Every run column plus the current state's, in one row per run."""
    return sa.select(spec.run, *state_columns(spec)).select_from(with_state(spec))


def state_from_row(row: Mapping[str, Any]) -> State | None:
    """The state whose columns :func:`state_columns` put in ``row`` (None when there is none)."""
    if row["state__id"] is None:
        return None
    return State.model_validate(
        {
            "id": row["state__id"],
            "type": row["state__type"],
            "name": row["state__name"],
            "timestamp": row["state__timestamp"],
            "message": row["state__message"],
            "data": row["state__data"],
            "state_details": row["state__state_details"] or {},
        }
    )


def run_model(
    spec: RunTables, row: Mapping[str, Any], state: State | None, now: datetime
) -> FlowRun | TaskRun:
    """The wire model of a run, with the fields derived at read time filled in."""
    data = {key: value for key, value in row.items() if not key.startswith("state__")}
    state_type = StateType(data["state_type"]) if data.get("state_type") else None
    total = timedelta(seconds=data.get("total_run_time") or 0.0)
    data["estimated_run_time"] = estimated_run_time(
        total, state_type, data.get("state_timestamp"), now
    ).total_seconds()
    data["estimated_start_time_delta"] = estimated_start_time_delta(
        data.get("expected_start_time"), data.get("start_time"), state_type, now
    ).total_seconds()
    if data.get("labels") is None and spec.kind is RunKind.FLOW:
        data.pop("labels", None)
    data["state"] = state
    return spec.model.model_validate(data)


def models_from_rows(spec: RunTables, rows: Sequence[Any], now: datetime) -> list[Any]:
    """Wire models for rows of :func:`select_runs`."""
    out = []
    for row in rows:
        mapping = row._mapping
        out.append(run_model(spec, mapping, state_from_row(mapping), now))
    return out


async def read(session: AsyncSession, spec: RunTables, run_id: UUID, now: datetime) -> Any:
    """One run with its current state, or None."""
    stmt = select_runs(spec).where(spec.run.c.id == run_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return run_model(spec, row._mapping, state_from_row(row._mapping), now)


async def read_many(
    session: AsyncSession,
    spec: RunTables,
    where: Any,
    *,
    sort: Any,
    offset: int,
    limit: int | None,
    now: datetime,
) -> list[Any]:
    """Runs matching ``where`` with their states, in one query."""
    stmt = select_runs(spec).where(where).order_by(*order_by(sort)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    return models_from_rows(spec, rows, now)


async def count(session: AsyncSession, spec: RunTables, where: Any) -> int:
    stmt = sa.select(sa.func.count()).select_from(spec.run).where(where)
    return (await session.execute(stmt)).scalar_one()


async def delete(session: AsyncSession, spec: RunTables, run_id: UUID) -> bool:
    return await execute_count(session, sa.delete(spec.run).where(spec.run.c.id == run_id)) > 0


async def update(
    session: AsyncSession, spec: RunTables, run_id: UUID, values: dict[str, Any], now: datetime
) -> bool:
    """Set ``values`` on the run; False when it does not exist."""
    if not values:
        found = await session.execute(sa.select(spec.run.c.id).where(spec.run.c.id == run_id))
        return found.first() is not None
    stmt = sa.update(spec.run).where(spec.run.c.id == run_id).values(**values, updated=now)
    return await execute_count(session, stmt) > 0


# --- aggregates ------------------------------------------------------------------------


def history_intervals(
    start: datetime, end: datetime, interval: timedelta
) -> list[tuple[datetime, datetime]]:
    """Consecutive intervals of ``interval`` from ``start`` up to ``end`` (at most 500)."""
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end and len(out) < MAX_HISTORY_INTERVALS:
        out.append((cursor, cursor + interval))
        cursor += interval
    return out


async def history(
    session: AsyncSession,
    spec: RunTables,
    where: Any,
    *,
    start: datetime,
    end: datetime,
    interval: timedelta,
    now: datetime,
) -> list[HistoryResponse]:
    """Runs per interval (by expected start time) and state, with summed run time and lateness.

    The estimates depend on the clock, so the rows are read in one query and summed here
    with the same functions every run read uses.
    """
    intervals = history_intervals(start, end, interval)
    if not intervals:
        return []
    run = spec.run
    last_end = intervals[-1][1]
    stmt = sa.select(
        run.c.expected_start_time,
        run.c.start_time,
        run.c.state_type,
        run.c.state_name,
        run.c.state_timestamp,
        run.c.total_run_time,
    ).where(
        where,
        run.c.expected_start_time >= start,
        run.c.expected_start_time < last_end,
        run.c.state_type.is_not(None),
    )
    buckets: list[dict[tuple[str, str], list[float]]] = [{} for _ in intervals]
    step = interval.total_seconds()
    for row in (await session.execute(stmt)).all():
        index = int((row.expected_start_time - start).total_seconds() // step)
        if not 0 <= index < len(intervals):
            continue
        state_type = StateType(row.state_type)
        run_time = estimated_run_time(
            timedelta(seconds=row.total_run_time or 0.0), state_type, row.state_timestamp, now
        ).total_seconds()
        lateness = estimated_start_time_delta(
            row.expected_start_time, row.start_time, state_type, now
        ).total_seconds()
        sums = buckets[index].setdefault((row.state_type, row.state_name or ""), [0, 0.0, 0.0])
        sums[0] += 1
        sums[1] += max(run_time, 0.0)
        sums[2] += max(lateness, 0.0)
    return [
        HistoryResponse(
            interval_start=interval_start,
            interval_end=interval_end,
            states=[
                HistoryResponseState(
                    state_type=StateType(state_type),
                    state_name=state_name,
                    count_runs=int(sums[0]),
                    sum_estimated_run_time=sums[1],
                    sum_estimated_lateness=sums[2],
                )
                for (state_type, state_name), sums in sorted(bucket.items())
            ],
        )
        for (interval_start, interval_end), bucket in zip(intervals, buckets, strict=True)
    ]


# --- names -----------------------------------------------------------------------------

_ADJECTIVES = (
    "amber azure bold brave bright calm clever cosmic crimson daring eager electric "
    "emerald fancy fearless gentle golden graceful hidden humble icy jolly keen lively "
    "lucky magic mellow mighty misty modest noble olive patient polite proud quick "
    "quiet rapid ruby rustic scarlet shiny silent silver smart snowy solar sparkling "
    "spry steady stellar sturdy sunny swift tangerine tidy tough tranquil vivid warm "
    "wise witty zealous"
).split()
_ANIMALS = (
    "albatross alpaca ant antelope badger bat bear beaver bee bison buffalo camel "
    "caribou cat cheetah chipmunk cobra condor cougar coyote crab crane crow deer "
    "dingo dolphin donkey dove eagle eel elk falcon ferret finch fox frog gazelle "
    "gecko gibbon giraffe goose gopher gorilla hare hawk hedgehog heron hippo hornet "
    "horse hound ibex iguana jackal jaguar jay kangaroo kiwi koala lark lemur leopard "
    "lion llama lobster lynx magpie mantis marmot mole moose moth newt octopus okapi "
    "orca oriole ostrich otter owl panda panther parrot pelican penguin pony puffin "
    "quail rabbit raccoon raven reindeer rhino robin salmon seal shark sheep skunk "
    "sloth snail sparrow spider squid stork swan tapir tiger toad toucan trout turtle "
    "viper vulture walrus wasp weasel whale wolf wombat wren yak zebra"
).split()


def random_run_name() -> str:
    """A readable name such as ``crimson-fox`` for a run created without one."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}"
