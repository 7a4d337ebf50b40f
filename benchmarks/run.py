"""Run every benchmark (side by side with Prefect 3.6.29), print their tables, and check budgets with --check.

    .venv/bin/python benchmarks/run.py [--check] [--only NAME[,NAME]] [-- extra args for each benchmark]

Each benchmark is a module in this folder with ``run(argv) -> Report``; add new ones to
``BENCHMARKS``. Not part of pytest.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report  # noqa: E402

#: Benchmark modules, in the order they run.
BENCHMARKS = [
    "server_throughput",
    "sdk_overhead",
    "memory_flat",
    "event_ingest",
    "cache_hit",
    "concurrency",
    "scheduler",
    "worker_latency",
]


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit 1 with --check when any budget is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any budget is missed")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("extra", nargs="*", help="arguments passed to every benchmark (after --)")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or BENCHMARKS
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}"
        )

    reports: list[tuple[str, Report, float]] = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        report = importlib.import_module(name).run(list(args.extra))
        reports.append((name, report, time.perf_counter() - started))

    print()
    for name, report, seconds in reports:
        print(f"### {name}  ({seconds:.0f} s)")
        report.print()
        print()
    missed = [
        (name, budget)
        for name, report, _ in reports
        for budget, met, _ in report.budgets
        if not met
    ]
    total = sum(len(report.budgets) for _, report, _ in reports)
    print(
        f"budgets: {total - len(missed)}/{total} met"
        + "".join(f"\n  MISSED {n}: {b}" for n, b in missed)
    )
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
