"""Turning deployment schedules into Scheduled flow runs: the one expansion the server uses.

The scheduler service and ``POST /deployments/{id}/schedule`` (and so ``flowplane
deployment backfill``) both call :func:`schedule_deployments`, built on the pure schedule
math of :mod:`flowplane.core.schedules` (DST-correct cron, interval and rrule times).

Idempotency: every run gets the key ``scheduled {deployment} {schedule} {time}`` and the
flow run table allows one run per flow and key, so inserting the same time twice (a
second pass, a redeploy racing a pass, two servers on one database) makes one run. The
work is batched: one query reads the deployments of a batch with their flows, queues and
pools, one their schedules, one the times that already have runs, and one INSERT writes
the batch's runs (and one their states).

Catch-up after downtime (Beyond Prefect): when a schedule's latest run is further in the
past than the late threshold, nothing scheduled it for a while; the ``skip`` policy
(Prefect's behaviour) leaves the missed times alone, ``run_missed`` creates runs for the
most recent of them (bounded). A deployment chooses its own policy with the label
:data:`CATCH_UP_LABEL` (``skip`` or ``run_missed``), overriding the server's setting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from flowplane.core.deployments import merged_parameters
from flowplane.core.schedules import (
    CatchUp,
    Horizon,
    ScheduleError,
    catch_up,
    spec_from_wire,
    times_to_schedule,
)
from flowplane.core.states import StateType
from flowplane.core.transitions import RunKind
from flowplane.schemas.flow_runs import FlowRunPolicy
from flowplane.schemas.states import StateCreate, StateDetails
from flowplane.server import orchestration
from flowplane.server.db import tables as t
from flowplane.server.store.runs import random_run_name

D = t.Deployment
S = t.DeploymentSchedule
R = t.FlowRun

#: A deployment label choosing its own catch-up policy (``skip`` or ``run_missed``).
CATCH_UP_LABEL = "flowplane.scheduler.catch_up"
#: The tag every run made from a schedule carries (as Prefect's scheduler adds it).
AUTO_SCHEDULED_TAG = "auto-scheduled"
_KEY_PREFIX = "scheduled "
#: Length of ``"scheduled {deployment id} {schedule id}"``: the part of a key naming the schedule.
_SCHEDULE_KEY_LENGTH = len(_KEY_PREFIX) + 36 + 1 + 36


def idempotency_key(deployment_id: UUID, schedule_id: UUID, when: datetime) -> str:
    """The key of the run a schedule makes at ``when`` (Prefect's format)."""
    return f"{_KEY_PREFIX}{deployment_id} {schedule_id} {when.isoformat()}"


@dataclass(frozen=True)
class CatchUpPolicy:
    """What a scheduler pass does about times missed while nothing was scheduling."""

    policy: CatchUp = CatchUp.SKIP
    max_missed: int = 10
    #: How far in the past a schedule's latest run must be before its times count as missed.
    late_after: timedelta = timedelta(seconds=15)


@dataclass
class Scheduled:
    """What one call made: runs created, times that already had one, and events to publish."""

    created: int = 0
    existing: int = 0
    outcomes: list[orchestration.Outcome] = field(default_factory=list)


def expand(
    schedule: dict[str, Any],
    start: datetime,
    horizon: Horizon,
    max_scheduled_runs: int | None = None,
    existing: Iterable[datetime] = (),
) -> list[datetime]:
    """The times a wire schedule wants runs for from ``start`` within ``horizon``.

    Raises:
        ScheduleError: the stored schedule cannot be evaluated.
    """
    return times_to_schedule(spec_from_wire(schedule), start, existing, horizon, max_scheduled_runs)


@dataclass
class Plan:
    """The runs a batch of deployments needs, worked out from reads alone."""

    runs: list[tuple[dict[str, Any], StateCreate]] = field(default_factory=list)
    related: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    #: Times that already have a run (seen when planning).
    existing: int = 0


async def schedule_deployments(
    session: AsyncSession,
    deployment_ids: Sequence[UUID],
    now: datetime,
    horizon: Horizon,
    *,
    catch_up_policy: CatchUpPolicy | None = None,
    skip_paused: bool = True,
) -> Scheduled:
    """Create the Scheduled runs the active schedules of these deployments call for.

    Args:
        session: a writing session; the caller commits, then publishes ``outcomes``.
        deployment_ids: the deployments (a batch; missing ones are ignored).
        now: where scheduling starts (the current time, or a backfill's window start).
        horizon: how many runs and how far ahead (a window's length as ``max_time``).
        catch_up_policy: look for missed times first (the scheduler service does; a
            window given by a caller does not).
        skip_paused: leave paused deployments alone.

    Returns:
        The counts and the outcomes whose events the caller publishes after committing.
    """
    plan = await plan_runs(
        session,
        deployment_ids,
        now,
        horizon,
        catch_up_policy=catch_up_policy,
        skip_paused=skip_paused,
    )
    return await insert_planned(session, plan, now)


async def insert_planned(session: AsyncSession, plan: Plan, now: datetime) -> Scheduled:
    """Insert a plan's runs (in a writing session); times taken meanwhile count as existing."""
    outcomes = await orchestration.insert_runs(
        session, RunKind.FLOW, plan.runs, related=plan.related, now=now
    )
    return Scheduled(
        created=len(outcomes),
        existing=plan.existing + len(plan.runs) - len(outcomes),
        outcomes=outcomes,
    )


async def plan_runs(
    session: AsyncSession,
    deployment_ids: Sequence[UUID],
    now: datetime,
    horizon: Horizon,
    *,
    catch_up_policy: CatchUpPolicy | None = None,
    skip_paused: bool = True,
) -> Plan:
    """The runs :func:`schedule_deployments` would insert, from reads only (any session).

    The scheduler plans in a read session and takes the write lock only when a batch
    needs runs; inserting is idempotent, so a plan that raced another writer is safe.
    """
    plan = Plan()
    if not deployment_ids:
        return plan
    deployments = await _read_deployments(session, deployment_ids, skip_paused)
    if not deployments:
        return plan
    ids = list(deployments)
    schedules = (
        (
            await session.execute(
                sa.select(S)
                .where(S.deployment_id.in_(ids), S.active.is_(True))
                .order_by(S.created, S.id)
            )
        )
        .scalars()
        .all()
    )
    if not schedules:
        return plan
    existing = await _existing_times(session, ids, now)
    latest: dict[tuple[UUID, UUID], datetime] = {}
    if catch_up_policy is not None:
        wanting = [
            d
            for d, row in deployments.items()
            if _policy_for(row["labels"], catch_up_policy.policy) is CatchUp.RUN_MISSED
        ]
        if wanting:
            latest = await _latest_times(session, wanting)
    for sched in schedules:
        dep = deployments[sched.deployment_id]
        have = existing.get((sched.deployment_id, sched.id), set())
        try:
            wanted = expand(sched.schedule, now, horizon, sched.max_scheduled_runs)
            if catch_up_policy is not None:
                last = latest.get((sched.deployment_id, sched.id))
                if last is not None and last < now - catch_up_policy.late_after:
                    policy = _policy_for(dep["labels"], catch_up_policy.policy)
                    missed = catch_up(
                        spec_from_wire(sched.schedule),
                        last,
                        now,
                        policy,
                        catch_up_policy.max_missed,
                    )
                    wanted = missed + wanted
        except ScheduleError:
            continue  # a stored schedule that no longer evaluates makes no runs
        for when in wanted:
            if when in have:
                plan.existing += 1
                continue
            values = _run_values(dep, sched, when, now)
            plan.runs.append(
                (
                    values,
                    StateCreate(
                        type=StateType.SCHEDULED,
                        message="Flow run scheduled",
                        state_details=StateDetails(scheduled_time=when),
                    ),
                )
            )
            plan.related[values["id"]] = {
                "flow__name": dep["flow_name"],
                "flow__tags": dep["flow_tags"],
            }
    return plan


def _policy_for(labels: dict[str, Any] | None, default: CatchUp) -> CatchUp:
    chosen = (labels or {}).get(CATCH_UP_LABEL)
    try:
        return CatchUp(chosen) if chosen else default
    except ValueError:
        return default


async def _read_deployments(
    session: AsyncSession, ids: Sequence[UUID], skip_paused: bool
) -> dict[UUID, dict[str, Any]]:
    """The deployments with their flow's name, tags and labels and their queue and pool."""
    stmt = (
        sa.select(
            D.id,
            D.flow_id,
            D.version,
            D.parameters,
            D.tags,
            D.labels,
            D.job_variables,
            D.infrastructure_document_id,
            D.work_queue_id,
            t.Flow.name.label("flow_name"),
            t.Flow.tags.label("flow_tags"),
            t.Flow.labels.label("flow_labels"),
            t.WorkQueue.name.label("work_queue_name"),
            t.WorkPool.id.label("work_pool_id"),
            t.WorkPool.name.label("work_pool_name"),
        )
        .join(t.Flow, t.Flow.id == D.flow_id)
        .outerjoin(t.WorkQueue, t.WorkQueue.id == D.work_queue_id)
        .outerjoin(t.WorkPool, t.WorkPool.id == t.WorkQueue.work_pool_id)
        .where(D.id.in_(list(ids)))
    )
    if skip_paused:
        stmt = stmt.where(D.paused.is_(False))
    rows = (await session.execute(stmt)).mappings().all()
    return {row["id"]: dict(row) for row in rows}


def _schedule_of(key: str | None) -> UUID | None:
    """The schedule id inside a scheduler-made idempotency key."""
    if not key or not key.startswith(_KEY_PREFIX):
        return None
    parts = key.split(" ")
    try:
        return UUID(parts[2])
    except (IndexError, ValueError):
        return None


async def _existing_times(
    session: AsyncSession, ids: list[UUID], now: datetime
) -> dict[tuple[UUID, UUID], set[datetime]]:
    """Times at or after ``now`` that already have a scheduler-made run, per schedule."""
    stmt = sa.select(R.deployment_id, R.idempotency_key, R.expected_start_time).where(
        R.deployment_id.in_(ids),
        R.auto_scheduled.is_(True),
        R.expected_start_time >= now,
    )
    found: dict[tuple[UUID, UUID], set[datetime]] = {}
    for deployment_id, key, when in (await session.execute(stmt)).all():
        schedule_id = _schedule_of(key)
        if deployment_id is not None and schedule_id is not None and when is not None:
            found.setdefault((deployment_id, schedule_id), set()).add(when)
    return found


async def _latest_times(
    session: AsyncSession, ids: list[UUID]
) -> dict[tuple[UUID, UUID], datetime]:
    """The latest time each schedule of these deployments made a run for."""
    prefix = sa.func.substr(R.idempotency_key, 1, _SCHEDULE_KEY_LENGTH)
    stmt = (
        sa.select(R.deployment_id, prefix, sa.func.max(R.expected_start_time))
        .where(R.deployment_id.in_(ids), R.auto_scheduled.is_(True))
        .group_by(R.deployment_id, prefix)
    )
    found: dict[tuple[UUID, UUID], datetime] = {}
    for deployment_id, key, when in (await session.execute(stmt)).all():
        schedule_id = _schedule_of(key)
        if deployment_id is not None and schedule_id is not None and when is not None:
            found[(deployment_id, schedule_id)] = when
    return found


def _run_values(dep: dict[str, Any], sched: S, when: datetime, now: datetime) -> dict[str, Any]:
    """The columns of the run ``sched`` makes at ``when`` (every run has the same keys)."""
    return {
        "id": uuid.uuid4(),
        "created": now,
        "updated": now,
        "name": random_run_name(),
        "flow_id": dep["flow_id"],
        "deployment_id": dep["id"],
        "deployment_version": dep["version"],
        "flow_version": None,
        "parameters": merged_parameters(dep["parameters"], sched.parameters),
        "context": {},
        "parent_task_run_id": None,
        "infrastructure_document_id": dep["infrastructure_document_id"],
        "empirical_policy": FlowRunPolicy().model_dump(mode="json"),
        "tags": list(dict.fromkeys([AUTO_SCHEDULED_TAG, *(dep["tags"] or [])])),
        "labels": {
            **(dep["flow_labels"] or {}),
            "prefect.flow.id": str(dep["flow_id"]),
            **(dep["labels"] or {}),
            "prefect.deployment.id": str(dep["id"]),
        },
        "idempotency_key": idempotency_key(dep["id"], sched.id, when),
        "work_queue_id": dep["work_queue_id"],
        "work_queue_name": dep["work_queue_name"],
        "work_pool_id": dep["work_pool_id"],
        "work_pool_name": dep["work_pool_name"],
        "job_variables": dict(dep["job_variables"] or {}),
        "run_count": 0,
        "total_run_time": 0.0,
        "auto_scheduled": True,
        "created_by": {
            "id": str(sched.id),
            "type": "SCHEDULE",
            "display_value": sched.slug or _SCHEDULE_KINDS.get(_kind(sched.schedule), "Schedule"),
        },
    }


_SCHEDULE_KINDS = {"cron": "CronSchedule", "interval": "IntervalSchedule", "rrule": "RRuleSchedule"}


def _kind(schedule: dict[str, Any]) -> str:
    return next((k for k in ("cron", "rrule", "interval") if schedule.get(k) is not None), "")


async def deployments_to_schedule(
    session: AsyncSession,
    *,
    after: UUID | None = None,
    limit: int = 100,
    changed_since: datetime | None = None,
) -> list[UUID]:
    """Ids of unpaused deployments with an active schedule, in id order after ``after``.

    With ``changed_since``: only those whose deployment or a schedule changed since then
    (the scheduler's fast loop for new and updated deployments).
    """
    has_schedule = sa.select(S.id).where(S.deployment_id == D.id, S.active.is_(True)).exists()
    stmt = sa.select(D.id).where(D.paused.is_(False), has_schedule)
    if changed_since is not None:
        changed = (
            sa.select(S.id).where(S.deployment_id == D.id, S.updated >= changed_since).exists()
        )
        stmt = stmt.where(sa.or_(D.updated >= changed_since, changed))
    if after is not None:
        stmt = stmt.where(D.id > after)
    stmt = stmt.order_by(D.id).limit(limit)
    return list((await session.execute(stmt)).scalars().all())
