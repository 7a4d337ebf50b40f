"""The only code that commits a run's state change: load the run, ask the core rules, write, report.

Flow runs and task runs take the same path (``flowplane.server.store.runs.RunTables`` says
where each kind lives): one locked SELECT of the run with its current state, the pure
rules of ``flowplane.core.transitions``, then one INSERT of the state and one UPDATE of the
run. A flow run started from a task of another flow (a subflow) keeps that parent task
run's state in step. Flow-run state changes produce events, which the caller publishes
once the transaction has committed (:func:`publish`), so nobody hears of a change that
was rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.states import StateType
from flowplane.core.transitions import (
    Decision,
    RunFacts,
    RunKind,
    RunUpdates,
    SetStateStatus,
    StateFacts,
    bookkeeping,
    decide,
)
from flowplane.schemas.base import now_utc
from flowplane.schemas.events import ReceivedEvent
from flowplane.schemas.states import (
    OrchestrationResult,
    State,
    StateAbortDetails,
    StateAcceptDetails,
    StateCreate,
    StateDetails,
    StateRejectDetails,
    StateResponseDetails,
    StateWaitDetails,
)
from flowplane.server.db import dialects
from flowplane.server.db import tables as t
from flowplane.server.store.runs import (
    FLOW_RUNS,
    TASK_RUNS,
    RunTables,
    dialect_name,
    execute_count,
    state_columns,
    state_from_row,
    tables_for,
    with_state,
)

#: State messages in events are cut to this length (as Prefect's server does).
TRUNCATE_MESSAGES_AT = 100_000
#: An event names the previous state's event as the one it follows when they are this close.
TIGHT_TIMING = timedelta(minutes=5)


@dataclass
class Outcome:
    """What one proposal did.

    ``result`` is the answer for the client, ``written`` whether a state was recorded,
    ``run`` the run's columns afterwards and ``events`` what to publish after commit.
    """

    result: OrchestrationResult
    written: bool
    run: dict[str, Any]
    events: list[ReceivedEvent] = field(default_factory=list)


# --- loading -----------------------------------------------------------------------


def _load_statement(spec: RunTables) -> sa.Select[Any]:
    """The run, its current state and what the rules need of its parent, locked for update.

    Flow runs bring their flow's name and tags (for events); task runs their flow run's
    state type and run count (a task may only start inside a running flow run). On
    SQLite the writing transaction already holds the database's write lock, and
    ``FOR UPDATE`` compiles to nothing.
    """
    run = spec.run
    columns: list[Any] = [run, *state_columns(spec)]
    source = with_state(spec)
    if spec.kind is RunKind.FLOW:
        flow = t.Flow.__table__
        columns += [flow.c.name.label("flow__name"), flow.c.tags.label("flow__tags")]
        source = source.outerjoin(flow, flow.c.id == run.c.flow_id)
    else:
        parent = FLOW_RUNS.run.alias("parent_flow_run")
        columns += [
            parent.c.state_type.label("parent__state_type"),
            parent.c.run_count.label("parent__run_count"),
        ]
        source = source.outerjoin(parent, parent.c.id == run.c.flow_run_id)
    return (
        sa.select(*columns)
        .select_from(source)
        .where(run.c.id == sa.bindparam("run_id"))
        .with_for_update(of=run)
    )


def _update_statement(spec: RunTables) -> sa.Update:
    """An UPDATE of one run whose SET clause comes from the parameters it is executed with."""
    return sa.update(spec.run).where(spec.run.c.id == sa.bindparam("run_id_"))


# Built once: these run on every state change, and building statements is not free.
_LOAD = {RunKind.FLOW: _load_statement(FLOW_RUNS), RunKind.TASK: _load_statement(TASK_RUNS)}
_INSERT_STATE = {kind: sa.insert(tables_for(kind).state) for kind in RunKind}
_UPDATE_RUN = {kind: _update_statement(tables_for(kind)) for kind in RunKind}
_INSERT_RUN: dict[tuple[str, RunKind, bool], Any] = {}


def _insert_run_statement(dialect: str, kind: RunKind, ignore_conflicts: bool) -> Any:
    """An INSERT of one run whose columns come from the parameters it is executed with."""
    key = (dialect, kind, ignore_conflicts)
    if key not in _INSERT_RUN:
        stmt = dialects.insert(dialect, tables_for(kind).run)
        _INSERT_RUN[key] = stmt.on_conflict_do_nothing() if ignore_conflicts else stmt
    return _INSERT_RUN[key]


async def _load(session: AsyncSession, kind: RunKind, run_id: UUID) -> dict[str, Any] | None:
    row = (await session.execute(_LOAD[kind], {"run_id": run_id})).mappings().first()
    return None if row is None else dict(row)


def _current_state(row: Mapping[str, Any]) -> State | None:
    """The run's current state; from its columns alone if the state row is missing."""
    state = state_from_row(row)
    if state is None and row.get("state_type"):
        state = State(
            id=row.get("state_id") or uuid.uuid4(),
            type=StateType(row["state_type"]),
            name=row.get("state_name"),
            timestamp=row.get("state_timestamp") or row["updated"],
        )
    return state


