"""Deployments over the API: upsert, reads, filters, updates, schedules, runs and backfills."""

from __future__ import annotations

import pytest
from work_support import ago, make_flow, make_pool, make_queue, poll

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}, "who": {"type": "string"}},
    "required": ["n"],
}


async def make_deployment(client, flow_id: str, name: str = "nightly", **fields) -> dict:
    response = await client.post("/deployments/", json={"name": name, "flow_id": flow_id, **fields})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_create_read_by_id_and_name_and_upsert(client) -> None:
    await make_pool(client, "p")
    flow_id = await make_flow(client, "etl")
    created = await client.post(
        "/deployments/",
        json={
            "name": "nightly",
            "flow_id": flow_id,
            "work_pool_name": "p",
            "parameters": {"n": 1},
            "tags": ["a"],
            "schedules": [{"schedule": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}}],
            "parameter_openapi_schema": SCHEMA,
            "job_variables": {"env": {"X": "1"}},
        },
    )
    assert created.status_code == 201, created.text
    dep = created.json()
    assert dep["work_pool_name"] == "p" and dep["work_queue_name"] == "default"
    assert dep["status"] == "NOT_READY" and dep["paused"] is False
    assert dep["schedules"][0]["schedule"]["cron"] == "0 9 * * *"
    by_name = (await client.get("/deployments/name/etl/nightly")).json()
    assert by_name["id"] == dep["id"]
    assert (await client.get(f"/deployments/{dep['id']}")).json()["job_variables"] == {
        "env": {"X": "1"}
    }
    again = await client.post(
        "/deployments/",
        json={"name": "nightly", "flow_id": flow_id, "parameters": {"n": 2}, "work_pool_name": "p"},
    )
    assert again.status_code == 200
    assert again.json()["id"] == dep["id"] and again.json()["parameters"] == {"n": 2}
    assert again.json()["schedules"] == []
    assert (await client.post("/deployments/count", json={})).json() == 1
    assert (await client.get("/deployments/name/etl/other")).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x"}, 422),
        ({"name": "a/b", "flow_id": "FLOW"}, 422),
        ({"name": "x", "flow_id": "FLOW", "schedules": [{"schedule": {"cron": "nope"}}]}, 422),
        ({"name": "x", "flow_id": "FLOW", "schedules": [{"schedule": {"interval": -1}}]}, 422),
        (
            {"name": "x", "flow_id": "FLOW", "schedules": [{"schedule": {"rrule": "FREQ=NEVER"}}]},
            422,
        ),
        (
            {
                "name": "x",
                "flow_id": "FLOW",
                "schedules": [{"schedule": {"cron": "* * * * *", "timezone": "Nope/Nope"}}],
            },
            422,
        ),
        ({"name": "x", "flow_id": "FLOW", "work_pool_name": "missing"}, 404),
        ({"name": "x", "flow_id": "00000000-0000-0000-0000-000000000000"}, 404),
        (
            {
                "name": "x",
                "flow_id": "FLOW",
                "parameter_openapi_schema": SCHEMA,
                "parameters": {"n": "many"},
            },
            422,
        ),
    ],
)
async def test_bad_deployments_are_refused_and_change_nothing(client, body, code) -> None:
    flow_id = await make_flow(client)
    body = {k: (flow_id if v == "FLOW" else v) for k, v in body.items()}
    response = await client.post("/deployments/", json=body)
    assert response.status_code == code, response.text
    assert (await client.post("/deployments/count", json={})).json() == 0
    assert (await client.post("/work_pools/count", json={})).json() == 0


