"""One flowplane flow running N sequential tasks, sampling this process's RSS every K tasks; JSON to --out.

Run by ``benchmarks/memory_flat.py`` in a fresh ``.venv/bin/python`` with a private
``FLOWPLANE_HOME`` (embedded: no API URL). Each sample is taken inside the flow, right
after task number ``i * K`` returned: VmRSS from /proc/self/status and the number of
objects the garbage collector tracks. After the flow returns, the task runs are counted
through the API (flowplane's client) until all N are COMPLETED or --verify-timeout
passes; exit status 3 means some were never recorded.

    .venv/bin/python memory_worker.py --tasks 100000 --every 10000 --out result.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def writer_backlog() -> int | None:
    """Events and log lines queued in flowplane's background writer(s) but not yet sent (diagnostic;
    reads a private registry, so None if its shape changes)."""
    try:
        from flowplane.sdk import writer

        return sum(w.pending() for w in list(writer._writers.values()))
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--name", default="memory-flat")
    parser.add_argument("--out", required=True)
    parser.add_argument("--verify-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)

    from flowplane import flow, get_client, task

    @task
    def inc(x: int) -> int:
        return x + 1

    samples: list[dict[str, Any]] = []
    started = time.perf_counter()

    def sample(done: int) -> None:
        samples.append(
            {
                "tasks": done,
                "rss_kb": rss_kb(),
                "gc_objects": len(gc.get_objects()),
                "writer_backlog": writer_backlog(),
                "seconds": time.perf_counter() - started,
            }
        )

    @flow(name=args.name)
    def many(n: int, every: int) -> int:
        sample(0)
        s = 0
        for i in range(1, n + 1):
            s = inc(s)
            if i % every == 0:
                sample(i)
        return s

    if many(args.tasks, args.every) != args.tasks:
        raise SystemExit("wrong result")
    seconds = time.perf_counter() - started
    after_flow_kb = rss_kb()
    backlog_after_flow = writer_backlog()

    t0 = time.perf_counter()
    flows = {"name": {"any_": [args.name]}}
    done = {"state": {"type": {"any_": ["COMPLETED"]}}}
    with get_client(sync_client=True) as client:
        while True:
            counted = client.count_task_runs(flow_filter=flows, task_run_filter=done)
            if counted >= args.tasks or time.perf_counter() - t0 > args.verify_timeout:
                break
            time.sleep(0.2)
    result = {
        "tasks": args.tasks,
        "seconds": seconds,
        "samples": samples,
        "rss_after_flow_kb": after_flow_kb,
        "writer_backlog_after_flow": backlog_after_flow,
        "task_runs_counted": counted,
        "verify_seconds": time.perf_counter() - t0,
    }
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0 if counted >= args.tasks else 3


if __name__ == "__main__":
    sys.exit(main())
