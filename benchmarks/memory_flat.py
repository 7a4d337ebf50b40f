"""Memory over 100,000 task runs: one embedded flowplane flow, RSS sampled every 10,000 tasks; flat or not.

A fresh ``.venv/bin/python`` with a private ``FLOWPLANE_HOME`` (embedded, no API URL) runs
one flow that calls a trivial task ``--tasks`` times in sequence
(``benchmarks/workloads/memory_worker.py``); inside the flow, after every ``--every``
tasks, it records VmRSS and the number of objects the garbage collector tracks. The first
``--settle`` tasks (default 20 %, i.e. 20,000 of 100,000) are treated as warm-up: caches,
pools, the embedded server's buffers and the allocator's arenas fill there.

**Flat** means: RSS at the last sample is less than ``--max-growth`` (default 5 %) above
RSS at the settle point (20k), over the remaining 80 % of the tasks. 5 % of the ~100-150 MiB
this process holds is 5-8 MiB over 80,000 task runs, so a leak of more than roughly 60-100
bytes per task run fails it. The table also gives the bytes per task run after settling
and the GC-tracked object growth, which points at Python-level leaks directly. After the
flow, all ``--tasks`` task runs must be counted COMPLETED through the API, else it fails.

Prefect is not run here (100,000 Prefect task runs take well over an hour on this machine).

    .venv/bin/python benchmarks/memory_flat.py [--tasks 100000] [--every 10000] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, run_as_script  # noqa: E402
from sdk_overhead import python_of, spawn  # noqa: E402

WORKER = Path(__file__).resolve().parent / "workloads" / "memory_worker.py"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tasks", type=int, default=0, help="task runs (default 100000; --quick 20000)"
    )
    parser.add_argument(
        "--every", type=int, default=0, help="sample every N tasks (default tasks/10)"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.2,
        help="fraction of the tasks treated as warm-up (default 0.2: growth from 20k to 100k)",
    )
    parser.add_argument(
        "--max-growth",
        type=float,
        default=5.0,
        help="percent RSS growth allowed after settling (default 5)",
    )
    parser.add_argument("--quick", action="store_true", help="20,000 tasks, sampled every 2,000")
    parser.add_argument("--verify-timeout", type=float, default=120.0)
    parser.add_argument("--check", action="store_true", help="exit 1 unless flat")
    args, _unknown = parser.parse_known_args(argv)  # run.py passes extra args to every benchmark
    args.tasks = args.tasks or (20_000 if args.quick else 100_000)
    args.every = args.every or max(1, args.tasks // 10)
    return args


def run(argv: list[str] | None = None) -> Report:
    args = _parse(argv)
    report = Report(
        title=f"memory over {args.tasks:,} sequential task runs in one flow, flowplane embedded",
        columns=[
            "tasks done",
            "RSS MiB",
            "Δ vs settle MiB",
            "GC objects",
            "writer backlog",
            "seconds",
        ],
    )
    budget = (
        f"RSS flat: < {args.max_growth:g} % growth after the first {args.settle:.0%} of the tasks"
    )
    print(f"  flowplane embedded: {args.tasks:,} tasks ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        workdir = Path(tmp)
        out = workdir / "result.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWPLANE_", "PREFECT_"))}
        env["FLOWPLANE_HOME"] = str(workdir / "home")
        command = [
            str(python_of("flowplane")),
            str(WORKER),
            "--tasks",
            str(args.tasks),
            "--every",
            str(args.every),
            "--out",
            str(out),
            "--verify-timeout",
            str(args.verify_timeout),
        ]
        finished = spawn(command, env, workdir, 3600)
        result = json.loads(out.read_text()) if out.exists() else None
    if result is None or finished.returncode not in (0, 3):
        report.notes.append(f"worker exited {finished.returncode}:\n{finished.output[-2500:]}")
        report.budgets.append((budget, False, "FAILED: workload did not finish"))
        return report

    samples = result["samples"]
    settle_at = int(args.tasks * args.settle)
    base = min(samples, key=lambda s: abs(s["tasks"] - settle_at))
    last = samples[-1]
    for s in samples:
        report.rows.append(
            [
                f"{s['tasks']:,}",
                f"{s['rss_kb'] / 1024:.1f}",
                f"{(s['rss_kb'] - base['rss_kb']) / 1024:+.1f}"
                if s["tasks"] >= base["tasks"]
                else "",
                f"{s['gc_objects']:,}",
                "n/a" if s.get("writer_backlog") is None else f"{s['writer_backlog']:,}",
                f"{s['seconds']:.1f}",
            ]
        )
    growth = (last["rss_kb"] - base["rss_kb"]) / base["rss_kb"] * 100
    span = last["tasks"] - base["tasks"]
    per_task = (last["rss_kb"] - base["rss_kb"]) * 1024 / span if span else 0.0
    objects_per_task = (last["gc_objects"] - base["gc_objects"]) / span if span else 0.0
    report.notes += [
        f"growth from {base['tasks']:,} to {last['tasks']:,} tasks: {growth:+.2f} % "
        f"({per_task:+.1f} bytes RSS and {objects_per_task:+.3f} GC-tracked objects per task run)",
        f"{args.tasks:,} tasks in {result['seconds']:.1f} s "
        f"({result['seconds'] / args.tasks * 1e6:.0f} µs per task, sampling included); "
        f"RSS after the flow returned: {result['rss_after_flow_kb'] / 1024:.1f} MiB, "
        f"writer backlog then: {result.get('writer_backlog_after_flow')} items",
        "'seconds' = since the flow was called; 'writer backlog' = events/log lines queued in "
        "the SDK's background writer, not yet accepted by the API (a backlog is memory that "
        "grows with the run, whatever its cause)",
        f"task runs counted COMPLETED through the API: {result['task_runs_counted']:,} of "
        f"{args.tasks:,} ({result['verify_seconds']:.1f} s after the flow returned)",
        f"flat = RSS at the last sample < {args.max_growth:g} % above RSS at {base['tasks']:,} tasks",
    ]
    recorded = result["task_runs_counted"] >= args.tasks
    report.budgets.append((budget, growth < args.max_growth, f"{growth:+.2f} %"))
    report.budgets.append(
        (
            "all task runs recorded",
            recorded,
            f"{result['task_runs_counted']:,}/{args.tasks:,}",
        )
    )
    return report


def main(argv: list[str] | None = None) -> int:
    """Run, print the table; with --check exit 1 when a budget is missed."""
    return run_as_script(run, argv)


if __name__ == "__main__":
    sys.exit(main())
