"""Reading events when task-run events are synthesized from ``task_run_state`` rows.

Seeds a database with flow runs (their state events stored in ``event``) and
``--task-runs`` task runs of three states each (Pending, Running, Completed, only as
state rows), then times event reads through the API in process (httpx over ASGI):
the first page of ``/events/filter`` (limit 50) with a few filters, the next page, and
``count-by`` event and day. Prints the best and median of ``--repeat`` runs, wall and
CPU milliseconds (the server runs in this process, so CPU time is the server's work).

    .venv/bin/python benchmarks/events_read.py [--task-runs 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


async def _seed(app: Any, http: Any, task_runs: int, flow_runs: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from flowplane.server.db import tables as t

    now = dt.datetime.now(dt.timezone.utc)
    runs = []
    for i in range(flow_runs):
        flow = (await http.post("/flows/", json={"name": f"flow-{i % 10}"})).json()
        run = (
            await http.post(
                "/flow_runs/",
                json={"flow_id": flow["id"], "name": f"run-{i}", "state": {"type": "PENDING"}},
            )
        ).json()
        await http.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}})
        runs.append(run)
    per_run = max(1, task_runs // flow_runs)
    span = dt.timedelta(hours=20)
    task_rows: list[dict[str, Any]] = []
    state_rows: list[dict[str, Any]] = []
    for n in range(task_runs):
        run = runs[n // per_run % flow_runs]
        tid = uuid.uuid4()
        start = now - span + span * (n / task_runs)
        done = start + dt.timedelta(milliseconds=2)
        states = [
            ("PENDING", "Pending", start),
            ("RUNNING", "Running", start + dt.timedelta(milliseconds=1)),
            ("COMPLETED", "Completed", done),
        ]
        ids = [uuid.uuid4() for _ in states]
        task_rows.append(
            {
                "id": tid,
                "created": start,
                "updated": done,
                "flow_run_id": uuid.UUID(run["id"]),
                "name": f"work-{n}",
                "task_key": "work-abc",
                "dynamic_key": str(n),
                "tags": ["bench"],
                "state_id": ids[-1],
                "state_type": "COMPLETED",
                "state_name": "Completed",
                "state_timestamp": done,
                "run_count": 1,
                "start_time": states[1][2],
                "end_time": done,
            }
        )
        for sid, (type_, name, ts) in zip(ids, states, strict=True):
            state_rows.append(
                {
                    "id": sid,
                    "created": ts,
                    "updated": ts,
                    "task_run_id": tid,
                    "type": type_,
                    "name": name,
                    "timestamp": ts,
                    "message": None,
                    "state_details": {},
                    "data": None,
                }
            )
    async with app.state.db.session() as session:
        for table, rows in ((t.TaskRun, task_rows), (t.TaskRunState, state_rows)):
            for i in range(0, len(rows), 2000):
                await session.execute(sa.insert(table), rows[i : i + 2000])
    for service in app.state.services.services:
        await service.flush()
    return {"flow_run": runs[len(runs) // 2]["id"], "task_run": str(task_rows[-7]["id"])}


async def _time(call: Any, repeat: int) -> tuple[float, float, float]:
    walls, cpus = [], []
    await call()  # warm
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        await call()
        walls.append((time.perf_counter() - w0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    return min(walls), statistics.median(walls), min(cpus)


async def main(args: argparse.Namespace) -> None:
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="fp-events-read-"))
    url = args.database_url or f"sqlite+aiosqlite:///{home / 'flowplane.db'}"
    app = create_app(Settings(home=home, database_url=url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://b/api") as http:
            t0 = time.perf_counter()
            ids = await _seed(app, http, args.task_runs, args.flow_runs)
            print(
                f"seeded {args.task_runs} task runs ({3 * args.task_runs} states), "
                f"{args.flow_runs} flow runs in {time.perf_counter() - t0:.1f}s on {url.split(':')[0]}"
            )

            def page(flt: dict[str, Any]) -> Any:
                async def call() -> Any:
                    r = await http.post("/events/filter", json={"filter": flt, "limit": 50})
                    assert r.status_code == 200, r.text
                    return r.json()

                return call

            first = await page({})()
            assert len(first["events"]) == 50 and first["next_page"], first["total"]
            next_path = first["next_page"].split("/api", 1)[1]

            async def next_page() -> None:
                assert (await http.get(next_path)).status_code == 200

            def count(kind: str) -> Any:
                async def call() -> None:
                    r = await http.post(f"/events/count-by/{kind}", json={"filter": {}})
                    assert r.status_code == 200, r.text

                return call

            cases = [
                ("filter limit 50, no filter", page({})),
                ("filter, order ASC", page({"order": "ASC"})),
                (
                    "filter, related flow-run id",
                    page({"related": {"id": [f"prefect.flow-run.{ids['flow_run']}"]}}),
                ),
                (
                    "filter, any_resource flow-run id",
                    page({"any_resource": {"id": [f"prefect.flow-run.{ids['flow_run']}"]}}),
                ),
                (
                    "filter, resource task-run id",
                    page({"resource": {"id": [f"prefect.task-run.{ids['task_run']}"]}}),
                ),
                (
                    "filter, prefix prefect.flow-run.",
                    page({"event": {"prefix": ["prefect.flow-run."]}}),
                ),
                ("filter/next (page 2)", next_page),
                ("count-by/event", count("event")),
                ("count-by/day", count("day")),
            ]
            print(f"total events matching no filter: {first['total']}")
            print(f"{'query':40} {'best ms':>9} {'median ms':>10} {'cpu ms':>8}")
            for label, call in cases:
                best, median, cpu = await _time(call, args.repeat)
                print(f"{label:40} {best:9.1f} {median:10.1f} {cpu:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-runs", type=int, default=20_000)
    parser.add_argument("--flow-runs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    asyncio.run(main(parser.parse_args()))