# --- facts for the rules -----------------------------------------------------------------


def _state_facts(state: State | StateCreate, timestamp: datetime) -> StateFacts:
    details = state.state_details
    return StateFacts(
        type=state.type,
        name=state.name or "",
        timestamp=timestamp,
        scheduled_time=details.scheduled_time,
        pause_reschedule=details.pause_reschedule,
        pause_key=details.pause_key,
        pause_timeout=details.pause_timeout,
        transition_id=str(details.transition_id) if details.transition_id else None,
        retriable=details.retriable is not False,
        message=state.message,
    )


def _retry_policy(policy: Mapping[str, Any]) -> tuple[int, tuple[float, ...]]:
    """Retries and delays from an empirical policy (legacy fields fill in for unset ones)."""
    retries = policy.get("retries")
    if retries is None:
        retries = policy.get("max_retries") or 0
    delay = policy.get("retry_delay")
    if delay is None:
        delay = policy.get("retry_delay_seconds") or 0
    if isinstance(delay, list):
        delays = tuple(float(d) for d in delay)
    else:
        delays = (float(delay),) if delay else ()
    return int(retries), delays


def run_facts(spec: RunTables, row: Mapping[str, Any], current: State | None) -> RunFacts:
    """What the core rules need to know about a run."""
    policy = row.get("empirical_policy") or {}
    retries, delays = _retry_policy(policy)
    common: dict[str, Any] = {
        "kind": spec.kind,
        "state": None if current is None else _state_facts(current, current.timestamp),
        "run_count": row.get("run_count") or 0,
        "retries": retries,
        "retry_delays": delays,
        "start_time": row.get("start_time"),
        "end_time": row.get("end_time"),
        "total_run_time": timedelta(seconds=row.get("total_run_time") or 0.0),
        "expected_start_time": row.get("expected_start_time"),
    }
    if spec.kind is RunKind.FLOW:
        return RunFacts(
            **common,
            paused_keys=frozenset(policy.get("pause_keys") or ()),
            resuming=bool(policy.get("resuming")),
            has_deployment=row.get("deployment_id") is not None,
            has_infrastructure=bool(row.get("infrastructure_pid")),
            is_subflow=row.get("parent_task_run_id") is not None,
        )
    parent_type = row.get("parent__state_type")
    return RunFacts(**common, flow_run_state_type=StateType(parent_type) if parent_type else None)


def _proposal_timestamp(proposed: StateCreate, current: State | None, now: datetime) -> datetime:
    """The proposal's own timestamp when it is plausible (not in the future, not before
    the current state), so that client-side timings are kept; the server's clock otherwise."""
    stamp = proposed.timestamp
    if stamp is None or stamp > now or (current is not None and stamp < current.timestamp):
        return now
    return stamp


