"""Event ingest: server CPU per task-run event, from ``POST /api/events`` to task runs recorded.

The server runs in-process (the app through httpx's ASGI transport, services running,
a fresh SQLite file or the PostgreSQL database given with ``--database-url``). Each
round posts one batch of ``--tasks`` tasks x 3 events (Pending, Running, Completed,
shaped as the SDK emits them) and waits until the event persister has stored every
event and the task-run recorder has written every task run and state. The measure is
the process CPU time of the round (``time.process_time``: the batch writers' waiting
windows cost nothing) divided by the events posted; request bodies are encoded before
the clock starts. ``--split`` sends each task's Completed event in the next round's
batch, as a client whose writer flushes mid-task does.

    .venv/bin/python benchmarks/event_ingest.py [--tasks 100] [--rounds 30] [--split]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402

#: Goal for this path: amortized server CPU per event in batches.
BUDGET_US_PER_EVENT = 30.0

UTC = dt.timezone.utc


def _task_events(
    flow_run: dict[str, Any], flow_id: str, index: int, start: dt.datetime
) -> list[dict[str, Any]]:
    """Pending, Running and Completed events of one task run, as the SDK's writer posts them."""
    task_run_id = uuid.uuid4()
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": flow_run["name"],
        },
        {
            "prefect.resource.id": f"prefect.flow.{flow_id}",
            "prefect.resource.role": "flow",
            "prefect.resource.name": "ingest-benchmark",
        },
    ]
    payload_run = {
        "name": f"work-{index}",
        "task_key": "work-5f2b1c",
        "dynamic_key": str(index),
        "flow_run_run_count": 1,
        "empirical_policy": {"retries": 0, "retry_delay": 0},
        "tags": [],
        "task_inputs": {"x": []},
        "task_version": None,
    }
    events = []
    previous: tuple[str, str] | None = None
    for step, (type_, name) in enumerate(
        (("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed"))
    ):
        ts = start + dt.timedelta(microseconds=index * 10 + step)
        events.append(
            {
                "id": str(uuid.uuid4()),
                "occurred": ts.isoformat(),
                "event": f"prefect.task-run.{name}",
                "resource": {
                    "prefect.resource.id": f"prefect.task-run.{task_run_id}",
                    "prefect.resource.name": f"work-{index}",
                    "prefect.run-count": "1" if step else "0",
                    "prefect.state-message": "",
                    "prefect.state-name": name,
                    "prefect.state-timestamp": ts.isoformat(),
                    "prefect.state-type": type_,
                    "prefect.orchestration": "client",
                },
                "related": related,
                "payload": {
                    "intended": {"from": previous[0] if previous else None, "to": type_},
                    "initial_state": {"type": previous[0], "name": previous[1]}
                    if previous
                    else None,
                    "validated_state": {
                        "type": type_,
                        "name": name,
                        "message": None,
                        "state_details": {},
                        "data": None,
                    },
                    "task_run": payload_run,
                },
            }
        )
        previous = (type_, name)
    return events


def _services(app: Any) -> tuple[Any, Any]:
    from flowplane.server.services.event_persister import EventPersister
    from flowplane.server.services.task_run_recorder import TaskRunRecorder

    services = app.state.services.services
    persister = next(s for s in services if isinstance(s, EventPersister))
    recorder = next(s for s in services if isinstance(s, TaskRunRecorder))
    return persister, recorder


async def _until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("events were not recorded in time")
        await asyncio.sleep(0.001)


async def measure(
    database_url: str, home: Path, tasks: int, rounds: int, split: bool, profile: str | None
) -> list[float]:
    """µs of CPU per event for each round (the first, warm-up round excluded)."""
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings(home=home, database_url=database_url)
    app = create_app(settings, run_services=True)
    results: list[float] = []
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench/api") as http:
            flow = (await http.post("/flows/", json={"name": "ingest-benchmark"})).json()
            flow_run = (
                await http.post(
                    "/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "RUNNING"}}
                )
            ).json()
            persister, recorder = _services(app)
            start = dt.datetime.now(UTC)
            carry: list[dict[str, Any]] = []
            bodies: list[tuple[bytes, int]] = []
            for r in range(rounds + 1):
                batch = carry
                carry = []
                for i in range(tasks):
                    events = _task_events(flow_run, flow["id"], r * tasks + i, start)
                    if split:
                        batch += events[:2]
                        carry.append(events[2])
                    else:
                        batch += events
                bodies.append((orjson.dumps(batch), len(batch)))
            profiler = None
            posted = 0
            for r, (body, n) in enumerate(bodies):
                if r == 1 and profile:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                posted += n
                cpu = time.process_time()
                response = await http.post(
                    "/events", content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()
                # Write now rather than idle through the writers' windows (idle costs no CPU,
                # but polling for it would); the batches are the same either way.
                await persister.flush()
                await recorder.flush()
                await _until(
                    lambda posted=posted: (
                        persister.stats.written >= posted
                        and recorder.stats.written >= posted
                        and not recorder.parked
                    )
                )
                elapsed = time.process_time() - cpu
                if r:
                    results.append(elapsed / n * 1e6)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
            if recorder.stats.deferred or recorder.stats.dropped or persister.stats.failures:
                raise RuntimeError(f"unexpected writer stats: {recorder.stats} {persister.stats}")
    return results


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks per batch (3 events each)")
    parser.add_argument("--rounds", type=int, default=30, help="measured batches (default 30)")
    parser.add_argument("--split", action="store_true", help="Completed events in the next batch")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--profile", default="", help="write a cProfile dump of the rounds here")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    # benchmarks/run.py passes the same extra arguments to every benchmark: ignore others'.
    return parser.parse_known_args(argv)[0]


def run(argv: list[str] | None = None) -> Report:
    """Measure µs of server CPU per event for batches posted in-process."""
    args = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/flowplane.db"
        per_round = asyncio.run(
            measure(url, Path(tmp), args.tasks, args.rounds, args.split, args.profile or None)
        )
    median = statistics.median(per_round)
    mean = statistics.fmean(per_round)
    db = "PostgreSQL" if args.database_url.startswith("postgresql") else "SQLite"
    report = Report(
        title=f"event ingest: POST /api/events ({args.tasks} tasks x 3 events per batch"
        f"{', Completed in the next batch' if args.split else ''}) until persisted and "
        f"recorded, in-process, {db}",
        columns=["rounds", "events/batch", "µs/event median", "µs/event mean", "µs/event min"],
        rows=[
            [
                str(len(per_round)),
                str(args.tasks * 3),
                f"{median:.1f}",
                f"{mean:.1f}",
                f"{min(per_round):.1f}",
            ]
        ],
        notes=[
            "process CPU time per event (request parsing, validation, bus, persister, recorder)"
        ],
    )
    report.budgets.append(
        (
            f"≤ {BUDGET_US_PER_EVENT:.0f} µs of server CPU per event",
            median <= BUDGET_US_PER_EVENT,
            f"{median:.1f} µs",
        )
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; with --check exit 1 when a budget is missed."""
    return run_as_script(run, argv)


if __name__ == "__main__":
    sys.exit(main())
