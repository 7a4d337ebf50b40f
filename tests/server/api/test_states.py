"""State endpoints: a run's state history in order, and single states by id."""

from __future__ import annotations

import uuid
from datetime import datetime


async def test_flow_run_states_in_order(client) -> None:
    flow = (await client.post("/flows/", json={"name": "etl"})).json()
    run = (await client.post("/flow_runs/", json={"flow_id": flow["id"]})).json()
    other = (await client.post("/flow_runs/", json={"flow_id": flow["id"]})).json()
    written = [run["state"]]
    for type_ in ("RUNNING", "COMPLETED"):
        response = await client.post(
            f"/flow_runs/{run['id']}/set_state",
            json={"state": {"type": type_, "message": type_.lower()}},
        )
        written.append(response.json()["state"])
    history = (await client.get("/flow_run_states/", params={"flow_run_id": run["id"]})).json()
    assert [s["id"] for s in history] == [s["id"] for s in written]
    assert [s["type"] for s in history] == ["PENDING", "RUNNING", "COMPLETED"]
    assert [s["message"] for s in history] == [None, "running", "completed"]
    stamps = [datetime.fromisoformat(s["timestamp"]) for s in history]
    assert stamps == sorted(stamps)
    assert all(s["state_details"]["flow_run_id"] == run["id"] for s in history)
    assert (
        len((await client.get("/flow_run_states/", params={"flow_run_id": other["id"]})).json())
        == 1
    )

    one = await client.get(f"/flow_run_states/{written[1]['id']}")
    assert one.status_code == 200
    assert one.json() == written[1]
    assert (await client.get(f"/flow_run_states/{uuid.uuid4()}")).status_code == 404
    assert (
        await client.get("/flow_run_states/", params={"flow_run_id": str(uuid.uuid4())})
    ).json() == []
    assert (await client.get("/flow_run_states/")).status_code == 422
    assert (await client.get("/flow_run_states/", params={"flow_run_id": "x"})).status_code == 422


async def test_task_run_states_in_order(client) -> None:
    run = (await client.post("/task_runs/", json={"task_key": "t", "dynamic_key": "0"})).json()
    written = [run["state"]]
    for type_ in ("RUNNING", "FAILED"):
        response = await client.post(
            f"/task_runs/{run['id']}/set_state", json={"state": {"type": type_}}
        )
        written.append(response.json()["state"])
    history = (await client.get("/task_run_states/", params={"task_run_id": run["id"]})).json()
    assert [s["id"] for s in history] == [s["id"] for s in written]
    assert [s["type"] for s in history] == ["PENDING", "RUNNING", "FAILED"]
    assert all(s["state_details"]["task_run_id"] == run["id"] for s in history)
    one = await client.get(f"/task_run_states/{written[2]['id']}")
    assert one.json()["type"] == "FAILED"
    assert (await client.get(f"/task_run_states/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/task_run_states/")).status_code == 422
    # A flow run state id is not a task run state id.
    flow = (await client.post("/flows/", json={"name": "etl"})).json()
    flow_run = (await client.post("/flow_runs/", json={"flow_id": flow["id"]})).json()
    assert (await client.get(f"/task_run_states/{flow_run['state']['id']}")).status_code == 404