# --- writing -----------------------------------------------------------------------------


def _details(decision: Decision) -> StateResponseDetails:
    if decision.status is SetStateStatus.ACCEPT:
        return StateAcceptDetails()
    if decision.status is SetStateStatus.WAIT:
        return StateWaitDetails(
            delay_seconds=int(decision.delay_seconds or 0), reason=decision.reason
        )
    if decision.status is SetStateStatus.REJECT:
        return StateRejectDetails(reason=decision.reason)
    return StateAbortDetails(reason=decision.reason)


def _state_to_write(
    spec: RunTables, row: Mapping[str, Any], proposed: StateCreate, decision: Decision
) -> State:
    """The state row to record: the proposal as the rules shaped it, or their replacement."""
    facts = decision.state
    assert facts is not None
    if decision.status is SetStateStatus.ACCEPT:
        details = proposed.state_details.model_copy()
        message, data, state_id = proposed.message, proposed.data, proposed.id or uuid.uuid4()
    else:
        details = StateDetails()
        message, data, state_id = facts.message, None, uuid.uuid4()
    details.scheduled_time = facts.scheduled_time
    if facts.type is StateType.SCHEDULED and details.scheduled_time is None:
        details.scheduled_time = facts.timestamp
    # Every recorded state names the run it belongs to; a subflow's states also name
    # the task run that stands for it in the parent flow run.
    if spec.kind is RunKind.FLOW:
        details.flow_run_id = row["id"]
        if row.get("parent_task_run_id") is not None:
            details.task_run_id = row["parent_task_run_id"]
    else:
        details.flow_run_id = row.get("flow_run_id")
        details.task_run_id = row["id"]
    return State(
        id=state_id,
        type=facts.type,
        name=facts.name,
        timestamp=facts.timestamp,
        message=message,
        data=data,
        state_details=details,
    )


def _state_row(spec: RunTables, run_id: UUID, state: State, now: datetime) -> dict[str, Any]:
    return {
        "id": state.id,
        spec.state_fk: run_id,
        "type": state.type.value,
        "name": state.name,
        "timestamp": state.timestamp,
        "message": state.message,
        "state_details": state.state_details.model_dump(mode="json"),
        "data": state.data,
        "created": now,
        "updated": now,
    }


def _run_values(
    spec: RunTables, row: Mapping[str, Any], state: State, updates: RunUpdates, now: datetime
) -> dict[str, Any]:
    """The run columns that change with ``state``."""
    values: dict[str, Any] = {
        "state_id": state.id,
        "state_type": updates.state_type.value,
        "state_name": updates.state_name,
        "state_timestamp": updates.state_timestamp,
        "run_count": updates.run_count,
        "start_time": updates.start_time,
        "end_time": updates.end_time,
        "total_run_time": updates.total_run_time.total_seconds(),
        "expected_start_time": updates.expected_start_time,
        "next_scheduled_start_time": updates.next_scheduled_start_time,
        "updated": now,
    }
    if updates.extra:
        values["empirical_policy"] = {**(row.get("empirical_policy") or {}), **updates.extra}
    # A task run records which attempt of its flow run it belongs to.
    if spec.kind is RunKind.TASK and updates.state_type is StateType.RUNNING:
        if row.get("parent__run_count") is not None:
            values["flow_run_run_count"] = row["parent__run_count"]
    return values


def _plan(
    spec: RunTables,
    row: Mapping[str, Any],
    current: State | None,
    proposed: StateCreate,
    force: bool,
    now: datetime,
) -> tuple[Decision, State | None, dict[str, Any]]:
    """Decide, and when the decision writes, the state to record and the run's new columns."""
    facts = run_facts(spec, row, current)
    proposal = _state_facts(proposed, _proposal_timestamp(proposed, current, now))
    decision = decide(facts, proposal, now, force=force)
    if not decision.writes:
        return decision, None, {}
    state = _state_to_write(spec, row, proposed, decision)
    assert decision.state is not None
    updates = bookkeeping(
        facts, replace(decision.state, scheduled_time=state.state_details.scheduled_time)
    )
    return decision, state, _run_values(spec, row, state, updates, now)


