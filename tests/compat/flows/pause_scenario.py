"""A real Prefect 3 flow that pauses twice waiting for typed input; the compat tests resume it from other processes.

Run with the .venv-compat interpreter and PREFECT_API_URL pointing at the server under test.
It prints ``RUN <flow run id>`` when it starts and ``RESULT <json>`` when the flow returns.
"""

from __future__ import annotations

import json

from prefect import flow, get_run_logger, task
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Order(RunInput):
    item: str
    quantity: int


@task
def price(quantity: int) -> int:
    return 3 * quantity


@flow(name="compat-pause")
def pausing() -> dict:
    print("RUN", get_run_context().flow_run.id, flush=True)
    order = pause_flow_run(wait_for_input=Order, timeout=180, poll_interval=1)
    get_run_logger().info("got order %s", order)
    tip = pause_flow_run(wait_for_input=int, timeout=180, poll_interval=1)
    return {"item": order.item, "quantity": order.quantity, "total": price(order.quantity) + tip}


if __name__ == "__main__":
    print("RESULT", json.dumps(pausing()), flush=True)
