"""flowplane SDK flows run against a REAL Prefect 3.6.29 server (the other direction of compat)."""

from __future__ import annotations

import json

from flowplane import flow, get_run_logger, task

ATTEMPTS = {"flaky": 0}


@task(retries=1, retry_delay_seconds=0)
def flaky(x: int) -> int:
    ATTEMPTS["flaky"] += 1
    if ATTEMPTS["flaky"] == 1:
        raise RuntimeError("first attempt fails")
    return x * 10


@task
def add(x: int, y: int) -> int:
    return x + y


@flow
def child(n: int) -> int:
    get_run_logger().info("child got %s", n)
    return add(n, 1)


@flow(log_prints=True)
def parent(n: int = 3) -> int:
    get_run_logger().info("parent starting with n=%s", n)
    total = sum(add(i, i) for i in range(n))
    print(f"total is {total}")
    return child(flaky(total))


@flow
def broken() -> None:
    raise ValueError("this flow fails on purpose")


if __name__ == "__main__":
    parent_state = parent(return_state=True)
    broken_state = broken(return_state=True)
    print(
        "COMPAT-RESULT "
        + json.dumps(
            {
                "parent": str(parent_state.state_details.flow_run_id),
                "parent_result": parent_state.result(),
                "broken": str(broken_state.state_details.flow_run_id),
            }
        )
    )
