"""Run by the real Prefect 3 client: a flow with a cached task whose result is persisted.

``python cached_flow.py MARKER`` appends a line to MARKER each time the task body runs,
then prints ``COMPAT-RESULT {json}`` with the flow run's id.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE

MARKER = Path(sys.argv[1])


@task(cache_policy=INPUTS + TASK_SOURCE, persist_result=True)
def expensive(x: int) -> dict[str, int]:
    with MARKER.open("a") as f:
        f.write("ran\n")
    return {"x": x, "squared": x * x}


@flow(name="compat-cache")
def cached(x: int) -> str:
    state = expensive(x, return_state=True)
    return f"{state.name}:{state.result()['squared']}"


if __name__ == "__main__":
    final = cached(4, return_state=True)
    print(
        "COMPAT-RESULT "
        + json.dumps(
            {"flow_run_id": str(final.state_details.flow_run_id), "result": final.result()}
        )
    )
