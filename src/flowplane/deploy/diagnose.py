"""Why a deployment's run has not started: the one-line answer ``deployment run --watch`` prints.

:func:`gather` reads what matters about a waiting run (its deployment, work pool, queue,
workers, and the runs occupying their concurrency limits); :func:`explain` turns those
facts into one sentence, checking in order: the pool paused, the queue paused, no
worker (or, for a served deployment, no ``serve`` process) polled recently, and a full
concurrency limit of the pool, the queue or the deployment. ``explain`` is pure (time is
passed in) so every case is testable without waiting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

#: A worker or serving process that has not polled for this long counts as gone.
STALE_SECONDS = 60.0
WAITING = frozenset({"SCHEDULED", "PENDING"})
OCCUPYING = ["PENDING", "RUNNING", "CANCELLING"]


@dataclass
class WaitFacts:
    """What :func:`explain` needs to know about a run that has not started."""

    state: str
    deployment_name: str
    scheduled_for: dt.datetime | None = None
    pool_name: str | None = None
    pool_paused: bool = False
    pool_limit: int | None = None
    pool_active: int | None = None
    queue_name: str | None = None
    queue_paused: bool = False
    queue_limit: int | None = None
    queue_active: int | None = None
    #: Heartbeats of the pool's workers (for a pool), or the deployment's last poll (served).
    polls: list[dt.datetime | None] = field(default_factory=list)
    deployment_limit: int | None = None
    deployment_active: int | None = None


def _full(limit: int | None, active: int | None) -> bool:
    return limit is not None and active is not None and active >= limit


def explain(facts: WaitFacts, now: dt.datetime, stale_seconds: float = STALE_SECONDS) -> str | None:
    """One line saying why the run waits, or ``None`` when nothing looks wrong."""
    if facts.state not in WAITING:
        return None
    if facts.state == "SCHEDULED" and facts.scheduled_for is not None and facts.scheduled_for > now:
        return f"It is scheduled for {facts.scheduled_for:%Y-%m-%d %H:%M:%S} UTC."
    pool = facts.pool_name
    if pool is not None:
        if facts.pool_paused:
            return (
                f"Work pool {pool!r} is paused, so no worker takes its runs: "
                f"flowplane work-pool resume {pool}"
            )
        if facts.queue_paused and facts.queue_name:
            return (
                f"Work queue {facts.queue_name!r} of pool {pool!r} is paused: "
                f"flowplane work-queue resume {facts.queue_name} --pool {pool}"
            )
    recent = [
        p for p in facts.polls if p is not None and (now - p).total_seconds() <= stale_seconds
    ]
    if not recent:
        since = f"in the last {int(stale_seconds)} s" if any(facts.polls) else "yet"
        if pool is not None:
            return (
                f"No worker has polled work pool {pool!r} {since}: "
                f"start one with `flowplane worker start --pool {pool}`"
            )
        return (
            f"No process is serving deployment {facts.deployment_name!r} (none polled it {since}): "
            "start its flow.serve() script"
        )
    if pool is not None and _full(facts.pool_limit, facts.pool_active):
        return (
            f"Work pool {pool!r} is at its concurrency limit "
            f"({facts.pool_active}/{facts.pool_limit} runs active); the run waits for a slot."
        )
    if facts.queue_name and _full(facts.queue_limit, facts.queue_active):
        return (
            f"Work queue {facts.queue_name!r} is at its concurrency limit "
            f"({facts.queue_active}/{facts.queue_limit} runs active); the run waits for a slot."
        )
    if _full(facts.deployment_limit, facts.deployment_active):
        return (
            f"Deployment {facts.deployment_name!r} is at its concurrency limit "
            f"({facts.deployment_active}/{facts.deployment_limit} runs active); "
            "the run waits for a slot."
        )
    return None


def gather(client: Any, flow_run: Any) -> WaitFacts | None:
    """The facts about ``flow_run`` (a deployment's run) as the API has them now; ``None`` for other runs."""
    state = flow_run.state.type.value if flow_run.state is not None else "SCHEDULED"
    if flow_run.deployment_id is None:
        return None
    deployment = client.read_deployment(flow_run.deployment_id)
    flow = client.read_flow(deployment.flow_id)
    facts = WaitFacts(
        state=state,
        deployment_name=f"{flow.name}/{deployment.name}",
        scheduled_for=getattr(flow_run, "next_scheduled_start_time", None),
        deployment_limit=deployment.concurrency_limit,
    )
    if deployment.concurrency_limit is not None:
        occupying = client.read_flow_runs(
            flow_run_filter={
                "deployment_id": {"any_": [str(deployment.id)]},
                "state": {"type": {"any_": OCCUPYING}},
            }
        )
        facts.deployment_active = len(occupying)
    pool_name = getattr(flow_run, "work_pool_name", None) or deployment.work_pool_name
    if not pool_name:
        facts.polls = [deployment.last_polled]
        return facts
    pool = client.read_work_pool(pool_name)
    facts.pool_name = pool.name
    facts.pool_paused = bool(pool.is_paused)
    facts.pool_limit = pool.concurrency_limit
    facts.pool_active = pool.active_slots
    facts.polls = [w.last_heartbeat_time for w in client.read_workers_for_work_pool(pool.name)]
    queue_name = flow_run.work_queue_name or deployment.work_queue_name
    if queue_name:
        from flowplane.exceptions import ObjectNotFound

        try:
            queue = client.read_work_queue_by_name(queue_name, pool.name)
        except ObjectNotFound:
            queue = None
        if queue is not None:
            facts.queue_name = queue.name
            facts.queue_paused = bool(queue.is_paused)
            facts.queue_limit = queue.concurrency_limit
            facts.queue_active = queue.active_slots
    return facts


__all__ = ["WaitFacts", "explain", "gather"]
