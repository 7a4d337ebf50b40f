"""Scheduler: how long each server's scheduler takes to create the runs of 1,000 deployments.

For each server (flowplane, then the real Prefect 3.6.29, one after the other, each on a
fresh SQLite file):

1. Start it without its scheduler and create a process work pool, one flow and
   ``--deployments`` deployments over HTTP (2 connections), each with one
   hourly interval schedule anchored on the hour; stop it.
2. Start it again on the same database with its scheduler on (default settings), and
   poll ``POST /api/flow_runs/count`` every 0.2 s until every deployment has its runs:
   both schedulers keep at least 3 runs and an hour ahead, so an hourly schedule gets 3.

Reported: seconds from launching the server to the last run existing, and from the
server answering ``/api/health`` to it (the scheduler's first pass runs at start-up in
both, so part of it may overlap the start-up).

    .venv/bin/python benchmarks/scheduler.py [--deployments 1000] [--skip-prefect]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from servers import (  # noqa: E402
    RunningServer,
    ServerUnavailable,
    flowplane_server,
    prefect_server,
)

#: Runs each hourly schedule gets from either scheduler (3 runs, an hour ahead at least).
RUNS_PER_DEPLOYMENT = 3
ANCHOR = "2020-01-01T00:00:00+00:00"
POLL_SECONDS = 0.2
#: Connections creating deployments (Prefect's SQLite server drops requests with more).
CREATE_CONNECTIONS = 2


@dataclass
class Measurement:
    server: str
    deployments: int
    runs: int
    from_launch: float  # seconds from launching the server to the last run
    from_healthy: float  # seconds from /health answering to the last run
    create_seconds: float  # creating the deployments (not part of the comparison)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for runs")
    parser.add_argument("--skip-prefect", action="store_true")
    parser.add_argument("--check", action="store_true", help="(no budget: accepted, ignored)")
    args, _ = parser.parse_known_args(argv)
    return args


async def _create_deployments(api_url: str, count: int) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        pool = await http.post("/work_pools/", json={"name": "bench", "type": "process"})
        assert pool.status_code in (200, 201), pool.text
        flow = await http.post("/flows/", json={"name": "bench-flow"})
        flow_id = flow.json()["id"]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(count):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                body: dict[str, Any] = {
                    "flow_id": flow_id,
                    "name": f"deployment-{index:05d}",
                    "work_pool_name": "bench",
                    "entrypoint": "flows.py:bench",
                    "parameters": {"index": index},
                    "schedules": [
                        {"schedule": {"interval": 3600, "anchor_date": ANCHOR}, "active": True}
                    ],
                }
                for attempt in range(50):  # Prefect on SQLite answers 503 when it is busy
                    try:
                        response = await http.post("/deployments/", json=body)
                    except httpx.TransportError:
                        if attempt == 49:
                            raise
                        await asyncio.sleep(0.2)
                        continue
                    if response.status_code not in (500, 503):
                        break
                    await asyncio.sleep(0.1)
                assert response.status_code in (200, 201), response.text

        await asyncio.gather(*(worker() for _ in range(CREATE_CONNECTIONS)))


def _count(http: httpx.Client) -> int:
    response = http.post("/flow_runs/count", json={})
    response.raise_for_status()
    return int(response.json())


def _measure(
    name: str,
    start: Callable[[Path, bool], AbstractContextManager[RunningServer]],
    args: argparse.Namespace,
    notes: list[str],
) -> Measurement | None:
    expected = args.deployments * RUNS_PER_DEPLOYMENT
    print(f"-- {name}: {args.deployments} deployments", file=sys.stderr, flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-sched-{name}-") as tmp:
            workdir = Path(tmp)
            with start(workdir, False) as server:
                began = time.perf_counter()
                asyncio.run(_create_deployments(server.api_url, args.deployments))
                created_in = time.perf_counter() - began
                with httpx.Client(base_url=server.api_url, timeout=30) as http:
                    if _count(http) != 0:
                        notes.append(f"{name}: runs existed before its scheduler started")
            launched = time.perf_counter()
            with start(workdir, True) as server:
                healthy = time.perf_counter()
                deadline = healthy + args.timeout
                with httpx.Client(base_url=server.api_url, timeout=30) as http:
                    runs = _count(http)
                    while runs < expected and time.perf_counter() < deadline:
                        time.sleep(POLL_SECONDS)
                        runs = _count(http)
                    done = time.perf_counter()
                    time.sleep(2)  # nothing more should come
                    settled = _count(http)
                if settled != runs:
                    notes.append(f"{name}: {settled} runs two seconds later (expected {expected})")
                if runs < expected:
                    notes.append(f"{name}: only {runs}/{expected} runs in {args.timeout:.0f} s")
                    return None
                return Measurement(
                    name, args.deployments, runs, done - launched, done - healthy, created_in
                )
    except ServerUnavailable as exc:
        notes.append(f"{name} not measured: {exc}")
        return None


def _flowplane(workdir: Path, scheduler: bool) -> AbstractContextManager[RunningServer]:
    value = "true" if scheduler else "false"
    return flowplane_server(workdir, {"FLOWPLANE_SERVER_SERVICES_SCHEDULER_ENABLED": value})


def _prefect(workdir: Path, scheduler: bool) -> AbstractContextManager[RunningServer]:
    return prefect_server(workdir, services=scheduler)


def run(argv: list[str] | None = None) -> Report:
    """Measure both schedulers and build the side-by-side report."""
    args = _parse(argv)
    notes: list[str] = []
    ours = _measure("flowplane", _flowplane, args, notes)
    theirs = None if args.skip_prefect else _measure("prefect", _prefect, args, notes)
    report = Report(
        title=f"scheduler: runs for {args.deployments} deployments with an hourly schedule "
        f"({args.deployments * RUNS_PER_DEPLOYMENT} runs), SQLite, default scheduler settings",
        columns=["measure", "flowplane", "prefect", "flowplane faster by"],
        notes=notes,
    )

    def row(
        label: str, pick: Callable[[Measurement], float], unit: str = "s", more_is_better=False
    ) -> None:
        a = pick(ours) if ours else None
        b = pick(theirs) if theirs else None
        ratio = "n/a"
        if a and b:
            ratio = f"{(a / b if more_is_better else b / a):.1f}x"
        report.rows.append(
            [
                label,
                f"{a:.2f} {unit}" if a is not None else "n/a",
                f"{b:.2f} {unit}" if b is not None else "n/a",
                ratio,
            ]
        )

    row("launch → all runs exist", lambda m: m.from_launch)
    row("healthy → all runs exist", lambda m: m.from_healthy)
    row("runs/s (from launch)", lambda m: m.runs / m.from_launch, "runs/s", True)
    for m in (ours, theirs):
        if m is not None:
            notes.append(
                f"{m.server}: creating the {m.deployments} deployments over HTTP took "
                f"{m.create_seconds:.1f} s (not compared)"
            )
    notes.append(
        "prefect runs with all its services (its default); flowplane with its default services"
    )
    return report


def main(argv: list[str] | None = None) -> int:
    return run_as_script(run, argv)


if __name__ == "__main__":
    sys.exit(main())
