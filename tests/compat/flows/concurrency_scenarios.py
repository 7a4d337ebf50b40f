"""Real Prefect 3 code under concurrency limits served by flowplane; prints what each block saw as JSON.

Run with the .venv-compat interpreter and PREFECT_API_URL pointing at the server under test:
``python concurrency_scenarios.py TAG LIMIT_NAME``. The tag limit and the global limit must
exist (limit 1). The last stdout line is ``COMPAT-RESULT {json}``: per scenario, the
(start, end) monotonic times of every block that held a slot, and any error raised.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import Any

from prefect import flow, task
from prefect.concurrency.sync import concurrency

TAG = sys.argv[1]
LIMIT = sys.argv[2]
RESULT: dict[str, Any] = {"spans": {"tagged": [], "global": []}, "errors": {}}
_lock = threading.Lock()


def _span(scenario: str, seconds: float) -> None:
    start = time.monotonic()
    time.sleep(seconds)
    with _lock:
        RESULT["spans"][scenario].append((start, time.monotonic()))


@task(tags=[TAG])
def limited(i: int) -> int:
    _span("tagged", 0.2)
    return i


@flow(name="compat-tag-limit")
def tagged_flow() -> list[int]:
    futures = [limited.submit(i) for i in range(4)]
    return [f.result() for f in futures]


def global_block() -> None:
    with concurrency(LIMIT, occupy=1, timeout_seconds=120):
        _span("global", 0.2)


def main() -> None:
    try:
        RESULT["tagged_result"] = tagged_flow()
    except Exception:
        RESULT["errors"]["tagged"] = traceback.format_exc()
    try:
        threads = [threading.Thread(target=global_block) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
    except Exception:
        RESULT["errors"]["global"] = traceback.format_exc()
    print("COMPAT-RESULT " + json.dumps(RESULT), flush=True)


if __name__ == "__main__":
    main()