async def test_filter_paginate_sort_and_bulk_delete(client) -> None:
    await make_pool(client, "p")
    etl = await make_flow(client, "etl")
    ml = await make_flow(client, "ml")
    await make_deployment(client, etl, "a", tags=["x"], work_pool_name="p")
    await make_deployment(client, etl, "b", paused=True)
    await make_deployment(client, ml, "c", tags=["x", "y"], concurrency_limit=2)

    async def names(**body) -> list[str]:
        response = await client.post("/deployments/filter", json=body)
        assert response.status_code == 200, response.text
        return [d["name"] for d in response.json()]

    assert await names() == ["a", "b", "c"]
    assert await names(sort="NAME_DESC") == ["c", "b", "a"]
    assert await names(deployments={"tags": {"all_": ["x"]}}) == ["a", "c"]
    assert await names(deployments={"paused": {"eq_": True}}) == ["b"]
    assert await names(deployments={"flow_or_deployment_name": {"like_": "ml"}}) == ["c"]
    assert await names(flows={"name": {"any_": ["etl"]}}) == ["a", "b"]
    assert await names(work_pools={"name": {"any_": ["p"]}}) == ["a"]
    assert await names(deployments={"concurrency_limit": {"ge_": 1}}) == ["c"]
    page = (await client.post("/deployments/paginate", json={"limit": 2, "page": 2})).json()
    assert (
        page["count"] == 3 and page["pages"] == 2 and [d["name"] for d in page["results"]] == ["c"]
    )
    assert (await client.post("/deployments/filter", json={"sort": "BOGUS"})).status_code == 422

    deleted = await client.post(
        "/deployments/bulk_delete", json={"deployments": {"tags": {"any_": ["x"]}}}
    )
    assert deleted.status_code == 200 and len(deleted.json()["deleted"]) == 2
    assert await names() == ["b"]


async def test_update_pause_resume_and_delete(client) -> None:
    flow_id = await make_flow(client)
    dep = await make_deployment(client, flow_id, parameter_openapi_schema=SCHEMA)
    url = f"/deployments/{dep['id']}"
    assert (await client.patch(url, json={"description": "d", "tags": ["t"]})).status_code == 204
    read = (await client.get(url)).json()
    assert read["description"] == "d" and read["tags"] == ["t"]
    bad = await client.patch(url, json={"parameters": {"n": "x"}})
    assert bad.status_code == 422 and "'n'" in bad.json()["detail"]
    assert (await client.get(url)).json()["parameters"] == {}
    assert (await client.patch(url, json={"work_pool_name": "nope"})).status_code == 404
    assert (await client.patch(url, json={"bogus": 1})).status_code == 422

    assert (await client.post(f"{url}/pause_deployment")).status_code == 200
    assert (await client.get(url)).json()["paused"] is True
    assert (await client.post(f"{url}/resume_deployment")).status_code == 200
    assert (await client.get(url)).json()["paused"] is False
    assert (await client.get(f"{url}/work_queue_check")).json() == []

    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404
    assert (await client.delete(url)).status_code == 404
    assert (await client.post(f"{url}/pause_deployment")).status_code == 404


async def test_schedules_crud(client) -> None:
    flow_id = await make_flow(client)
    dep = await make_deployment(client, flow_id)
    url = f"/deployments/{dep['id']}/schedules"
    made = await client.post(
        url,
        json=[
            {"schedule": {"interval": 3600}, "slug": "hourly", "parameters": {"n": 1}},
            {"schedule": {"rrule": "FREQ=DAILY"}, "active": False, "max_scheduled_runs": 5},
        ],
    )
    assert made.status_code == 201, made.text
    first, second = made.json()
    assert first["schedule"]["interval"] == 3600.0 and first["deployment_id"] == dep["id"]
    assert second["active"] is False and second["max_scheduled_runs"] == 5
    dup = await client.post(url, json=[{"schedule": {"interval": 60}, "slug": "hourly"}])
    assert dup.status_code == 409
    assert (await client.post(url, json=[{"schedule": {"cron": "bad"}}])).status_code == 422
    assert len((await client.get(url)).json()) == 2

    patch = await client.patch(
        f"{url}/{first['id']}", json={"active": False, "schedule": {"cron": "*/5 * * * *"}}
    )
    assert patch.status_code == 204
    listed = {s["id"]: s for s in (await client.get(url)).json()}
    assert listed[first["id"]]["active"] is False
    assert listed[first["id"]]["schedule"]["cron"] == "*/5 * * * *"
    assert (
        await client.patch(f"{url}/{first['id']}", json={"schedule": {"cron": "x"}})
    ).status_code == 422
    assert (await client.delete(f"{url}/{second['id']}")).status_code == 204
    assert (await client.delete(f"{url}/{second['id']}")).status_code == 404
    assert [s["id"] for s in (await client.get(url)).json()] == [first["id"]]

    # PATCH of the deployment replaces schedules, keeping those whose slug matches.
    body = {"schedules": [{"slug": "hourly", "active": True}, {"schedule": {"interval": 60}}]}
    assert (await client.patch(f"/deployments/{dep['id']}", json=body)).status_code == 204
    after = (await client.get(url)).json()
    assert len(after) == 2 and any(s["id"] == first["id"] and s["active"] for s in after)


