"""Artifacts over the REST API: create/read/update/delete, the latest artifact per key, filters, sorts, progress rules, 404s."""

from __future__ import annotations

import asyncio
import uuid

import pytest


async def make(client, **fields: object) -> dict:
    response = await client.post("/artifacts/", json=fields)
    assert response.status_code == 201, response.text
    return response.json()


async def ids(client, path: str, body: dict) -> list[str]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()]


async def test_create_and_read_every_field(client) -> None:
    run_id, task_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = await make(
        client,
        key="report-1",
        type="markdown",
        description="# Hi",
        data="**bold**",
        metadata_={"owner": "me"},
        flow_run_id=run_id,
        task_run_id=task_id,
    )
    got = (await client.get(f"/artifacts/{created['id']}")).json()
    assert got == created
    assert got["key"] == "report-1" and got["data"] == "**bold**" and got["description"] == "# Hi"
    assert got["metadata_"] == {"owner": "me"}
    assert got["flow_run_id"] == run_id and got["task_run_id"] == task_id


async def test_create_without_anything_works(client) -> None:
    created = await make(client)
    assert created["key"] is None and created["data"] is None


@pytest.mark.parametrize("key", ["Upper", "under_score", "sp ace", "dot.s", ""])
async def test_bad_keys_are_422_and_create_nothing(client, key: str) -> None:
    response = await client.post("/artifacts/", json={"key": key, "data": 1})
    assert response.status_code == 422, response.text
    assert (await client.post("/artifacts/count", json={})).json() == 0


@pytest.mark.parametrize("data", [-1, 100.5, "50", True, None])
async def test_progress_data_must_be_0_to_100(client, data: object) -> None:
    response = await client.post("/artifacts/", json={"type": "progress", "data": data})
    assert response.status_code == 422, response.text
    assert (await client.post("/artifacts/count", json={})).json() == 0


async def test_progress_updates_in_place_and_refuses_bad_values(client) -> None:
    created = await make(client, key="load", type="progress", data=0)
    assert (
        await client.patch(f"/artifacts/{created['id']}", json={"data": 42.5})
    ).status_code == 204
    bad = await client.patch(f"/artifacts/{created['id']}", json={"data": 101})
    assert bad.status_code == 422
    got = (await client.get(f"/artifacts/{created['id']}")).json()
    assert got["data"] == 42.5
    latest = (await client.post("/artifacts/latest/filter", json={})).json()
    assert [(a["latest_id"], a["data"]) for a in latest] == [(created["id"], 42.5)]


async def test_latest_by_key_tracks_the_newest(client) -> None:
    first = await make(client, key="daily", type="table", data="[1]")
    second = await make(client, key="daily", type="table", data="[2]")
    other = await make(client, key="weekly", type="markdown", data="w")
    await make(client, type="markdown", data="no key")

    latest = (await client.get("/artifacts/daily/latest")).json()
    assert latest["id"] == second["id"] and latest["data"] == "[2]"
    collections = (await client.post("/artifacts/latest/filter", json={"sort": "KEY_ASC"})).json()
    assert [(c["key"], c["latest_id"]) for c in collections] == [
        ("daily", second["id"]),
        ("weekly", other["id"]),
    ]
    assert collections[0]["data"] == "[2]" and collections[0]["type"] == "table"
    assert (await client.post("/artifacts/latest/count", json={})).json() == 2
    assert (await client.post("/artifacts/count", json={})).json() == 4

    # deleting the latest makes the previous one the latest; deleting the last drops the key
    assert (await client.delete(f"/artifacts/{second['id']}")).status_code == 204
    assert (await client.get("/artifacts/daily/latest")).json()["id"] == first["id"]
    assert (await client.delete(f"/artifacts/{first['id']}")).status_code == 204
    assert (await client.get("/artifacts/daily/latest")).status_code == 404
    assert (await client.post("/artifacts/latest/count", json={})).json() == 1


async def test_updating_an_older_artifact_leaves_the_latest_alone(client) -> None:
    first = await make(client, key="k", data="old")
    second = await make(client, key="k", data="new")
    await client.patch(f"/artifacts/{first['id']}", json={"data": "edited"})
    collection = (await client.post("/artifacts/latest/filter", json={})).json()[0]
    assert collection["latest_id"] == second["id"] and collection["data"] == "new"
    await client.patch(f"/artifacts/{second['id']}", json={"description": "d"})
    collection = (await client.post("/artifacts/latest/filter", json={})).json()[0]
    assert collection["description"] == "d" and collection["data"] == "new"