async def set_state(
    session: AsyncSession,
    kind: RunKind,
    run_id: UUID,
    proposed: StateCreate,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> Outcome | None:
    """Propose ``proposed`` for a run and commit whatever the rules decide.

    Args:
        session: a writing session; the caller commits it, then publishes ``events``.
        kind: flow run or task run.
        run_id: the run.
        proposed: the proposed state.
        force: accept without applying the rules (bookkeeping still happens).
        now: the current time (defaults to the clock).

    Returns:
        The outcome, or None when there is no such run.
    """
    now = now or now_utc()
    spec = tables_for(kind)
    row = await _load(session, kind, run_id)
    if row is None:
        return None
    current = _current_state(row)
    decision, state, values = _plan(spec, row, current, proposed, force, now)
    if kind is RunKind.FLOW and state is not None:
        decision, state, values = await _deployment_limits(
            session, spec, row, current, state, decision, values, force, now
        )
    if state is None:
        result = OrchestrationResult(
            state=current, status=decision.status, details=_details(decision)
        )
        return Outcome(result=result, written=False, run=row)
    await session.execute(_INSERT_STATE[kind], _state_row(spec, run_id, state, now))
    await session.execute(_UPDATE_RUN[kind], {"run_id_": run_id, **values})
    outcome = Outcome(
        result=OrchestrationResult(state=state, status=decision.status, details=_details(decision)),
        written=True,
        run={**row, **values},
    )
    if kind is RunKind.FLOW:
        await _after_flow_run_change(session, outcome, current, state, now)
    return outcome


async def _deployment_limits(
    session: AsyncSession,
    spec: RunTables,
    row: Mapping[str, Any],
    current: State | None,
    state: State,
    decision: Decision,
    values: dict[str, Any],
    force: bool,
    now: datetime,
) -> tuple[Decision, State | None, dict[str, Any]]:
    """Hold a deployment's run back when its concurrency limit is full, and end a worker's claim.

    A run about to become Pending under a full limit is rejected into
    ``AwaitingConcurrencySlot`` (ENQUEUE) or Cancelled (CANCEL_NEW) instead.
    """
    if row.get("claimed_until") is not None:
        values["claimed_until"] = None
    entering = state.type is StateType.PENDING and (
        current is None or current.type is not StateType.PENDING
    )
    if force or not entering or row.get("deployment_id") is None:
        return decision, state, values
    from flowplane.server.store.deployment_slots import gate

    held = await gate(session, dict(row), now)
    if held is None:
        return decision, state, values
    replacement, reason = held
    _, new_state, new_values = _plan(spec, row, current, replacement, True, now)
    if row.get("claimed_until") is not None:
        new_values["claimed_until"] = None
    rejected = replace(decision, status=SetStateStatus.REJECT, reason=reason)
    return rejected, new_state, new_values


async def insert_run(
    session: AsyncSession,
    kind: RunKind,
    values: dict[str, Any],
    proposed: StateCreate | None,
    *,
    related: Mapping[str, Any] | None = None,
    ignore_conflicts: bool = False,
    now: datetime | None = None,
) -> Outcome | None:
    """Insert a new run already in its initial state (Pending unless ``proposed``).

    The initial state is accepted without rules, as for any run without a state, and
    the run row is written with its bookkeeping in the same INSERT.

    Args:
        session: a writing session; the caller commits it, then publishes ``events``.
        kind: flow run or task run.
        values: the run's columns (``id`` included).
        proposed: the initial state.
        related: extra facts for events (``flow__name``, ``flow__tags``).
        ignore_conflicts: insert nothing, and return None, if the run would violate a
            unique constraint (the caller then reads the existing run).
        now: the current time (defaults to the clock).

    Returns:
        The outcome, or None when the insert was ignored.
    """
    now = now or now_utc()
    spec = tables_for(kind)
    proposed = proposed or StateCreate(type=StateType.PENDING)
    decision, state, state_values = _plan(spec, values, None, proposed, True, now)
    assert state is not None
    row = {**values, **state_values}
    stmt = _insert_run_statement(dialect_name(session), kind, ignore_conflicts)
    if await execute_count(session, stmt, row) == 0:
        return None
    await session.execute(_INSERT_STATE[kind], _state_row(spec, row["id"], state, now))
    outcome = Outcome(
        result=OrchestrationResult(state=state, status=decision.status, details=_details(decision)),
        written=True,
        run={**row, **(related or {})},
    )
    if kind is RunKind.FLOW:
        await _after_flow_run_change(session, outcome, None, state, now)
    return outcome


async def insert_runs(
    session: AsyncSession,
    kind: RunKind,
    runs: list[tuple[dict[str, Any], StateCreate]],
    *,
    related: Mapping[UUID, Mapping[str, Any]] | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Insert many new runs in their initial states with two statements, skipping conflicts.

    The batch form of :func:`insert_run` (with ``ignore_conflicts``) for callers that make
    many runs at once, such as the scheduler: every run's values must have the same keys.
    A run that would violate a unique constraint (its idempotency key is taken) is left
    out; only the inserted runs get a state row and an outcome.

    Args:
        session: a writing session; the caller commits it, then publishes the events.
        kind: flow run or task run.
        runs: each run's columns (``id`` included) and its initial state.
        related: extra facts for events, by run id (``flow__name``, ``flow__tags``).
        now: the current time (defaults to the clock).
    """
    if not runs:
        return []
    now = now or now_utc()
    spec = tables_for(kind)
    planned = []
    for values, proposed in runs:
        decision, state, state_values = _plan(spec, values, None, proposed, True, now)
        assert state is not None
        planned.append(({**values, **state_values}, decision, state))
    stmt = _insert_run_statement(dialect_name(session), kind, True).returning(spec.run.c.id)
    result = await session.execute(stmt, [row for row, _, _ in planned])
    inserted = set(result.scalars().all())
    kept = [item for item in planned if item[0]["id"] in inserted]
    if not kept:
        return []
    await session.execute(
        _INSERT_STATE[kind], [_state_row(spec, row["id"], state, now) for row, _, state in kept]
    )
    outcomes = []
    for row, decision, state in kept:
        outcome = Outcome(
            result=OrchestrationResult(
                state=state, status=decision.status, details=_details(decision)
            ),
            written=True,
            run={**row, **((related or {}).get(row["id"]) or {})},
        )
        if kind is RunKind.FLOW:
            await _after_flow_run_change(session, outcome, None, state, now)
        outcomes.append(outcome)
    return outcomes


async def _after_flow_run_change(
    session: AsyncSession, outcome: Outcome, initial: State | None, state: State, now: datetime
) -> None:
    """Mirror a subflow's new state onto its parent task run, and describe the change as an event."""
    run = outcome.run
    parent_task: dict[str, Any] | None = None
    if run.get("parent_task_run_id") is not None:
        details = state.state_details.model_copy(
            update={"child_flow_run_id": run["id"], "flow_run_id": None, "task_run_id": None}
        )
        mirror = StateCreate(
            type=state.type,
            name=state.name,
            message=state.message,
            data=state.data,
            state_details=details,
            timestamp=state.timestamp,
        )
        # Forced: the parent task run only reflects what the subflow's rules decided.
        mirrored = await set_state(
            session, RunKind.TASK, run["parent_task_run_id"], mirror, force=True, now=now
        )
        if mirrored is not None:
            parent_task = mirrored.run
    outcome.events.append(flow_run_state_event(run, initial, state, parent_task, now))


def publish(bus: Any, outcomes: Iterable[Outcome | None]) -> None:
    """Hand the events of committed outcomes to the event bus."""
    events = [event for outcome in outcomes if outcome is not None for event in outcome.events]
    if events and bus is not None:
        bus.publish("events", events)


# --- events ------------------------------------------------------------------------------


def _truncated(message: str | None) -> str:
    if not message:
        return ""
    if len(message) <= TRUNCATE_MESSAGES_AT:
        return message
    half = TRUNCATE_MESSAGES_AT // 2
    return f"{message[:half]}...{message[-half:]}"


def _state_payload(state: State | None) -> dict[str, str] | None:
    if state is None:
        return None
    payload = {"type": state.type.value}
    if state.name:
        payload["name"] = state.name
    if state.message:
        payload["message"] = _truncated(state.message)
    if state.type is StateType.PAUSED:
        payload["pause_reschedule"] = str(state.state_details.pause_reschedule).lower()
    return payload


def _related(run: Mapping[str, Any], parent_task: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The resources a flow run's events relate to, in the order Prefect's server lists them."""
    related = [
        {
            "prefect.resource.id": f"prefect.flow.{run['flow_id']}",
            "prefect.resource.role": "flow",
            "prefect.resource.name": run.get("flow__name") or "",
        }
    ]
    # Deployments, work queues and pools are named from what the run row knows of them.
    if run.get("deployment_id") is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{run['deployment_id']}",
                "prefect.resource.role": "deployment",
            }
        )
    if run.get("work_queue_id") is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.work-queue.{run['work_queue_id']}",
                "prefect.resource.role": "work-queue",
                "prefect.resource.name": run.get("work_queue_name") or "",
            }
        )
    if run.get("work_pool_id") is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.work-pool.{run['work_pool_id']}",
                "prefect.resource.role": "work-pool",
                "prefect.resource.name": run.get("work_pool_name") or "",
            }
        )
    tags = set(run.get("tags") or ()) | set(run.get("flow__tags") or ())
    if parent_task is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.task-run.{parent_task['id']}",
                "prefect.resource.role": "task-run",
                "prefect.resource.name": parent_task.get("name") or "",
            }
        )
        tags |= set(parent_task.get("tags") or ())
    related += [
        {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
        for tag in sorted(tags)
    ]
    creator = run.get("created_by") or {}
    kind = {"DEPLOYMENT": "deployment", "AUTOMATION": "automation"}.get(creator.get("type") or "")
    if kind and creator.get("id"):
        resource = {
            "prefect.resource.id": f"prefect.{kind}.{creator['id']}",
            "prefect.resource.role": "creator",
        }
        if creator.get("display_value"):
            resource["prefect.resource.name"] = creator["display_value"]
        related.append(resource)
    return related


def flow_run_state_event(
    run: Mapping[str, Any],
    initial: State | None,
    state: State,
    parent_task: Mapping[str, Any] | None,
    now: datetime,
) -> ReceivedEvent:
    """The ``prefect.flow-run.<State name>`` event for a recorded flow-run state.

    The event's id is the state's id, and it follows the previous state's event when
    the two are close in time, so consumers can order events that arrive out of order.
    """
    follows = None
    if initial is not None and abs(state.timestamp - initial.timestamp) < TIGHT_TIMING:
        follows = initial.id
    return ReceivedEvent(
        id=state.id,
        occurred=state.timestamp,
        received=now,
        event=f"prefect.flow-run.{state.name}",
        resource={
            "prefect.resource.id": f"prefect.flow-run.{run['id']}",
            "prefect.resource.name": run.get("name") or "",
            "prefect.run-count": str(run.get("run_count") or 0),
            "prefect.state-message": _truncated(state.message),
            "prefect.state-name": state.name or "",
            "prefect.state-timestamp": state.timestamp.isoformat(),
            "prefect.state-type": state.type.value,
        },
        related=_related(run, parent_task),
        payload={
            "intended": {
                "from": initial.type.value if initial is not None else None,
                "to": state.type.value,
            },
            "initial_state": _state_payload(initial),
            "validated_state": _state_payload(state),
        },
        follows=follows,
    )
