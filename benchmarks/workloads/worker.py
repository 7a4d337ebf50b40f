"""One SDK-overhead workload in this (fresh) process, with flowplane or with Prefect, then proof that it was recorded.

Runs under either interpreter (``.venv/bin/python`` for flowplane, ``.venv-compat/bin/python``
for Prefect 3.6.29) and imports nothing from ``benchmarks/``: the same code drives both,
since flowplane speaks Prefect's Python API. The parent (``benchmarks/sdk_overhead.py``)
gives it a private home (``FLOWPLANE_HOME`` / ``PREFECT_HOME``) and, in server mode, the
API URL, so no workload warms another.

    python worker.py --impl flowplane|prefect --workload seq|map|flows|subflows|first|verify
                     --n N --name NAME --out result.json [--max-seconds S] [--verify-timeout S]

Per-item workloads (``seq``, ``map``, ``flows``, ``subflows``) first run a warm-up of the
same shape under another flow name (2 items: imports, engine, embedded/ephemeral server
start-up all happen there), then time the workload with ``perf_counter`` around the call.
A workload stops early once ``--max-seconds`` have passed (checked between items; ``map``
cannot stop early) and says how many items it did. After timing, it polls the API (the
implementation's own client) until every task run and flow run of the timed workload is
counted as COMPLETED, or ``--verify-timeout`` passes; the result says how long that took.

``first`` runs one flow with one task and exits (the parent times the whole process);
``verify`` is run afterwards, in another process on the same home/API, to count that run.

The result is one JSON object written to ``--out``; exit status 0 means the workload ran,
returned the right values and its runs were all recorded; 3 means runs went unrecorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
from typing import Any

#: The subflow workload's child flow runs this many tasks.
SUBFLOW_TASKS = 5


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["flowplane", "prefect"], required=True)
    parser.add_argument(
        "--workload",
        choices=["seq", "map", "flows", "subflows", "first", "verify"],
        required=True,
    )
    parser.add_argument("--n", type=int, default=1)
    parser.add_argument("--name", required=True, help="flow name of the timed workload")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=float("inf"))
    parser.add_argument("--verify-timeout", type=float, default=60.0)
    # for --workload verify: what to expect under --name
    parser.add_argument("--expect-flow-runs", type=int, default=0)
    parser.add_argument("--expect-task-runs", type=int, default=0)
    return parser.parse_args(argv)


# --- memory -------------------------------------------------------------------------------


def _max_rss_kb() -> int:
    """Peak resident set size of this process (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _descendants(pid: int) -> list[int]:
    """PIDs of the live descendants of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live descendants (e.g. Prefect's ephemeral server)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _children_hwm_kb() -> int:
    """Sum of the peak RSS (VmHWM) of this process's live descendants, e.g. Prefect's ephemeral server."""
    total = 0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


# --- counting what was recorded, through the API -----------------------------------------


def _counter(impl: str) -> Any:
    """A function ``(path, body) -> int`` that POSTs a count query to the API of ``impl``."""
    if impl == "flowplane":
        from flowplane import get_client

        client = get_client(sync_client=True)
        client.__enter__()

        def count(path: str, body: dict[str, Any]) -> int:
            if path == "/task_runs/count":
                return int(client.count_task_runs(**body))
            return int(client.count_flow_runs(**body))

        return count

    from prefect import get_client

    client = get_client(sync_client=True)
    client.__enter__()

    def count(path: str, body: dict[str, Any]) -> int:
        # Prefect 3.6's sync client has no count_task_runs; the route is the same as ours.
        payload = {
            {
                "flow_filter": "flows",
                "flow_run_filter": "flow_runs",
                "task_run_filter": "task_runs",
            }[k]: v
            for k, v in body.items()
        }
        response = client._client.post(path, json=payload)
        response.raise_for_status()
        return int(response.json())

    return count


def _count(count: Any, flow_name: str) -> tuple[int, int]:
    """(COMPLETED flow runs, COMPLETED task runs) of flows named ``flow_name``."""
    flows = {"name": {"any_": [flow_name]}}
    done = {"type": {"any_": ["COMPLETED"]}}
    flow_runs = count(
        "/flow_runs/count", {"flow_filter": flows, "flow_run_filter": {"state": done}}
    )
    task_runs = count(
        "/task_runs/count", {"flow_filter": flows, "task_run_filter": {"state": done}}
    )
    return flow_runs, task_runs


def verify(impl: str, expected: dict[str, tuple[int, int]], timeout: float) -> dict[str, Any]:
    """Poll until every flow name has its expected (flow runs, task runs) COMPLETED, or ``timeout``."""
    started = time.perf_counter()
    count = _counter(impl)
    seen: dict[str, tuple[int, int]] = {}
    while True:
        seen = {name: _count(count, name) for name in expected}
        ok = all(
            seen[name][0] >= want[0] and seen[name][1] >= want[1] for name, want in expected.items()
        )
        waited = time.perf_counter() - started
        if ok or waited > timeout:
            break
        time.sleep(0.1)
    return {
        "ok": ok,
        "seconds": waited,
        "expected": {k: list(v) for k, v in expected.items()},
        "counted": {k: list(v) for k, v in seen.items()},
    }


# --- workloads ----------------------------------------------------------------------------


def _inc(x: int) -> int:
    return x + 1


def main(argv: list[str] | None = None) -> int:
    process_started = time.perf_counter()
    args = _parse(argv)
    result: dict[str, Any] = {"impl": args.impl, "workload": args.workload, "n": args.n}

    if args.workload == "verify":
        result["verify"] = verify(
            args.impl,
            {args.name: (args.expect_flow_runs, args.expect_task_runs)},
            args.verify_timeout,
        )
        _write(args.out, result)
        return 0 if result["verify"]["ok"] else 3

    t0 = time.perf_counter()
    sdk = importlib.import_module(args.impl)
    flow, task = sdk.flow, sdk.task
    result["import_seconds"] = time.perf_counter() - t0
    inc = task(_inc)

    if args.workload == "first":

        def first() -> int:
            return inc(1)

        one = flow(name=args.name)(first)
        if one() != 2:
            raise SystemExit("first: wrong result")
        _write(args.out, result | {"ran_seconds": time.perf_counter() - process_started})
        return 0

    def seq_flow(n: int, deadline: float) -> int:
        s = 0
        for _ in range(n):
            s = inc(s)
            if time.perf_counter() > deadline:
                break
        return s

    def map_flow(n: int, deadline: float) -> int:
        futures = inc.map(range(n))
        values = futures.result()
        if values != list(range(1, n + 1)):
            raise SystemExit("map: wrong results")
        return n

    def tiny(i: int) -> int:
        return i

    def child(i: int) -> int:
        s = i
        for _ in range(SUBFLOW_TASKS):
            s = inc(s)
        return s

    def make(name: str) -> Any:
        """The timed callable for this workload, its flows named after ``name``."""
        if args.workload == "seq":
            return flow(name=name)(seq_flow)
        if args.workload == "map":
            return flow(name=name)(map_flow)
        if args.workload == "flows":
            tiny_flow = flow(name=name)(tiny)

            def many(n: int, deadline: float) -> int:
                done = 0
                for i in range(n):
                    if tiny_flow(i) != i:
                        raise SystemExit("flows: wrong result")
                    done += 1
                    if time.perf_counter() > deadline:
                        break
                return done

            return many
        child_flow = flow(name=name + "-child")(child)

        def parent(n: int, deadline: float) -> int:
            done = 0
            for i in range(n):
                if child_flow(i) != i + SUBFLOW_TASKS:
                    raise SystemExit("subflows: wrong result")
                done += 1
                if time.perf_counter() > deadline:
                    break
            return done

        return flow(name=name)(parent)

    # warm-up: same shape, another name, 2 items
    t0 = time.perf_counter()
    if make(args.name + "-warmup")(2, float("inf")) != 2:
        raise SystemExit("warm-up: wrong result")
    result["warmup_seconds"] = time.perf_counter() - t0

    timed = make(args.name)
    cpu0 = _cpu_seconds()
    t0 = time.perf_counter()
    items = timed(args.n, t0 + args.max_seconds)
    seconds = time.perf_counter() - t0
    result |= {
        "items": items,
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu0,
        "capped": items < args.n,
        "max_rss_kb": _max_rss_kb(),
        "children_hwm_kb": _children_hwm_kb(),
    }

    if args.workload in ("seq", "map"):
        expected = {args.name: (1, items)}
    elif args.workload == "flows":
        expected = {args.name: (items, 0)}
    else:  # subflows: the parent, and `items` children with 5 tasks each
        expected = {args.name: (1, 0), args.name + "-child": (items, items * SUBFLOW_TASKS)}
    result["verify"] = verify(args.impl, expected, args.verify_timeout)
    _write(args.out, result)
    return 0 if result["verify"]["ok"] else 3


def _write(path: str, result: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    sys.exit(main())
