"""Recording task runs from plain state changes (embedded mode) in bulk, in a few statements per batch.

The engine of this process hands its task-run state changes over as
:class:`~flowplane.schemas.task_run_changes.TaskRunChange` tuples, a batch at a time.
A run first seen in a batch is inserted once, with the bookkeeping of its latest
change, and its states with it, in multi-row statements. A run this recorder inserted
earlier and that has not finished yet (an *open* run: ``task.map`` queues thousands of
Pending runs before any of them starts) is continued the same way: its states are
inserted and its row updated in bulk. Only a run that is neither (its natural key (flow
run, task key, dynamic key) belongs to another run, or it finished already) is left to
the task-run recorder's general path, which merges or replays stored runs.

The caller keeps the set of open runs and applies :class:`Recorded` to it once the
transaction has committed.

On SQLite the rows are bound straight to the driver
(:mod:`flowplane.server.store.task_run_changes_sqlite`); other databases get the same
rows through SQLAlchemy Core.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.schemas.base import now_utc
from flowplane.schemas.task_run_changes import TaskRunChange
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.task_run_changes_sqlite import record_sqlite

_TERMINAL = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
_TASK_RUN = cast(sa.Table, t.TaskRun.__table__)
_TASK_RUN_STATE = cast(sa.Table, t.TaskRunState.__table__)

#: A run's current state and bookkeeping, as of its latest change.
BOOKKEEPING_COLUMNS = (
    "state_id",
    "state_type",
    "state_name",
    "state_timestamp",
    "run_count",
    "expected_start_time",
    "next_scheduled_start_time",
    "start_time",
    "end_time",
    "total_run_time",
)
#: The columns a new run's row is written with, in order.
RUN_COLUMNS = (
    "id",
    "created",
    "updated",
    "flow_run_id",
    "task_key",
    "dynamic_key",
    "task_version",
    "task_inputs",
    "flow_run_run_count",
    "name",
    *BOOKKEEPING_COLUMNS,
    "tags",
    "labels",
    "empirical_policy",
)
STATE_COLUMNS = (
    "id",
    "created",
    "updated",
    "task_run_id",
    "type",
    "name",
    "timestamp",
    "message",
    "state_details",
    "data",
)

#: The columns a continued run's row gets from its latest change, in order (after its id).
UPDATE_COLUMNS = ("updated", *BOOKKEEPING_COLUMNS)


def group_by_run(changes: Sequence[TaskRunChange]) -> dict[int, list[TaskRunChange]]:
    """The changes of each run, in the order they were made, keyed by the run id's
    integer (hashing an int is a C call; hashing a UUID is a Python one)."""
    runs: dict[int, list[TaskRunChange]] = {}
    get = runs.get
    for change in changes:
        key = change.id.int
        found = get(key)
        if found is None:
            runs[key] = [change]
        else:
            found.append(change)
    return runs


@dataclass(slots=True)
class Recorded:
    """What :func:`record_changes` did: the changes it left, and the runs it opened or
    closed (by their ids' integers)."""

    rest: list[TaskRunChange]
    opened: set[int] = field(default_factory=set)
    closed: set[int] = field(default_factory=set)

    def apply(self, open_runs: set[int]) -> None:
        """Update the caller's open runs (after the transaction committed)."""
        if self.closed:
            open_runs.difference_update(self.closed)
        if self.opened:
            open_runs.update(self.opened)


async def record_changes(
    session: AsyncSession, changes: Sequence[TaskRunChange], open_runs: set[int]
) -> Recorded:
    """Insert the new runs of ``changes`` and continue the open ones, with their states.

    Args:
        open_runs: the ids (``UUID.int``) of the runs this recorder inserted that have not
            finished (not modified here).

    Returns:
        The changes of the runs neither inserted nor continued (stored already, or their
        natural key is taken), in their original order, and the runs opened and closed.
    """
    runs = group_by_run(changes)
    if not runs:
        return Recorded([])
    if open_runs:
        new = {key: group for key, group in runs.items() if key not in open_runs}
        continuing = {key: group for key, group in runs.items() if key in open_runs}
    else:
        new, continuing = runs, {}
    dialect = dialects.dialect_name(session)
    if dialect == "sqlite":
        inserted = await record_sqlite(session, new, continuing)
    else:
        inserted = await _record_generic(session, dialect, new, continuing)
    if len(inserted) + len(continuing) == len(runs):  # the usual case: nothing left over
        recorded = Recorded([])
    else:
        recorded = Recorded(
            [c for c in changes if c.id.int not in inserted and c.id.int not in continuing]
        )
    terminal = _TERMINAL
    recorded.opened = {key for key in inserted if runs[key][-1].state_type not in terminal}
    recorded.closed = {key for key, group in continuing.items() if group[-1].state_type in terminal}
    return recorded


# --- other databases: SQLAlchemy Core -----------------------------------------------------------


async def _record_generic(
    session: AsyncSession,
    dialect: str,
    new: dict[int, list[TaskRunChange]],
    continuing: dict[int, list[TaskRunChange]],
) -> set[int]:
    now = now_utc()
    inserted: set[int] = set()
    if new:
        run_rows = [{"id": group[-1].id, **_run_values(group[-1], now)} for group in new.values()]
        stmt = (
            dialects.insert(dialect, _TASK_RUN)
            .on_conflict_do_nothing()
            .returning(_TASK_RUN.c.id)
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(RUN_COLUMNS))
            )
        )
        inserted = {rid.int for rid in (await session.execute(stmt, run_rows)).scalars().all()}
    if continuing:
        columns = UPDATE_COLUMNS
        update = (
            sa.update(_TASK_RUN)
            .where(_TASK_RUN.c.id == sa.bindparam("b_id"))
            .values({c: sa.bindparam(f"v_{c}", type_=_TASK_RUN.c[c].type) for c in columns})
        )
        params = []
        for group in continuing.values():
            values = _run_values(group[-1], now)
            params.append({"b_id": group[-1].id, **{f"v_{c}": values[c] for c in columns}})
        await session.execute(update, params)
    state_rows = [
        {
            "id": change.state_uuid(),
            "created": now,
            "updated": now,
            "task_run_id": change.id,
            "type": change.state_type,
            "name": change.state_name,
            "timestamp": change.timestamp,
            "message": change.message,
            "state_details": change.stored_details()
            if change.details
            else {
                "flow_run_id": change.flow_run_id and str(change.flow_run_id),
                "task_run_id": str(change.id),
            },
            "data": None,
        }
        for group in [*(new[key] for key in inserted), *continuing.values()]
        for change in group
    ]
    if state_rows:
        stmt = (
            dialects.insert(dialect, _TASK_RUN_STATE)
            .on_conflict_do_nothing(index_elements=[_TASK_RUN_STATE.c.id])
            .execution_options(
                insertmanyvalues_page_size=dialects.rows_per_statement(dialect, len(STATE_COLUMNS))
            )
        )
        await session.execute(stmt, state_rows)
    return inserted


def _run_values(last: TaskRunChange, now: dt.datetime) -> dict[str, Any]:
    """A task run's columns (but its id) as of its latest change."""
    return {
        "created": now,
        "updated": now,
        "flow_run_id": last.flow_run_id,
        "task_key": last.task_key,
        "dynamic_key": last.dynamic_key,
        "task_version": last.task_version,
        "task_inputs": last.task_inputs,
        "flow_run_run_count": last.flow_run_run_count,
        "name": last.name,
        "state_id": last.state_uuid(),
        "state_type": last.state_type,
        "state_name": last.state_name,
        "state_timestamp": last.timestamp,
        "run_count": last.run_count,
        "expected_start_time": last.expected_start_time,
        "next_scheduled_start_time": last.next_scheduled_start_time,
        "start_time": last.start_time,
        "end_time": last.end_time,
        "total_run_time": last.total_run_time,
        "tags": last.tags,
        "labels": {},
        "empirical_policy": last.empirical_policy,
    }
