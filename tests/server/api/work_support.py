"""Helpers shared by the work-pool and deployment API tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any


def iso(when: datetime) -> str:
    return when.isoformat()


def ago(seconds: float = 0) -> datetime:
    return datetime.now(timezone.utc) - timedelta(seconds=seconds)


async def make_pool(client: Any, name: str = "pool", **fields: Any) -> dict:
    response = await client.post("/work_pools/", json={"name": name, "type": "process", **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def make_queue(client: Any, pool: str, name: str, **fields: Any) -> dict:
    response = await client.post(f"/work_pools/{pool}/queues", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def make_flow(client: Any, name: str = "etl") -> str:
    response = await client.post("/flows/", json={"name": name})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


async def scheduled_run(
    client: Any,
    flow_id: str,
    pool: str,
    queue: str | None = None,
    when: datetime | None = None,
    **fields: Any,
) -> dict:
    """A Scheduled flow run waiting in ``pool``/``queue``."""
    when = when or ago(1)
    body = {
        "flow_id": flow_id,
        "work_pool_name": pool,
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "state_details": {"scheduled_time": iso(when)},
        },
        **fields,
    }
    if queue is not None:
        body["work_queue_name"] = queue
    response = await client.post("/flow_runs/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def poll(client: Any, pool: str, **body: Any) -> list[dict]:
    body.setdefault("scheduled_before", iso(ago(-5)))
    response = await client.post(f"/work_pools/{pool}/get_scheduled_flow_runs", json=body)
    assert response.status_code == 200, response.text
    return response.json()
