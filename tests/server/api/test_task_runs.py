"""Task run endpoints: create (one per flow run, task key and dynamic key), read, filter, sort, paginate, change."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone


async def make_flow_run(client, flow_name: str = "etl", **body) -> dict:
    flow = (await client.post("/flows/", json={"name": flow_name})).json()
    response = await client.post("/flow_runs/", json={"flow_id": flow["id"], **body})
    assert response.status_code == 201, response.text
    return response.json()


async def make_task_run(
    client, flow_run_id: str | None, key: str = "t", dynamic_key: str = "0", **body
) -> dict:
    response = await client.post(
        "/task_runs/",
        json={"flow_run_id": flow_run_id, "task_key": key, "dynamic_key": dynamic_key, **body},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def set_state(client, run_id: str, type_: str, **state) -> dict:
    response = await client.post(
        f"/task_runs/{run_id}/set_state", json={"state": {"type": type_, **state}}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_create_defaults_to_pending(client) -> None:
    flow_run = await make_flow_run(client, labels={"env": "prod"})
    inputs = {
        "x": [{"input_type": "task_run", "id": str(uuid.uuid4())}],
        "y": [{"input_type": "parameter", "name": "y"}],
        "z": [{"input_type": "constant", "type": "int"}],
    }
    run = await make_task_run(
        client,
        flow_run["id"],
        name="add-0",
        tags=["a"],
        task_inputs=inputs,
        empirical_policy={"retries": 2, "retry_delay": [1, 2]},
    )
    assert (run["name"], run["task_key"], run["dynamic_key"]) == ("add-0", "t", "0")
    assert (run["state_type"], run["state"]["type"]) == ("PENDING", "PENDING")
    assert run["state"]["state_details"]["task_run_id"] == run["id"]
    assert run["state"]["state_details"]["flow_run_id"] == flow_run["id"]
    assert run["task_inputs"] == inputs
    assert run["empirical_policy"]["retry_delay"] == [1, 2]
    assert run["labels"]["env"] == "prod"
    assert run["labels"]["prefect.flow-run.id"] == flow_run["id"]
    fetched = (await client.get(f"/task_runs/{run['id']}")).json()
    assert fetched["state"] == run["state"]
    assert fetched["task_inputs"] == inputs


async def test_create_is_idempotent_per_flow_run_task_key_and_dynamic_key(client) -> None:
    flow_run = await make_flow_run(client)
    given = str(uuid.uuid4())
    first = await make_task_run(client, flow_run["id"], id=given)
    assert first["id"] == given
    again = await client.post(
        "/task_runs/", json={"flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "0"}
    )
    assert (again.status_code, again.json()["id"]) == (200, given)
    same_id = await client.post(
        "/task_runs/",
        json={"id": given, "flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "1"},
    )
    assert (same_id.status_code, same_id.json()["id"]) == (200, given)
    await make_task_run(client, flow_run["id"], dynamic_key="1")
    # Outside a flow run, the same key pair is also one run.
    loose = await make_task_run(client, None, key="bg", dynamic_key="x")
    loose_again = await client.post("/task_runs/", json={"task_key": "bg", "dynamic_key": "x"})
    assert (loose_again.status_code, loose_again.json()["id"]) == (200, loose["id"])
    assert (await client.post("/task_runs/count", json={})).json() == 3
    states = (await client.get("/task_run_states/", params={"task_run_id": given})).json()
    assert len(states) == 1


async def test_bad_bodies_are_rejected_and_nothing_is_written(client) -> None:
    flow_run = await make_flow_run(client)
    bad = [
        {},
        {"task_key": "t"},
        {"flow_run_id": flow_run["id"], "task_key": "t", "dynamic_key": "0", "bogus": 1},
        {
            "flow_run_id": flow_run["id"],
            "task_key": "t",
            "dynamic_key": "0",
            "state": {"type": "NOPE"},
        },
        {"task_key": "t", "dynamic_key": "0", "task_inputs": {"x": [{"input_type": "what"}]}},
    ]
    for body in bad:
        assert (await client.post("/task_runs/", json=body)).status_code == 422, body
    missing = await client.post(
        "/task_runs/", json={"flow_run_id": str(uuid.uuid4()), "task_key": "t", "dynamic_key": "0"}
    )
    assert missing.status_code == 404
    assert (await client.post("/task_runs/count", json={})).json() == 0


async def test_missing_task_runs_are_404(client) -> None:
    missing = uuid.uuid4()
    assert (await client.get(f"/task_runs/{missing}")).status_code == 404
    assert (await client.patch(f"/task_runs/{missing}", json={"name": "x"})).status_code == 404
    assert (await client.delete(f"/task_runs/{missing}")).status_code == 404
    response = await client.post(
        f"/task_runs/{missing}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.status_code == 404


async def _runs(client) -> tuple[dict, dict, dict, dict, dict]:
    etl = await make_flow_run(client, "etl", name="etl-run", tags=["nightly"])
    report = await make_flow_run(client, "report", name="report-run")
    await client.post(f"/flow_runs/{etl['id']}/set_state", json={"state": {"type": "RUNNING"}})
    await client.post(f"/flow_runs/{report['id']}/set_state", json={"state": {"type": "RUNNING"}})
    a = await make_task_run(client, etl["id"], key="a", name="alpha", tags=["x", "y"])
    b = await make_task_run(client, etl["id"], key="b", name="bravo", tags=["x"])
    c = await make_task_run(client, report["id"], key="c", name="charlie")
    await set_state(client, b["id"], "RUNNING")
    await set_state(client, c["id"], "RUNNING")
    await set_state(client, c["id"], "COMPLETED")
    return etl, report, a, b, c


async def names(client, body: dict) -> list[str]:
    response = await client.post("/task_runs/filter", json=body)
    assert response.status_code == 200, response.text
    return sorted(run["name"] for run in response.json())


async def test_filters(client) -> None:
    etl, report, a, b, c = await _runs(client)
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    cases = [
        ({"id": {"any_": [a["id"], c["id"]]}}, ["alpha", "charlie"]),
        ({"name": {"any_": ["bravo"]}}, ["bravo"]),
        ({"name": {"like_": "RAV"}}, ["bravo"]),
        ({"tags": {"all_": ["x", "y"]}}, ["alpha"]),
        ({"tags": {"is_null_": True}}, ["charlie"]),
        ({"state": {"type": {"any_": ["RUNNING", "COMPLETED"]}}}, ["bravo", "charlie"]),
        ({"state": {"name": {"any_": ["Pending"]}}}, ["alpha"]),
        ({"start_time": {"is_null_": False}}, ["bravo", "charlie"]),
        ({"end_time": {"is_null_": False}}, ["charlie"]),
        ({"expected_start_time": {"before_": later}}, ["alpha", "bravo", "charlie"]),
        ({"expected_start_time": {"after_": later}}, []),
        ({"flow_run_id": {"any_": [report["id"]]}}, ["charlie"]),
        ({"subflow_runs": {"exists_": False}}, ["alpha", "bravo", "charlie"]),
    ]
    for task_runs, expected in cases:
        assert await names(client, {"task_runs": task_runs}) == expected, task_runs
    assert await names(client, {"flow_runs": {"name": {"any_": ["etl-run"]}}}) == ["alpha", "bravo"]
    assert await names(client, {"flows": {"name": {"any_": ["report"]}}}) == ["charlie"]
    count = await client.post(
        "/task_runs/count", json={"flow_runs": {"tags": {"all_": ["nightly"]}}}
    )
    assert count.json() == 2
    unknown = await client.post(
        "/task_runs/filter", json={"deployments": {"id": {"any_": [str(uuid.uuid4())]}}}
    )
    assert unknown.status_code == 200 and unknown.json() == []
    assert (await client.post("/task_runs/filter", json={"deployments": None})).status_code == 200


async def test_runs_outside_flow_runs_need_an_explicit_filter(client) -> None:
    await make_task_run(client, None, key="bg", name="loose")
    flow_run = await make_flow_run(client)
    await make_task_run(client, flow_run["id"], name="inside")
    assert await names(client, {}) == ["inside", "loose"]
    assert await names(client, {"task_runs": {"flow_run_id": {"is_null_": True}}}) == ["loose"]
    assert await names(client, {"task_runs": {"flow_run_id": {}}}) == ["inside"]


async def test_sort_and_paginate(client) -> None:
    await _runs(client)
    ordered = await client.post("/task_runs/filter", json={"sort": "NAME_DESC"})
    assert [r["name"] for r in ordered.json()] == ["charlie", "bravo", "alpha"]
    first = await client.post("/task_runs/filter", json={"sort": "END_TIME_DESC", "limit": 1})
    assert [r["name"] for r in first.json()] == ["charlie"]
    default = await client.post("/task_runs/filter", json={"sort": None, "limit": None})
    assert len(default.json()) == 3
    page = (
        await client.post("/task_runs/paginate", json={"sort": "NAME_ASC", "limit": 2, "page": 2})
    ).json()
    assert (page["count"], page["pages"], page["page"]) == (3, 2, 2)
    assert [r["name"] for r in page["results"]] == ["charlie"]
    assert (await client.post("/task_runs/filter", json={"limit": 500})).status_code == 422
    assert (
        await client.post("/task_runs/filter", json={"sort": "START_TIME_ASC"})
    ).status_code == 422


async def test_history(client) -> None:
    await _runs(client)
    now = datetime.now(timezone.utc)
    response = await client.post(
        "/task_runs/history",
        json={
            "history_start": (now - timedelta(minutes=5)).isoformat(),
            "history_end": (now + timedelta(minutes=5)).isoformat(),
            "history_interval_seconds": 300,
        },
    )
    assert response.status_code == 200, response.text
    intervals = response.json()
    assert len(intervals) == 2
    counts = {s["state_type"]: s["count_runs"] for s in intervals[0]["states"]}
    assert counts == {"PENDING": 1, "RUNNING": 1, "COMPLETED": 1}
    assert intervals[1]["states"] == []


async def test_update_and_delete(client) -> None:
    flow_run = await make_flow_run(client)
    run = await make_task_run(client, flow_run["id"])
    assert (
        await client.patch(f"/task_runs/{run['id']}", json={"name": "renamed"})
    ).status_code == 204
    assert (await client.patch(f"/task_runs/{run['id']}", json={"tags": []})).status_code == 422
    assert (await client.get(f"/task_runs/{run['id']}")).json()["name"] == "renamed"
    assert (await client.delete(f"/task_runs/{run['id']}")).status_code == 204
    assert (await client.get(f"/task_runs/{run['id']}")).status_code == 404
    assert (await client.get("/task_run_states/", params={"task_run_id": run["id"]})).json() == []


async def test_deleting_a_flow_run_deletes_its_task_runs(client) -> None:
    flow_run = await make_flow_run(client)
    run = await make_task_run(client, flow_run["id"])
    assert (await client.delete(f"/flow_runs/{flow_run['id']}")).status_code == 204
    assert (await client.get(f"/task_runs/{run['id']}")).status_code == 404
