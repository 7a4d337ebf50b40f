"""Variables over the REST API: JSON values, name rules, 409 on a taken name, filters, sorts, paging, 404s."""

from __future__ import annotations

import uuid

import pytest


async def make(client, name: str, value: object = "v", tags: list[str] | None = None) -> dict:
    response = await client.post(
        "/variables/", json={"name": name, "value": value, "tags": tags or []}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(
    "value", ["text", 42, 1.5, True, None, {"a": [1, {"b": None}]}, [1, "two", 3.0], ""]
)
async def test_any_json_value_round_trips(client, value: object) -> None:
    created = await make(client, "my_var", value)
    assert created["value"] == value and created["name"] == "my_var"
    by_name = (await client.get("/variables/name/my_var")).json()
    by_id = (await client.get(f"/variables/{created['id']}")).json()
    assert by_name == by_id
    assert by_name["value"] == value and by_name["id"] == created["id"]


async def test_taken_name_is_409_and_changes_nothing(client) -> None:
    await make(client, "db-url", "one", ["a"])
    response = await client.post("/variables/", json={"name": "db-url", "value": "two"})
    assert response.status_code == 409
    assert response.json()["detail"] == "A variable with the name 'db-url' already exists."
    assert (await client.get("/variables/name/db-url")).json()["value"] == "one"


@pytest.mark.parametrize("name", ["Upper", "has space", "dots.no", "", "x" * 256, "slash/no"])
async def test_bad_names_are_422_and_create_nothing(client, name: str) -> None:
    response = await client.post("/variables/", json={"name": name, "value": 1})
    assert response.status_code == 422, response.text
    assert (await client.post("/variables/count", json={})).json() == 0


async def test_bad_values_are_422(client) -> None:
    too_long = "x" * 5001
    response = await client.post("/variables/", json={"name": "big", "value": too_long})
    assert response.status_code == 422
    assert "5000" in response.text
    missing = await client.post("/variables/", json={"name": "novalue"})
    assert missing.status_code == 422
    # the limit counts characters of the JSON text, not escaped bytes
    accented = await client.post("/variables/", json={"name": "accented", "value": "é" * 2500})
    assert accented.status_code == 201, accented.text


async def test_update_by_name_and_id(client) -> None:
    created = await make(client, "cfg", {"x": 1}, ["t1"])
    response = await client.patch("/variables/name/cfg", json={"value": {"x": 2}})
    assert response.status_code == 204
    got = (await client.get("/variables/name/cfg")).json()
    assert got["value"] == {"x": 2} and got["tags"] == ["t1"]
    assert got["updated"] >= created["updated"]
    response = await client.patch(
        f"/variables/{created['id']}", json={"tags": ["t2"], "name": "cfg2"}
    )
    assert response.status_code == 204
    got = (await client.get(f"/variables/{created['id']}")).json()
    assert got["name"] == "cfg2" and got["tags"] == ["t2"] and got["value"] == {"x": 2}
    # value may be set to null explicitly
    assert (await client.patch("/variables/name/cfg2", json={"value": None})).status_code == 204
    assert (await client.get("/variables/name/cfg2")).json()["value"] is None


async def test_rename_to_a_taken_name_is_409(client) -> None:
    await make(client, "a")
    await make(client, "b")
    response = await client.patch("/variables/name/a", json={"name": "b"})
    assert response.status_code == 409
    assert (await client.get("/variables/name/a")).status_code == 200


async def test_missing_variables_are_prefect_shaped_404s(client) -> None:
    missing = uuid.uuid4()
    for method, path, body in [
        ("GET", "/variables/name/nope", None),
        ("GET", f"/variables/{missing}", None),
        ("PATCH", "/variables/name/nope", {"value": 1}),
        ("PATCH", f"/variables/{missing}", {"value": 1}),
        ("DELETE", "/variables/name/nope", None),
        ("DELETE", f"/variables/{missing}", None),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert "not found" in response.json()["detail"]


async def test_delete_by_name_and_id(client) -> None:
    a = await make(client, "a")
    await make(client, "b")
    assert (await client.delete(f"/variables/{a['id']}")).status_code == 204
    assert (await client.delete("/variables/name/b")).status_code == 204
    assert (await client.post("/variables/count", json={})).json() == 0


async def test_filter_sort_page_and_count(client) -> None:
    await make(client, "alpha", 1, ["prod", "db"])
    await make(client, "beta", 2, ["prod"])
    await make(client, "gamma_alpha", 3, [])

    async def names(body: dict) -> list[str]:
        response = await client.post("/variables/filter", json=body)
        assert response.status_code == 200, response.text
        return [v["name"] for v in response.json()]

    assert await names({}) == ["alpha", "beta", "gamma_alpha"]
    assert await names({"sort": "NAME_DESC"}) == ["gamma_alpha", "beta", "alpha"]
    assert await names({"sort": "CREATED_DESC"}) == ["gamma_alpha", "beta", "alpha"]
    assert await names({"limit": 1, "offset": 1}) == ["beta"]
    assert await names({"variables": {"name": {"like_": "alph"}}}) == ["alpha", "gamma_alpha"]
    assert await names({"variables": {"name": {"any_": ["beta", "zzz"]}}}) == ["beta"]
    assert await names({"variables": {"tags": {"all_": ["prod", "db"]}}}) == ["alpha"]
    assert await names({"variables": {"tags": {"is_null_": True}}}) == ["gamma_alpha"]
    count = await client.post("/variables/count", json={"variables": {"tags": {"all_": ["prod"]}}})
    assert count.json() == 2
    bad = await client.post("/variables/filter", json={"sort": "NOPE"})
    assert bad.status_code == 422
