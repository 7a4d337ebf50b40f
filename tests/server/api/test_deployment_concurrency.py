"""Deployment concurrency limits: ENQUEUE holds new runs back, CANCEL_NEW cancels them."""

from __future__ import annotations

import asyncio

import pytest
from work_support import make_flow, make_pool, poll


async def deployment_with_limit(client, limit: int, strategy: str | None) -> dict:
    await make_pool(client, "p")
    flow_id = await make_flow(client)
    body = {
        "name": "limited",
        "flow_id": flow_id,
        "work_pool_name": "p",
        "concurrency_limit": limit,
    }
    if strategy:
        body["concurrency_options"] = {"collision_strategy": strategy}
    response = await client.post("/deployments/", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def new_run(client, dep: dict) -> dict:
    response = await client.post(f"/deployments/{dep['id']}/create_flow_run", json={})
    assert response.status_code == 201, response.text
    return response.json()


async def propose(client, run_id: str, state_type: str) -> dict:
    response = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": state_type}}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_enqueue_sends_runs_over_the_limit_back_to_wait(client) -> None:
    dep = await deployment_with_limit(client, 1, "ENQUEUE")
    first, second = await new_run(client, dep), await new_run(client, dep)
    assert (await propose(client, first["id"], "PENDING"))["status"] == "ACCEPT"
    held = await propose(client, second["id"], "PENDING")
    assert held["status"] == "REJECT"
    assert (
        held["state"]["type"] == "SCHEDULED" and held["state"]["name"] == "AwaitingConcurrencySlot"
    )
    assert "concurrency limit" in held["details"]["reason"]
    read = (await client.get(f"/flow_runs/{second['id']}")).json()
    assert read["state"]["name"] == "AwaitingConcurrencySlot"

    await propose(client, first["id"], "RUNNING")
    await propose(client, first["id"], "COMPLETED")
    assert (await propose(client, second["id"], "PENDING"))["status"] == "ACCEPT"


async def test_default_strategy_is_enqueue(client) -> None:
    dep = await deployment_with_limit(client, 1, None)
    first, second = await new_run(client, dep), await new_run(client, dep)
    await propose(client, first["id"], "PENDING")
    assert (await propose(client, second["id"], "PENDING"))["state"]["type"] == "SCHEDULED"


async def test_cancel_new_cancels_runs_over_the_limit(client) -> None:
    dep = await deployment_with_limit(client, 2, "CANCEL_NEW")
    runs = [await new_run(client, dep) for _ in range(3)]
    assert (await propose(client, runs[0]["id"], "PENDING"))["status"] == "ACCEPT"
    assert (await propose(client, runs[1]["id"], "PENDING"))["status"] == "ACCEPT"
    third = await propose(client, runs[2]["id"], "PENDING")
    assert third["status"] == "REJECT" and third["state"]["type"] == "CANCELLED"


async def test_racing_runs_never_exceed_the_limit(client) -> None:
    dep = await deployment_with_limit(client, 2, "ENQUEUE")
    runs = [await new_run(client, dep) for _ in range(12)]
    answers = await asyncio.gather(*(propose(client, r["id"], "PENDING") for r in runs))
    assert sum(a["status"] == "ACCEPT" for a in answers) == 2
    pending = await client.post(
        "/flow_runs/count", json={"flow_runs": {"state": {"type": {"any_": ["PENDING"]}}}}
    )
    assert pending.json() == 2


@pytest.mark.parametrize("strategy", ["ENQUEUE"])
async def test_claimed_run_is_released_when_its_state_changes(client, strategy) -> None:
    dep = await deployment_with_limit(client, 1, strategy)
    a, b = await new_run(client, dep), await new_run(client, dep)
    claimed = {r["flow_run"]["id"] for r in await poll(client, "p")}
    assert claimed == {a["id"], b["id"]}
    await propose(client, a["id"], "PENDING")
    await propose(client, b["id"], "PENDING")  # held back: Scheduled again, unclaimed
    again = await poll(client, "p", scheduled_before="2999-01-01T00:00:00Z")
    assert [r["flow_run"]["id"] for r in again] == [b["id"]]