async def test_filters_and_sorts(client) -> None:
    run_a, run_b, task = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    a = await make(client, key="alpha", type="markdown", flow_run_id=str(run_a))
    b = await make(client, key="beta", type="table", flow_run_id=str(run_b), task_run_id=str(task))
    c = await make(client, type="link", flow_run_id=str(run_a))

    assert await ids(client, "/artifacts/filter", {"sort": "KEY_ASC"}) == [
        a["id"],
        b["id"],
        c["id"],
    ]
    assert await ids(client, "/artifacts/filter", {"sort": "CREATED_DESC"}) == [
        c["id"],
        b["id"],
        a["id"],
    ]
    assert await ids(
        client, "/artifacts/filter", {"sort": "CREATED_DESC", "limit": 1, "offset": 1}
    ) == [b["id"]]
    by = {"artifacts": {"flow_run_id": {"any_": [str(run_a)]}}, "sort": "CREATED_DESC"}
    assert await ids(client, "/artifacts/filter", by) == [c["id"], a["id"]]
    by = {"artifacts": {"task_run_id": {"any_": [str(task)]}}}
    assert await ids(client, "/artifacts/filter", by) == [b["id"]]
    by = {"artifacts": {"type": {"any_": ["table", "link"]}}, "sort": "CREATED_DESC"}
    assert await ids(client, "/artifacts/filter", by) == [c["id"], b["id"]]
    by = {"artifacts": {"type": {"not_any_": ["table", "link"]}}}
    assert await ids(client, "/artifacts/filter", by) == [a["id"]]
    by = {"artifacts": {"key": {"exists_": False}}}
    assert await ids(client, "/artifacts/filter", by) == [c["id"]]
    by = {"artifacts": {"key": {"like_": "lph"}}}
    assert await ids(client, "/artifacts/filter", by) == [a["id"]]
    by = {"artifacts": {"key": {"any_": ["beta"]}}}
    latest = (await client.post("/artifacts/latest/filter", json=by)).json()
    assert [x["latest_id"] for x in latest] == [b["id"]]
    by = {"artifacts": {"latest_id": {"any_": [a["id"]]}}}
    latest = (await client.post("/artifacts/latest/filter", json=by)).json()
    assert [x["key"] for x in latest] == ["alpha"]
    count = await client.post(
        "/artifacts/count", json={"artifacts": {"flow_run_id": {"any_": [str(run_a)]}}}
    )
    assert count.json() == 2
    assert (await client.post("/artifacts/filter", json={"sort": "BAD"})).status_code == 422


async def test_filter_by_the_runs_that_made_them(client) -> None:
    flow = (await client.post("/flows/", json={"name": "maker"})).json()
    run = (await client.post("/flow_runs/", json={"flow_id": flow["id"], "name": "r1"})).json()
    mine = await make(client, key="mine", flow_run_id=run["id"])
    await make(client, key="theirs", flow_run_id=str(uuid.uuid4()))
    body = {"flow_runs": {"name": {"any_": ["r1"]}}}
    assert await ids(client, "/artifacts/filter", body) == [mine["id"]]
    body = {"flows": {"name": {"any_": ["maker"]}}}
    assert await ids(client, "/artifacts/filter", body) == [mine["id"]]
    assert (await client.post("/artifacts/latest/count", json=body)).json() == 1


async def test_missing_artifacts_are_prefect_shaped_404s(client) -> None:
    missing = uuid.uuid4()
    for method, path, body in [
        ("GET", f"/artifacts/{missing}", None),
        ("GET", "/artifacts/nope/latest", None),
        ("PATCH", f"/artifacts/{missing}", {"data": 1}),
        ("DELETE", f"/artifacts/{missing}", None),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.json()["detail"]


async def test_concurrent_creates_leave_the_newest_as_latest(client) -> None:
    made = await asyncio.gather(*(make(client, key="busy", data=i) for i in range(12)))
    newest = max(made, key=lambda a: a["created"])
    latest = (await client.get("/artifacts/busy/latest")).json()
    assert latest["created"] == newest["created"]
    collections = (await client.post("/artifacts/latest/filter", json={})).json()
    assert len(collections) == 1 and collections[0]["latest_id"] == latest["id"]


async def test_filter_by_the_deployment_of_the_run_that_made_them(client) -> None:
    flow = (await client.post("/flows/", json={"name": "reporting"})).json()
    made = await client.post("/deployments/", json={"name": "nightly", "flow_id": flow["id"]})
    assert made.status_code == 201, made.text
    deployment = made.json()
    run = (await client.post(f"/deployments/{deployment['id']}/create_flow_run", json={})).json()
    other_run = (await client.post("/flow_runs/", json={"flow_id": flow["id"]})).json()
    mine = await make(client, key="report", type="markdown", data="# a", flow_run_id=run["id"])
    await make(client, key="report", type="markdown", data="# b", flow_run_id=other_run["id"])

    body = {"deployments": {"id": {"any_": [deployment["id"]]}}}
    assert await ids(client, "/artifacts/filter", body) == [mine["id"]]
    count = await client.post("/artifacts/count", json=body)
    assert count.json() == 1
    by_name = {"deployments": {"name": {"any_": ["nobody"]}}}
    assert await ids(client, "/artifacts/filter", by_name) == []
