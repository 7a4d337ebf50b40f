"""One concurrency workload in this (fresh) process, with flowplane or with Prefect 3.6.29.

Runs under either interpreter and imports nothing from ``benchmarks/``: the same code
drives both, since flowplane speaks Prefect's Python API. The parent
(``benchmarks/concurrency.py``) gives it a private home and, in server mode, the API URL.

    python concurrency_worker.py --impl flowplane|prefect --workload acquire|tagged|seq
                                 --n N --out result.json

- ``acquire``: a global limit of 10; N times ``with concurrency(name): pass`` in sequence
  (after a warm-up of 5). Seconds per acquire+release.
- ``tagged``: a tag limit of 10; one flow maps a trivial task tagged with it over N items
  (default thread pool). Wall seconds for the flow, and the most task bodies seen running
  at once (must be <= 10).
- ``seq``: N sequential untagged trivial tasks in one flow (the hot path a tag-limit
  check must not slow down). Seconds per task.
"""

from __future__ import annotations

import argparse
import importlib
import json
import threading
import time
import uuid
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=["flowplane", "prefect"], required=True)
    parser.add_argument("--workload", choices=["acquire", "tagged", "seq"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sdk = importlib.import_module(args.impl)
    result: dict[str, Any] = {"impl": args.impl, "workload": args.workload, "n": args.n}
    suffix = uuid.uuid4().hex[:6]
    if args.workload == "acquire":
        sync = importlib.import_module(f"{args.impl}.concurrency.sync")
        name = f"bench-gcl-{suffix}"
        with sdk.get_client(sync_client=True) as client:
            if args.impl == "prefect":
                from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=10)
                )
            else:
                client.create_global_concurrency_limit({"name": name, "limit": 10})
        for _ in range(5):
            with sync.concurrency(name):
                pass
        started = time.perf_counter()
        for _ in range(args.n):
            with sync.concurrency(name):
                pass
        result["seconds"] = time.perf_counter() - started
        with sdk.get_client(sync_client=True) as client:
            result["left_active"] = client.read_global_concurrency_limit_by_name(name).active_slots
    elif args.workload == "tagged":
        tag = f"bench-tag-{suffix}"
        with sdk.get_client(sync_client=True) as client:
            client.create_concurrency_limit(tag=tag, concurrency_limit=10)
        running = [0, 0]  # now, most
        lock = threading.Lock()

        @sdk.task(tags=[tag])
        def limited(i: int) -> int:
            with lock:
                running[0] += 1
                running[1] = max(running[1], running[0])
            time.sleep(0.001)
            with lock:
                running[0] -= 1
            return i

        @sdk.flow(name=f"bench-tagged-{suffix}")
        def tagged(n: int) -> int:
            return sum(f.result() for f in limited.map(range(n)))

        started = time.perf_counter()
        total = tagged(args.n)
        result["seconds"] = time.perf_counter() - started
        result["ok"] = total == sum(range(args.n))
        result["most_at_once"] = running[1]
    else:

        @sdk.task
        def plain(i: int) -> int:
            return i

        @sdk.flow(name=f"bench-seq-{suffix}")
        def seq(n: int) -> int:
            return sum(plain(i) for i in range(n))

        seq(5)
        started = time.perf_counter()
        seq(args.n)
        result["seconds"] = time.perf_counter() - started
    with open(args.out, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
