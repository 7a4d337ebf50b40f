"""Real Prefect 3 flows, run by the compat tests against a flowplane server; prints what they created as JSON.

Run with the .venv-compat interpreter and PREFECT_API_URL pointing at the server under test:
``python scenarios.py TAG``. The last stdout line is ``COMPAT-RESULT {json}`` with, per
scenario, the flow run id, its name, and the task run ids keyed by a logical name.
Exceptions are recorded per scenario so one broken endpoint does not hide the others.
"""

from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from prefect import flow, get_run_logger, tags, task
from prefect.context import get_run_context

TAG = sys.argv[1] if len(sys.argv) > 1 else "local"
RESULT: dict[str, Any] = {"tag": TAG, "flows": {}, "errors": {}}
ATTEMPTS: dict[str, int] = {}


def _record_flow(scenario: str) -> None:
    """Store the current flow run's id and name under ``scenario``."""
    run = get_run_context().flow_run
    RESULT["flows"][scenario] = {
        "flow_run_id": str(run.id),
        "name": run.name,
        "task_runs": {},
    }


def _record_task(scenario: str, key: str) -> None:
    """Store the current task run's id under ``scenario``/``key``."""
    run = get_run_context().task_run
    RESULT["flows"][scenario]["task_runs"][key] = {
        "id": str(run.id),
        "name": run.name,
        "flow_run_id": str(run.flow_run_id),
    }


# --- etl: several tasks, a mapped task, a task that fails once then succeeds, logs, prints, tags


@task(tags=["extract-step"])
def extract(rows: int) -> list[int]:
    _record_task("etl", "extract")
    get_run_logger().info("extracting %d rows", rows)
    return list(range(rows))


@task
def square(x: int) -> int:
    _record_task("etl", f"square-{x}")
    return x * x


@task(retries=2, retry_delay_seconds=0.2)
def flaky_sum(values: list[int]) -> int:
    _record_task("etl", "flaky_sum")
    ATTEMPTS["flaky_sum"] = ATTEMPTS.get("flaky_sum", 0) + 1
    if ATTEMPTS["flaky_sum"] == 1:
        raise RuntimeError("flaky failure on attempt 1")
    get_run_logger().warning("flaky_sum recovered on attempt %d", ATTEMPTS["flaky_sum"])
    return sum(values)


@task
def load(total: int) -> int:
    _record_task("etl", "load")
    print(f"loaded total={total}")
    return total


@flow(name="compat-etl", flow_run_name=f"compat-etl-{TAG}", log_prints=True)
def etl(rows: int = 4) -> int:
    _record_flow("etl")
    get_run_logger().info("etl flow starting with %d rows", rows)
    values = extract(rows)
    squares = [future.result() for future in square.map(values)]
    total = load(flaky_sum(squares))
    print(f"etl flow finished total={total}")
    return total


# --- failing: a task raises, the flow run fails


@task
def explode() -> None:
    _record_task("failing", "explode")
    get_run_logger().error("about to explode")
    raise ValueError("boom from compat")


@flow(name="compat-failing", flow_run_name=f"compat-failing-{TAG}")
def failing() -> None:
    _record_flow("failing")
    explode()


# --- subflow: a parent flow run calls a child flow (and each runs a task)


@task
def double(x: int) -> int:
    _record_task("child", "double")
    return 2 * x


@flow(name="compat-child", flow_run_name=f"compat-child-{TAG}")
def child(x: int) -> int:
    _record_flow("child")
    get_run_logger().info("child flow got %d", x)
    return double(x)


@task
def prepare() -> int:
    _record_task("parent", "prepare")
    return 21


@flow(name="compat-parent", flow_run_name=f"compat-parent-{TAG}")
def parent() -> int:
    _record_flow("parent")
    return child(prepare())


def main() -> None:
    def tagged_etl() -> None:
        # Tags reach every task run too, and a tagged task asks the server for concurrency
        # slots (tag limits); only this scenario is tagged so that its failures stay separate.
        with tags("compat", TAG):
            etl(4)

    scenarios = {
        "etl": tagged_etl,
        "failing": lambda: failing(return_state=True),
        "parent": parent,
    }
    for name, run in scenarios.items():
        try:
            run()
        except BaseException:  # record and go on: each scenario is asserted separately
            RESULT["errors"][name] = traceback.format_exc()
    print("COMPAT-RESULT " + json.dumps(RESULT), flush=True)


if __name__ == "__main__":
    main()
