"""Work pools, their queues and workers over the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from work_support import make_flow, make_pool, make_queue, poll, scheduled_run

TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}"},
    "variables": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "env": {"type": "object", "default": {}}},
    },
}


async def test_create_pool_makes_default_queue_and_reads_back(client) -> None:
    pool = await make_pool(client, "p1", base_job_template=TEMPLATE, concurrency_limit=3)
    assert pool["name"] == "p1" and pool["type"] == "process"
    assert pool["status"] == "NOT_READY" and pool["is_paused"] is False
    assert pool["base_job_template"] == TEMPLATE and pool["concurrency_limit"] == 3
    read = (await client.get("/work_pools/p1")).json()
    assert read["id"] == pool["id"] and read["default_queue_id"] == pool["default_queue_id"]
    queues = (await client.post("/work_pools/p1/queues/filter", json={})).json()
    assert [(q["name"], q["priority"], q["work_pool_name"]) for q in queues] == [
        ("default", 1, "p1")
    ]
    assert queues[0]["id"] == pool["default_queue_id"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "a/b"}, 422),
        ({"name": ""}, 422),
        ({"name": "x", "concurrency_limit": -1}, 422),
        ({"name": "x", "base_job_template": {"job_configuration": {}}}, 422),
        ({"name": "x", "bogus": 1}, 422),
        ({"name": "prefect-thing"}, 403),
    ],
)
async def test_bad_pools_are_refused_and_nothing_is_created(client, body, code) -> None:
    response = await client.post("/work_pools/", json=body)
    assert response.status_code == code, response.text
    assert (await client.post("/work_pools/count", json={})).json() == 0


async def test_duplicate_pool_is_409(client) -> None:
    await make_pool(client, "p1")
    again = await client.post("/work_pools/", json={"name": "p1"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert (await client.post("/work_pools/count", json={})).json() == 1


async def test_filter_count_update_pause_delete_pools(client) -> None:
    await make_pool(client, "a")
    await make_pool(client, "b", type="docker")
    flt = {"work_pools": {"type": {"any_": ["docker"]}}}
    assert [p["name"] for p in (await client.post("/work_pools/filter", json=flt)).json()] == ["b"]
    assert (await client.post("/work_pools/count", json=flt)).json() == 1
    listed = (await client.post("/work_pools/filter", json={"limit": 1, "offset": 1})).json()
    assert [p["name"] for p in listed] == ["b"]

    r = await client.patch("/work_pools/a", json={"is_paused": True, "concurrency_limit": 2})
    assert r.status_code == 204
    a = (await client.get("/work_pools/a")).json()
    assert a["is_paused"] is True and a["status"] == "PAUSED" and a["concurrency_limit"] == 2
    assert (await client.patch("/work_pools/a", json={"nope": 1})).status_code == 422
    assert (await client.patch("/work_pools/zzz", json={"is_paused": True})).status_code == 404

    assert (await client.delete("/work_pools/a")).status_code == 204
    assert (await client.get("/work_pools/a")).status_code == 404
    assert (await client.delete("/work_pools/a")).status_code == 404


async def test_queues_priorities_update_and_default_queue_protection(client) -> None:
    pool = await make_pool(client, "p")
    q2 = await make_queue(client, "p", "high", priority=1, concurrency_limit=5)
    q3 = await make_queue(client, "p", "low")
    queues = (await client.post("/work_pools/p/queues/filter", json={})).json()
    assert [(q["name"], q["priority"]) for q in queues] == [("high", 1), ("default", 2), ("low", 3)]
    assert q2["concurrency_limit"] == 5 and q3["status"] == "NOT_READY"
    dup = await client.post("/work_pools/p/queues", json={"name": "low"})
    assert dup.status_code == 409

    assert (
        await client.patch("/work_pools/p/queues/low", json={"is_paused": True})
    ).status_code == 204
    low = (await client.get("/work_pools/p/queues/low")).json()
    assert low["is_paused"] is True and low["status"] == "PAUSED"
    by_id = (await client.get(f"/work_queues/{low['id']}")).json()
    assert by_id["name"] == "low" and by_id["work_pool_name"] == "p"
    rename = await client.patch("/work_pools/p/queues/low", json={"name": "high"})
    assert rename.status_code == 409
    assert (await client.get("/work_pools/p/queues/low")).status_code == 200

    default = await client.delete("/work_pools/p/queues/default")
    assert default.status_code == 400
    assert (await client.delete(f"/work_queues/{pool['default_queue_id']}")).status_code == 400
    assert (await client.delete("/work_pools/p/queues/low")).status_code == 204
    assert (await client.get("/work_pools/p/queues/low")).status_code == 404
    assert (await client.get("/work_pools/nope/queues/default")).status_code == 404


async def test_work_queues_by_id_and_name_and_default_agent_pool(client) -> None:
    created = await client.post("/work_queues/", json={"name": "legacy", "concurrency_limit": 2})
    assert created.status_code == 201, created.text
    queue = created.json()
    assert queue["work_pool_name"] == "default-agent-pool"
    assert (await client.get("/work_queues/name/legacy")).json()["id"] == queue["id"]
    assert (await client.get("/work_queues/name/none")).status_code == 404
    flt = {"work_queues": {"name": {"startswith_": ["leg"]}}}
    assert [q["name"] for q in (await client.post("/work_queues/filter", json=flt)).json()] == [
        "legacy"
    ]
    assert (
        await client.patch(f"/work_queues/{queue['id']}", json={"priority": 7})
    ).status_code == 204
    assert (await client.get(f"/work_queues/{queue['id']}")).json()["priority"] == 7
    status = (await client.get(f"/work_queues/{queue['id']}/status")).json()
    assert status["healthy"] is False and status["late_runs_count"] == 0
    runs = await client.post(f"/work_queues/{queue['id']}/get_runs", json={})
    assert runs.status_code == 200 and runs.json() == []
    assert (await client.get(f"/work_queues/{queue['id']}")).json()["status"] == "READY"
    missing = await client.post("/work_queues/", json={"name": "x", "work_pool_name": "nope"})
    assert missing.status_code == 404
    assert (await client.delete(f"/work_queues/{queue['id']}")).status_code == 204
    assert (await client.get(f"/work_queues/{queue['id']}")).status_code == 404


async def test_worker_heartbeats_online_offline_filter_and_delete(client) -> None:
    await make_pool(client, "p")
    beat = await client.post(
        "/work_pools/p/workers/heartbeat", json={"name": "w1", "heartbeat_interval_seconds": 30}
    )
    assert beat.status_code == 204
    await client.post("/work_pools/p/workers/heartbeat", json={"name": "w1"})
    workers = (await client.post("/work_pools/p/workers/filter", json={})).json()
    assert [(w["name"], w["status"], w["heartbeat_interval_seconds"]) for w in workers] == [
        ("w1", "ONLINE", 30)
    ]
    assert (await client.get("/work_pools/p")).json()["status"] == "READY"
    offline = {"workers": {"status": {"any_": ["OFFLINE"]}}}
    assert (await client.post("/work_pools/p/workers/filter", json=offline)).json() == []
    assert (
        await client.post("/work_pools/nope/workers/heartbeat", json={"name": "w"})
    ).status_code == 404
    assert (await client.post("/work_pools/p/workers/heartbeat", json={})).status_code == 422
    assert (await client.delete("/work_pools/p/workers/w1")).status_code == 204
    assert (await client.delete("/work_pools/p/workers/w1")).status_code == 404
    assert (await client.get("/work_pools/p")).json()["status"] == "NOT_READY"


async def test_flow_run_created_with_pool_names_links_ids(client) -> None:
    pool = await make_pool(client, "p")
    flow_id = await make_flow(client)
    run = await scheduled_run(client, flow_id, "p")
    assert run["work_pool_name"] == "p" and run["work_queue_name"] == "default"
    assert run["work_queue_id"] == pool["default_queue_id"] and run["work_pool_id"] == pool["id"]
    assert run["state"]["type"] == "SCHEDULED"


async def test_claims_respect_priority_pause_and_limits(client) -> None:
    await make_pool(client, "p", concurrency_limit=3)
    await make_queue(client, "p", "urgent", priority=1)
    await make_queue(client, "p", "paused", is_paused=True)
    flow_id = await make_flow(client)
    low = [await scheduled_run(client, flow_id, "p", "default") for _ in range(2)]
    high = [await scheduled_run(client, flow_id, "p", "urgent") for _ in range(2)]
    await scheduled_run(client, flow_id, "p", "paused")

    first = await poll(client, "p", limit=3)
    ids = [r["flow_run"]["id"] for r in first]
    assert ids[:2] == sorted([h["id"] for h in high], key=ids.index)
    assert set(ids[:2]) == {h["id"] for h in high} and ids[2] in {r["id"] for r in low}
    assert all(r["work_pool_id"] for r in first)
    # The pool's limit (3) is now held by the three claims: nothing more until one ends.
    assert await poll(client, "p") == []

    await client.patch("/work_pools/p", json={"concurrency_limit": 10})
    rest = await poll(client, "p")
    assert [r["flow_run"]["id"] for r in rest] == [x["id"] for x in low if x["id"] not in ids]
    assert await poll(client, "p") == []  # nothing is handed out twice

    await client.patch("/work_pools/p", json={"is_paused": True})
    await scheduled_run(client, flow_id, "p", "default")
    assert await poll(client, "p") == []
    assert (
        await client.post("/work_pools/nope/get_scheduled_flow_runs", json={})
    ).status_code == 404


async def test_queue_limit_and_queue_names_and_time_window(client) -> None:
    from work_support import ago

    await make_pool(client, "p")
    await make_queue(client, "p", "one", concurrency_limit=1)
    flow_id = await make_flow(client)
    a = await scheduled_run(client, flow_id, "p", "one")
    await scheduled_run(client, flow_id, "p", "one")
    future = await scheduled_run(client, flow_id, "p", "default", when=ago(-3600))
    got = await poll(client, "p", work_queue_names=["one"])
    assert [r["flow_run"]["id"] for r in got] == [a["id"]]
    assert await poll(client, "p", work_queue_names=["one"]) == []
    assert await poll(client, "p", work_queue_names=["default"]) == []
    later = await poll(client, "p", scheduled_before=ago(-7200).isoformat())  # a preview
    assert [r["flow_run"]["id"] for r in later] == [future["id"]]
    status = (await client.post("/work_pools/p/concurrency_status", json={})).json()
    assert status["active_slots"] == 1 and status["count"] == 2  # the preview claimed nothing


async def test_concurrent_polls_never_hand_out_a_run_twice(client) -> None:
    import asyncio

    await make_pool(client, "race")
    flow_id = await make_flow(client)
    made = {(await scheduled_run(client, flow_id, "race"))["id"] for _ in range(40)}
    batches = await asyncio.gather(*(poll(client, "race", limit=3) for _ in range(20)))
    handed = [r["flow_run"]["id"] for batch in batches for r in batch]
    assert len(handed) == len(set(handed))
    assert set(handed) <= made and len(handed) == 40


async def test_two_servers_on_one_database_never_hand_out_a_run_twice(
    client, database_url, flowplane_home
) -> None:
    """Two app instances (two engines, as two server processes would have) poll one pool."""
    import asyncio

    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    await make_pool(client, "shared")
    flow_id = await make_flow(client)
    made = {(await scheduled_run(client, flow_id, "shared"))["id"] for _ in range(30)}
    settings = Settings(home=flowplane_home, database_url=database_url)
    other_app = create_app(settings, run_migrations=False, run_services=False)
    async with LifespanManager(other_app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://other/api") as other:
            polls = [poll(c, "shared", limit=2) for _ in range(12) for c in (client, other)]
            batches = await asyncio.gather(*polls)
    handed = [r["flow_run"]["id"] for batch in batches for r in batch]
    assert len(handed) == len(set(handed)) == 30 and set(handed) == made


async def test_a_preview_far_ahead_claims_nothing(client) -> None:
    from work_support import ago

    await make_pool(client, "p")
    flow_id = await make_flow(client)
    run = await scheduled_run(client, flow_id, "p")
    preview = await poll(client, "p", scheduled_before=ago(-3600).isoformat())
    assert [r["flow_run"]["id"] for r in preview] == [run["id"]]
    untimed = await client.post("/work_pools/p/get_scheduled_flow_runs", json={})
    assert [r["flow_run"]["id"] for r in untimed.json()] == [run["id"]]
    assert [r["flow_run"]["id"] for r in await poll(client, "p")] == [run["id"]]
    assert await poll(client, "p") == []  # the worker-shaped poll claimed it
