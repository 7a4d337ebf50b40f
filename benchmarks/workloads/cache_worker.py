"""One cache-hit workload in this (fresh) process, with flowplane or with Prefect: the same code drives both.

    python cache_worker.py --impl flowplane|prefect --n N --out result.json

A flow calls a task whose cache policy is its inputs and code (results persisted to the
implementation's default local storage). A first flow run fills the cache and warms up
imports, the engine and the API; then three timed flow runs call the task N times with
the same inputs, so every call is a cache hit: the best run's time per call is reported,
beside the same loop over an uncached task for reference. Every hit is checked to be a
Cached state with the right value.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["flowplane", "prefect"], required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sdk = importlib.import_module(args.impl)
    policies = importlib.import_module(f"{args.impl}.cache_policies")
    flow, task = sdk.flow, sdk.task

    @task(cache_policy=policies.INPUTS + policies.TASK_SOURCE, persist_result=True)
    def cached(x: int) -> dict[str, int]:
        return {"x": x, "double": 2 * x}

    @task
    def plain(x: int) -> dict[str, int]:
        return {"x": x, "double": 2 * x}

    @flow
    def hits(n: int) -> float:
        started = time.perf_counter()
        states = [cached(7, return_state=True) for _ in range(n)]
        elapsed = time.perf_counter() - started
        assert all(s.name == "Cached" for s in states), {s.name for s in states}
        assert states[-1].result() == {"x": 7, "double": 14}
        return elapsed

    @flow
    def uncached(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            plain(7, return_state=True)
        return time.perf_counter() - started

    @flow
    def warm() -> None:
        cached(7)
        plain(7)

    warm()
    hit_times = [hits(args.n) for _ in range(3)]
    plain_times = [uncached(args.n) for _ in range(3)]
    with open(args.out, "w") as f:
        json.dump(
            {
                "hit_us": min(hit_times) / args.n * 1e6,
                "plain_us": min(plain_times) / args.n * 1e6,
                "n": args.n,
            },
            f,
        )


if __name__ == "__main__":
    main()
