"""Flow run endpoints: create (idempotent), read, filter, sort, paginate, count, aggregates, change, delete."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest


async def make_flow(client, name: str = "etl", **body) -> dict:
    response = await client.post("/flows/", json={"name": name, **body})
    assert response.status_code in (200, 201)
    return response.json()


async def make_run(client, flow_id: str, **body) -> dict:
    response = await client.post("/flow_runs/", json={"flow_id": flow_id, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def set_state(client, run_id: str, type_: str, **state) -> dict:
    response = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": type_, **state}}
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def iso(value: datetime) -> str:
    return value.isoformat()


async def test_create_defaults_to_pending_with_bookkeeping(client) -> None:
    flow = await make_flow(client, labels={"team": "data"})
    run = await make_run(client, flow["id"], parameters={"x": 1}, tags=["a"])
    assert run["flow_id"] == flow["id"]
    assert run["name"]  # a generated name
    assert run["parameters"] == {"x": 1}
    assert (run["state_type"], run["state_name"]) == ("PENDING", "Pending")
    assert run["state"]["type"] == "PENDING"
    assert run["state"]["id"] == run["state_id"]
    assert run["state"]["state_details"]["flow_run_id"] == run["id"]
    assert run["expected_start_time"] == run["state"]["timestamp"]
    assert run["run_count"] == 0 and run["start_time"] is None
    assert run["labels"] == {"team": "data", "prefect.flow.id": flow["id"]}
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert fetched["state"] == run["state"]
    assert fetched["name"] == run["name"]


async def test_create_with_a_scheduled_state(client) -> None:
    flow = await make_flow(client)
    at = datetime.now(timezone.utc) + timedelta(hours=1)
    run = await make_run(
        client,
        flow["id"],
        name="later",
        state={"type": "SCHEDULED", "state_details": {"scheduled_time": iso(at)}},
    )
    assert run["name"] == "later"
    assert run["state_type"] == "SCHEDULED"
    assert datetime.fromisoformat(run["next_scheduled_start_time"]) == at
    assert datetime.fromisoformat(run["expected_start_time"]) == at


async def test_idempotency_key_returns_the_existing_run(client) -> None:
    flow = await make_flow(client)
    other = await make_flow(client, "other")
    first = await make_run(client, flow["id"], idempotency_key="k1")
    again = await client.post("/flow_runs/", json={"flow_id": flow["id"], "idempotency_key": "k1"})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["state"]["id"] == first["state"]["id"]
    # The key is per flow, and runs without a key never collide.
    assert (await make_run(client, other["id"], idempotency_key="k1"))["id"] != first["id"]
    await make_run(client, flow["id"])
    await make_run(client, flow["id"])
    assert (await client.post("/flow_runs/count", json={})).json() == 4
    states = (await client.get("/flow_run_states/", params={"flow_run_id": first["id"]})).json()
    assert len(states) == 1


async def test_bad_bodies_are_rejected_and_nothing_is_written(client) -> None:
    flow = await make_flow(client)
    bad = [
        {},
        {"flow_id": "not-a-uuid"},
        {"flow_id": flow["id"], "bogus": 1},
        {"flow_id": flow["id"], "state": {"type": "NOPE"}},
        {"flow_id": flow["id"], "tags": "a"},
        {"flow_id": flow["id"], "empirical_policy": {"retry_type": "sideways"}},
    ]
    for body in bad:
        assert (await client.post("/flow_runs/", json=body)).status_code == 422, body
    missing = await client.post("/flow_runs/", json={"flow_id": str(uuid.uuid4())})
    assert missing.status_code == 404
    assert (await client.post("/flow_runs/count", json={})).json() == 0


async def test_missing_runs_are_404(client) -> None:
    missing = uuid.uuid4()
    assert (await client.get(f"/flow_runs/{missing}")).status_code == 404
    assert (await client.patch(f"/flow_runs/{missing}", json={"name": "x"})).status_code == 404
    assert (await client.patch(f"/flow_runs/{missing}/labels", json={"a": 1})).status_code == 404
    assert (await client.delete(f"/flow_runs/{missing}")).status_code == 404
    assert (await client.get(f"/flow_runs/{missing}/graph")).status_code == 404
    assert (await client.get(f"/flow_runs/{missing}/graph-v2")).status_code == 404
    assert (await client.get(f"/flow_runs/{missing}/logs/download")).status_code == 404
    assert (await client.post(f"/flow_runs/{missing}/resume", json={})).status_code == 404
    response = await client.post(
        f"/flow_runs/{missing}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    assert (await client.get("/flow_runs/not-a-uuid")).status_code == 422


async def _three_runs(client) -> tuple[dict, dict, list[dict]]:
    etl = await make_flow(client, "etl", tags=["nightly"])
    report = await make_flow(client, "report")
    now = datetime.now(timezone.utc)
    a = await make_run(
        client,
        etl["id"],
        name="alpha",
        tags=["x", "y"],
        flow_version="1",
        idempotency_key="ka",
        state={
            "type": "SCHEDULED",
            "state_details": {"scheduled_time": iso(now + timedelta(hours=2))},
        },
    )
    b = await make_run(client, etl["id"], name="bravo", tags=["x"], flow_version="2")
    c = await make_run(client, report["id"], name="charlie")
    await set_state(client, b["id"], "RUNNING")
    await set_state(client, c["id"], "RUNNING")
    await set_state(client, c["id"], "COMPLETED")
    return etl, report, [a, b, c]


async def names(client, body: dict, path: str = "/flow_runs/filter") -> list[str]:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return sorted(run["name"] for run in response.json())


async def test_filter_leaves(client) -> None:
    etl, report, (a, b, c) = await _three_runs(client)
    cases = [
        ({"id": {"any_": [a["id"], c["id"]]}}, ["alpha", "charlie"]),
        ({"id": {"not_any_": [a["id"]]}}, ["bravo", "charlie"]),
        ({"name": {"any_": ["bravo"]}}, ["bravo"]),
        ({"name": {"like_": "HAR"}}, ["charlie"]),
        ({"tags": {"all_": ["x", "y"]}}, ["alpha"]),
        ({"tags": {"any_": ["y", "nope"]}}, ["alpha"]),
        ({"tags": {"is_null_": True}}, ["charlie"]),
        ({"state": {"type": {"any_": ["RUNNING"]}}}, ["bravo"]),
        ({"state": {"type": {"not_any_": ["RUNNING"]}}}, ["alpha", "charlie"]),
        ({"state": {"name": {"any_": ["Completed", "Scheduled"]}}}, ["alpha", "charlie"]),
        ({"flow_version": {"any_": ["2"]}}, ["bravo"]),
        ({"start_time": {"is_null_": True}}, ["alpha"]),
        ({"end_time": {"is_null_": False}}, ["charlie"]),
        (
            {
                "expected_start_time": {
                    "after_": iso(datetime.now(timezone.utc) + timedelta(hours=1))
                }
            },
            ["alpha"],
        ),
        (
            {
                "next_scheduled_start_time": {
                    "before_": iso(datetime.now(timezone.utc) + timedelta(hours=3))
                }
            },
            ["alpha"],
        ),
        ({"idempotency_key": {"any_": ["ka"]}}, ["alpha"]),
        ({"deployment_id": {"is_null_": True}}, ["alpha", "bravo", "charlie"]),
        ({"parent_task_run_id": {"is_null_": True}}, ["alpha", "bravo", "charlie"]),
        (
            {"operator": "or_", "name": {"any_": ["alpha"]}, "tags": {"is_null_": True}},
            ["alpha", "charlie"],
        ),
    ]
    for flow_runs, expected in cases:
        assert await names(client, {"flow_runs": flow_runs}) == expected, flow_runs
    assert await names(client, {"flows": {"name": {"any_": ["report"]}}}) == ["charlie"]
    assert await names(client, {"flows": {"tags": {"all_": ["nightly"]}}}) == ["alpha", "bravo"]
    count = await client.post("/flow_runs/count", json={"flows": {"id": {"any_": [etl["id"]]}}})
    assert count.json() == 2


async def test_sorting_limit_offset_and_pagination(client) -> None:
    await _three_runs(client)

    async def order(sort: str) -> list[str]:
        response = await client.post("/flow_runs/filter", json={"sort": sort})
        assert response.status_code == 200
        return [run["name"] for run in response.json()]

    assert await order("NAME_ASC") == ["alpha", "bravo", "charlie"]
    assert await order("NAME_DESC") == ["charlie", "bravo", "alpha"]
    assert (await order("EXPECTED_START_TIME_DESC"))[0] == "alpha"
    assert (await order("EXPECTED_START_TIME_ASC"))[-1] == "alpha"
    assert (await order("START_TIME_ASC"))[-1] == "alpha"  # never started: nulls last
    assert (await order("END_TIME_DESC"))[0] == "charlie"
    assert sorted(await order("ID_DESC")) == ["alpha", "bravo", "charlie"]
    # The real client sends nulls for "server default".
    default = await client.post(
        "/flow_runs/filter", json={"sort": None, "limit": None, "offset": 0}
    )
    assert len(default.json()) == 3
    page = await client.post(
        "/flow_runs/filter", json={"sort": "NAME_ASC", "limit": 1, "offset": 1}
    )
    assert [run["name"] for run in page.json()] == ["bravo"]
    paginated = (
        await client.post("/flow_runs/paginate", json={"sort": "NAME_ASC", "limit": 2, "page": 2})
    ).json()
    assert (paginated["count"], paginated["pages"], paginated["page"], paginated["limit"]) == (
        3,
        2,
        2,
        2,
    )
    assert [run["name"] for run in paginated["results"]] == ["charlie"]
    assert (await client.post("/flow_runs/filter", json={"limit": 201})).status_code == 422
    assert (await client.post("/flow_runs/filter", json={"sort": "SIDEWAYS"})).status_code == 422
    assert (await client.post("/flow_runs/paginate", json={"page": 0})).status_code == 422


async def test_list_reads_carry_full_states_and_estimates(client) -> None:
    _, _, (a, b, c) = await _three_runs(client)
    runs = {run["name"]: run for run in (await client.post("/flow_runs/filter", json={})).json()}
    assert runs["bravo"]["state"]["type"] == "RUNNING"
    assert runs["bravo"]["state"]["state_details"]["flow_run_id"] == b["id"]
    assert runs["bravo"]["estimated_run_time"] > 0
    assert runs["charlie"]["state"]["name"] == "Completed"
    assert runs["charlie"]["total_run_time"] == runs["charlie"]["estimated_run_time"]
    assert runs["alpha"]["estimated_start_time_delta"] == 0  # scheduled in the future


async def test_related_filters_on_unknown_ids_match_nothing(client) -> None:
    await _three_runs(client)
    for path in (
        "/flow_runs/filter",
        "/flow_runs/count",
        "/flow_runs/paginate",
        "/flow_runs/lateness",
    ):
        nulls = await client.post(
            path, json={"deployments": None, "work_pools": None, "work_pool_queues": None}
        )
        assert nulls.status_code == 200, path
        for key in ("deployments", "work_pools", "work_pool_queues"):
            none = await client.post(path, json={key: {"id": {"any_": [str(uuid.uuid4())]}}})
            assert none.status_code == 200, (path, key)
            assert none.json() in ([], 0, None) or none.json().get("count") == 0, (path, key)
        bad = await client.post(path, json={"deployments": {"id": {"any_": ["not-a-uuid"]}}})
        assert bad.status_code == 422, path


async def test_history_counts_runs_per_interval_and_state(client) -> None:
    _, _, (a, b, c) = await _three_runs(client)
    now = datetime.now(timezone.utc)
    body = {
        "history_start": iso(now - timedelta(minutes=10)),
        "history_end": iso(now + timedelta(hours=3)),
        "history_interval_seconds": 3600,
    }
    response = await client.post("/flow_runs/history", json=body)
    assert response.status_code == 200, response.text
    intervals = response.json()
    assert len(intervals) == 4
    first = {(s["state_type"], s["state_name"]): s for s in intervals[0]["states"]}
    assert set(first) == {("RUNNING", "Running"), ("COMPLETED", "Completed")}
    assert first[("RUNNING", "Running")]["count_runs"] == 1
    assert first[("RUNNING", "Running")]["sum_estimated_run_time"] > 0
    scheduled = [s for i in intervals for s in i["states"] if s["state_type"] == "SCHEDULED"]
    assert [s["count_runs"] for s in scheduled] == [1]
    filtered = await client.post(
        "/flow_runs/history", json={**body, "flow_runs": {"name": {"any_": ["charlie"]}}}
    )
    assert sum(s["count_runs"] for i in filtered.json() for s in i["states"]) == 1
    too_fine = await client.post(
        "/flow_runs/history", json={**body, "history_interval_seconds": 0.5}
    )
    assert too_fine.status_code == 422


async def test_lateness_averages_matching_runs(client) -> None:
    flow = await make_flow(client)
    assert (await client.post("/flow_runs/lateness", json={})).json() is None
    past = datetime.now(timezone.utc) - timedelta(seconds=100)
    await make_run(
        client,
        flow["id"],
        name="late",
        state={"type": "SCHEDULED", "state_details": {"scheduled_time": iso(past)}},
    )
    on_time = await make_run(client, flow["id"], name="on-time")
    await set_state(client, on_time["id"], "RUNNING")
    late = (
        await client.post("/flow_runs/lateness", json={"flow_runs": {"name": {"any_": ["late"]}}})
    ).json()
    assert 99 < late < 200
    average = (await client.post("/flow_runs/lateness", json={})).json()
    assert late / 2 - 1 < average < late / 2 + 1


async def test_update_labels_and_delete(client) -> None:
    flow = await make_flow(client)
    run = await make_run(client, flow["id"], labels={"a": 1})
    patch = await client.patch(
        f"/flow_runs/{run['id']}",
        json={
            "name": "renamed",
            "tags": ["t"],
            "parameters": {"p": 2},
            "empirical_policy": {"retries": 3},
        },
    )
    assert patch.status_code == 204
    assert (await client.patch(f"/flow_runs/{run['id']}", json={"bogus": 1})).status_code == 422
    labels = await client.patch(f"/flow_runs/{run['id']}/labels", json={"b": "two", "a": 9})
    assert labels.status_code == 204
    fetched = (await client.get(f"/flow_runs/{run['id']}")).json()
    assert fetched["name"] == "renamed"
    assert fetched["tags"] == ["t"]
    assert fetched["parameters"] == {"p": 2}
    assert fetched["empirical_policy"]["retries"] == 3
    assert fetched["labels"] == {"a": 9, "b": "two", "prefect.flow.id": flow["id"]}
    assert (await client.delete(f"/flow_runs/{run['id']}")).status_code == 204
    assert (await client.get(f"/flow_runs/{run['id']}")).status_code == 404
    assert (await client.get("/flow_run_states/", params={"flow_run_id": run["id"]})).json() == []


async def test_job_variables_change_only_for_scheduled_deployed_runs(client) -> None:
    flow = await make_flow(client)
    run = await make_run(client, flow["id"])
    response = await client.patch(f"/flow_runs/{run['id']}", json={"job_variables": {"cpu": 2}})
    assert response.status_code == 400
    assert "PENDING" in response.json()["detail"]
    assert (await client.get(f"/flow_runs/{run['id']}")).json()["job_variables"] == {}


async def test_bulk_delete(client) -> None:
    await _three_runs(client)
    response = await client.post(
        "/flow_runs/bulk_delete", json={"flow_runs": {"name": {"any_": ["alpha", "bravo"]}}}
    )
    assert response.status_code == 200
    assert len(response.json()["deleted"]) == 2
    assert await names(client, {}) == ["charlie"]
    assert (await client.post("/flow_runs/bulk_delete", json={"limit": 51})).status_code == 422
    limited = await client.post("/flow_runs/bulk_delete", json={"limit": 1})
    assert len(limited.json()["deleted"]) == 1


async def test_bulk_set_state(client) -> None:
    _, _, (a, b, c) = await _three_runs(client)
    response = await client.post(
        "/flow_runs/bulk_set_state",
        json={
            "flow_runs": {"name": {"any_": ["bravo", "charlie"]}},
            "state": {"type": "CANCELLED"},
        },
    )
    assert response.status_code == 200, response.text
    results = {r["flow_run_id"]: r for r in response.json()["results"]}
    assert results[b["id"]]["status"] == "ACCEPT"
    assert results[b["id"]]["state"]["type"] == "CANCELLED"
    assert results[c["id"]]["status"] == "ABORT"  # already completed
    forced = await client.post(
        "/flow_runs/bulk_set_state",
        json={
            "flow_runs": {"id": {"any_": [c["id"]]}},
            "state": {"type": "CANCELLED"},
            "force": True,
        },
    )
    assert forced.json()["results"][0]["status"] == "ACCEPT"
    assert (await client.get(f"/flow_runs/{c['id']}")).json()["state_type"] == "CANCELLED"
    assert (await client.post("/flow_runs/bulk_set_state", json={})).status_code == 422


@pytest.mark.parametrize("prefix", ["", "a"])
async def test_inputs(client, prefix: str) -> None:
    flow = await make_flow(client)
    run = await make_run(client, flow["id"])
    url = f"/flow_runs/{run['id']}/input"
    created = await client.post(
        url, json={"key": f"{prefix}key-1", "value": '{"x": 1}', "sender": "me"}
    )
    assert created.status_code == 201
    assert (
        await client.post(url, json={"key": f"{prefix}key-1", "value": "again"})
    ).status_code == 409
    assert (await client.post(url, json={"key": "Bad Key", "value": "v"})).status_code == 422
    assert (await client.post(url, json={"key": "k"})).status_code == 422
    missing_run = await client.post(
        f"/flow_runs/{uuid.uuid4()}/input", json={"key": "k", "value": "v"}
    )
    assert missing_run.status_code == 404
    await client.post(url, json={"key": f"{prefix}key-2", "value": "two"})
    await client.post(url, json={"key": "other", "value": "three"})
    read = await client.get(f"{url}/{prefix}key-1")
    assert read.status_code == 200
    assert read.text == '{"x": 1}'
    assert (await client.get(f"{url}/nope")).status_code == 404
    found = (
        await client.post(f"{url}/filter", json={"prefix": f"{prefix}key", "limit": 10})
    ).json()
    assert [i["key"] for i in found] == [f"{prefix}key-1", f"{prefix}key-2"]
    assert found[0]["sender"] == "me" and found[0]["flow_run_id"] == run["id"]
    default_limit = (await client.post(f"{url}/filter", json={"prefix": f"{prefix}key"})).json()
    assert len(default_limit) == 1
    excluded = await client.post(
        f"{url}/filter",
        json={"prefix": f"{prefix}key", "limit": 10, "exclude_keys": [f"{prefix}key-1"]},
    )
    assert [i["key"] for i in excluded.json()] == [f"{prefix}key-2"]
    # A prefix is literal: "%" and "_" are not wildcards.
    assert (await client.post(f"{url}/filter", json={"prefix": "%", "limit": 10})).json() == []
    assert (await client.delete(f"{url}/{prefix}key-1")).status_code == 204
    assert (await client.delete(f"{url}/{prefix}key-1")).status_code == 404
    assert (await client.get(f"{url}/{prefix}key-1")).status_code == 404


async def test_logs_download_streams_csv(client) -> None:
    flow = await make_flow(client)
    run = await make_run(client, flow["id"])
    empty = await client.get(f"/flow_runs/{run['id']}/logs/download")
    assert empty.status_code == 200
    assert empty.headers["content-type"].startswith("text/csv")
    assert empty.text.strip() == "timestamp,level,flow_run_id,task_run_id,message"
    now = datetime.now(timezone.utc)
    logs = [
        {
            "name": "l",
            "level": 20,
            "message": f"line {i}, with comma",
            "timestamp": iso(now + timedelta(seconds=i)),
            "flow_run_id": run["id"],
        }
        for i in (2, 1)
    ]
    response = await client.post("/logs/", json=logs)
    if response.status_code == 404:
        pytest.skip("the logs API is not available yet")
    assert response.status_code == 201, response.text
    text = (await client.get(f"/flow_runs/{run['id']}/logs/download")).text
    lines = text.strip().splitlines()
    assert len(lines) == 3
    assert lines[1].endswith('"line 1, with comma"')
    assert lines[2].endswith('"line 2, with comma"')