async def test_create_flow_run_merges_parameters_tags_and_job_variables(client) -> None:
    await make_pool(client, "p")
    await make_queue(client, "p", "fast")
    flow_id = await make_flow(client)
    dep = await make_deployment(
        client,
        flow_id,
        work_pool_name="p",
        parameters={"n": 1, "who": "a"},
        tags=["dep"],
        job_variables={"env": {"A": "1"}, "image": "x"},
        parameter_openapi_schema=SCHEMA,
        version="v7",
    )
    url = f"/deployments/{dep['id']}/create_flow_run"
    response = await client.post(
        url,
        json={
            "parameters": {"who": "b"},
            "tags": ["run"],
            "job_variables": {"image": "y"},
            "work_queue_name": "fast",
        },
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["parameters"] == {"n": 1, "who": "b"}
    assert run["tags"] == ["dep", "run"]
    assert run["job_variables"] == {"env": {"A": "1"}, "image": "y"}
    assert run["deployment_id"] == dep["id"] and run["deployment_version"] == "v7"
    assert run["work_pool_name"] == "p" and run["work_queue_name"] == "fast"
    assert run["state"]["type"] == "SCHEDULED"
    assert run["labels"]["prefect.deployment.id"] == dep["id"]
    got = await poll(client, "p")
    assert [r["flow_run"]["id"] for r in got] == [run["id"]]

    listed = await client.post(
        "/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [dep["id"]]}}}
    )
    assert [r["id"] for r in listed.json()] == [run["id"]]


async def test_enforce_parameter_schema_names_the_field_and_creates_nothing(client) -> None:
    flow_id = await make_flow(client)
    dep = await make_deployment(client, flow_id, parameter_openapi_schema=SCHEMA)
    url = f"/deployments/{dep['id']}/create_flow_run"
    bad = await client.post(url, json={"parameters": {"n": "ten"}})
    assert bad.status_code == 422
    assert "'n'" in bad.json()["detail"] and "not of type 'integer'" in bad.json()["detail"]
    missing = await client.post(url, json={"parameters": {}})
    assert missing.status_code == 422 and "'n'" in missing.json()["detail"]
    assert (await client.post("/flow_runs/count", json={})).json() == 0
    loose = await client.post(
        url, json={"parameters": {"n": "ten"}, "enforce_parameter_schema": False}
    )
    assert loose.status_code == 201
    assert (
        await client.post(f"/deployments/{dep['id']}/create_flow_run", json={"bogus": 1})
    ).status_code == 422


async def test_idempotency_key_returns_the_same_run(client) -> None:
    flow_id = await make_flow(client)
    dep = await make_deployment(client, flow_id)
    url = f"/deployments/{dep['id']}/create_flow_run"
    first = await client.post(url, json={"idempotency_key": "k1"})
    second = await client.post(url, json={"idempotency_key": "k1", "parameters": {"x": 1}})
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert (await client.post("/flow_runs/count", json={})).json() == 1
    bulk = await client.post(f"{url}/bulk", json=[{}, {"idempotency_key": "k2"}])
    assert bulk.status_code == 200 and len(bulk.json()["results"]) == 2


async def test_schedule_creates_runs_once_per_time(client) -> None:
    await make_pool(client, "p")
    flow_id = await make_flow(client)
    dep = await make_deployment(
        client,
        flow_id,
        work_pool_name="p",
        parameters={"n": 1},
        schedules=[
            {"schedule": {"interval": 3600}, "parameters": {"n": 2}},
            {"schedule": {"cron": "0 0 * * *"}, "active": False},
        ],
    )
    start = ago(0).replace(microsecond=0)
    window = {
        "start_time": start.isoformat(),
        "end_time": ago(-3 * 3600 + 1).isoformat(),
        "min_runs": 100,  # Prefect's rule: stop once both minimums are met, else at the end
        "min_time": 0,
    }
    url = f"/deployments/{dep['id']}/schedule"
    assert (await client.post(url, json=window)).status_code == 200
    assert (await client.post(url, json=window)).status_code == 200  # again: no duplicates
    runs = (await client.post("/flow_runs/filter", json={"sort": "EXPECTED_START_TIME_ASC"})).json()
    assert len(runs) == 3
    assert all(r["auto_scheduled"] and r["parameters"] == {"n": 2} for r in runs)
    assert all(r["work_pool_name"] == "p" for r in runs)
    times = [r["expected_start_time"] for r in runs]
    assert times == sorted(set(times))

    scheduled = await client.post(
        "/deployments/get_scheduled_flow_runs",
        json={"deployment_ids": [dep["id"]], "scheduled_before": ago(-10 * 3600).isoformat()},
    )
    assert len(scheduled.json()) == 3
    assert (await client.get(f"/deployments/{dep['id']}")).json()["status"] == "READY"

    # Pausing removes the runs the scheduler made; a redeploy would too.
    await client.post(f"/deployments/{dep['id']}/pause_deployment")
    assert (await client.post("/flow_runs/count", json={})).json() == 0


async def test_flow_run_lists_filter_by_deployment_pool_and_queue(client) -> None:
    from work_support import scheduled_run

    await make_pool(client, "p")
    await make_pool(client, "q")
    await make_queue(client, "p", "fast")
    flow_id = await make_flow(client)
    dep = await make_deployment(client, flow_id, work_pool_name="p", tags=["d"])
    from_dep = (await client.post(f"/deployments/{dep['id']}/create_flow_run", json={})).json()
    in_fast = await scheduled_run(client, flow_id, "p", "fast")
    in_q = await scheduled_run(client, flow_id, "q")

    async def ids(path: str = "/flow_runs/filter", **body) -> set[str]:
        response = await client.post(path, json=body)
        assert response.status_code == 200, response.text
        return {r["id"] for r in response.json()}

    assert await ids(deployments={"tags": {"all_": ["d"]}}) == {from_dep["id"]}
    assert await ids(work_pools={"name": {"any_": ["p"]}}) == {from_dep["id"], in_fast["id"]}
    assert await ids(work_pool_queues={"name": {"any_": ["fast"]}}) == {in_fast["id"]}
    assert await ids(work_pools={"name": {"any_": ["q"]}}) == {in_q["id"]}
    count = await client.post("/flow_runs/count", json={"work_pools": {"name": {"any_": ["p"]}}})
    assert count.json() == 2
    tasks = await client.post(
        "/task_runs/count", json={"deployments": {"id": {"any_": [dep["id"]]}}}
    )
    assert tasks.json() == 0


async def test_job_variables_are_checked_against_the_pools_template(client) -> None:
    template = {
        "job_configuration": {"env": "{{ env }}", "workers": "{{ workers }}"},
        "variables": {
            "type": "object",
            "properties": {"env": {"type": "object"}, "workers": {"type": "integer"}},
            "required": ["workers"],
        },
    }
    await make_pool(client, "typed", base_job_template=template)
    flow_id = await make_flow(client)
    bad = await client.post(
        "/deployments/",
        json={
            "name": "d",
            "flow_id": flow_id,
            "work_pool_name": "typed",
            "job_variables": {"workers": "two"},
        },
    )
    assert bad.status_code == 422 and "'workers'" in bad.json()["detail"]
    assert (await client.post("/deployments/count", json={})).json() == 0
    dep = await make_deployment(
        client, flow_id, "d", work_pool_name="typed", job_variables={"env": {"A": "1"}}
    )
    url = f"/deployments/{dep['id']}/create_flow_run"
    refused = await client.post(url, json={"job_variables": {"env": "not-an-object"}})
    assert refused.status_code == 422 and "'env'" in refused.json()["detail"]
    assert (await client.post("/flow_runs/count", json={})).json() == 0
    made = await client.post(url, json={"job_variables": {"workers": 4}})
    assert made.status_code == 201 and made.json()["job_variables"] == {
        "env": {"A": "1"},
        "workers": 4,
    }
