"""Flow endpoints: create (upsert by name), read, filter, paginate, count, update, delete."""

from __future__ import annotations

import uuid


async def test_create_is_an_upsert_by_name(client) -> None:
    first = await client.post("/flows/", json={"name": "etl", "tags": ["nightly"]})
    assert first.status_code == 201
    again = await client.post("/flows/", json={"name": "etl"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["tags"] == ["nightly"]


async def test_create_rejects_bad_bodies_and_writes_nothing(client) -> None:
    assert (await client.post("/flows/", json={"name": "x", "bogus": 1})).status_code == 422
    assert (await client.post("/flows/", json={"tags": []})).status_code == 422
    assert (await client.post("/flows/", json={"name": ""})).status_code == 422
    assert (await client.post("/flows/count", json={})).json() == 0


async def test_read_by_id_and_name_and_404s(client) -> None:
    flow = (await client.post("/flows/", json={"name": "etl"})).json()
    assert (await client.get(f"/flows/{flow['id']}")).json()["name"] == "etl"
    assert (await client.get("/flows/name/etl")).json()["id"] == flow["id"]
    missing = await client.get(f"/flows/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert "not found" in missing.json()["detail"]
    assert (await client.get("/flows/name/nope")).status_code == 404
    assert (await client.get("/flows/not-a-uuid")).status_code == 422


async def test_filter_sort_paginate_count(client) -> None:
    for name, tags in [("b", ["x"]), ("a", ["x", "y"]), ("c", [])]:
        await client.post("/flows/", json={"name": name, "tags": tags})
    names = [f["name"] for f in (await client.post("/flows/filter", json={})).json()]
    assert names == ["a", "b", "c"]
    desc = (await client.post("/flows/filter", json={"sort": "NAME_DESC"})).json()
    assert [f["name"] for f in desc] == ["c", "b", "a"]
    tagged = (
        await client.post("/flows/filter", json={"flows": {"tags": {"all_": ["x", "y"]}}})
    ).json()
    assert [f["name"] for f in tagged] == ["a"]
    untagged = (
        await client.post("/flows/filter", json={"flows": {"tags": {"is_null_": True}}})
    ).json()
    assert [f["name"] for f in untagged] == ["c"]
    like = (await client.post("/flows/filter", json={"flows": {"name": {"like_": "B"}}})).json()
    assert [f["name"] for f in like] == ["b"]
    page = (await client.post("/flows/paginate", json={"limit": 2, "page": 2})).json()
    assert (page["count"], page["pages"], page["page"]) == (3, 2, 2)
    assert [f["name"] for f in page["results"]] == ["c"]
    assert (await client.post("/flows/filter", json={"limit": 1, "offset": 1})).json()[0][
        "name"
    ] == "b"
    assert (
        await client.post("/flows/count", json={"flows": {"tags": {"all_": ["x"]}}})
    ).json() == 2
    assert (await client.post("/flows/filter", json={"sort": "SIDEWAYS"})).status_code == 422
    assert (await client.post("/flows/filter", json={"limit": 1000})).status_code == 422


async def test_update_and_delete(client) -> None:
    flow = (await client.post("/flows/", json={"name": "etl"})).json()
    assert (await client.patch(f"/flows/{flow['id']}", json={"tags": ["new"]})).status_code == 204
    assert (await client.get(f"/flows/{flow['id']}")).json()["tags"] == ["new"]
    assert (await client.patch(f"/flows/{uuid.uuid4()}", json={"tags": []})).status_code == 404
    assert (await client.delete(f"/flows/{flow['id']}")).status_code == 204
    assert (await client.get(f"/flows/{flow['id']}")).status_code == 404
    assert (await client.delete(f"/flows/{flow['id']}")).status_code == 404


async def test_bulk_delete(client) -> None:
    for name in ["a", "b", "c"]:
        await client.post("/flows/", json={"name": name})
    result = await client.post("/flows/bulk_delete", json={"flows": {"name": {"any_": ["a", "b"]}}})
    assert result.status_code == 200
    assert len(result.json()["deleted"]) == 2
    assert [f["name"] for f in (await client.post("/flows/filter", json={})).json()] == ["c"]


async def test_null_paging_fields_mean_defaults(client) -> None:
    """The Prefect client sends ``"limit": null, "sort": null`` when the caller set none."""
    for name in ["b", "a"]:
        await client.post("/flows/", json={"name": name})
    body = {
        "flows": None,
        "flow_runs": None,
        "task_runs": None,
        "sort": None,
        "limit": None,
        "offset": 0,
    }
    response = await client.post("/flows/filter", json=body)
    assert response.status_code == 200
    assert [f["name"] for f in response.json()] == ["a", "b"]
    page = await client.post("/flows/paginate", json={"limit": None, "page": None})
    assert page.json()["limit"] == 200
