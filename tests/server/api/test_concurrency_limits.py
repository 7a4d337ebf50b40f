"""Tag concurrency limits (v1): views of the global limits named ``tag:<tag>``, shared with the v2 engine path."""

from __future__ import annotations

import uuid

import pytest

V1 = "/concurrency_limits"
V2 = "/v2/concurrency_limits"


async def make(client, tag: str = "db", limit: int = 1) -> dict:
    response = await client.post(f"{V1}/", json={"tag": tag, "concurrency_limit": limit})
    assert response.status_code in (200, 201), response.text
    return response.json()


async def increment(client, *tags: str, task_run_id: uuid.UUID | None = None):
    body = {"names": list(tags), "task_run_id": str(task_run_id or uuid.uuid4())}
    return await client.post(f"{V1}/increment", json=body)


async def test_create_is_an_upsert_by_tag_backed_by_a_global_limit(client) -> None:
    first = await client.post(f"{V1}/", json={"tag": "db", "concurrency_limit": 2})
    assert first.status_code == 201
    body = first.json()
    assert (body["tag"], body["concurrency_limit"], body["active_slots"]) == ("db", 2, [])
    assert body["created"] and body["updated"]
    again = await client.post(f"{V1}/", json={"tag": "db", "concurrency_limit": 5})
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["concurrency_limit"]) == (body["id"], 5)
    v2 = (await client.get(f"{V2}/tag:db")).json()
    assert (v2["id"], v2["limit"]) == (body["id"], 5)


@pytest.mark.parametrize(
    "body",
    [
        {"tag": "db"},
        {"concurrency_limit": 1},
        {"tag": "db", "concurrency_limit": -1},
        {"tag": "a/b", "concurrency_limit": 1},
        {"tag": "db", "concurrency_limit": 1, "x": 1},
    ],
)
async def test_create_rejects_bad_bodies_and_writes_nothing(client, body: dict) -> None:
    assert (await client.post(f"{V1}/", json=body)).status_code == 422
    assert (await client.post(f"{V1}/filter", json={})).json() == []


async def test_read_by_id_and_tag_and_404s(client) -> None:
    created = await make(client, "db", 1)
    assert (await client.get(f"{V1}/{created['id']}")).json()["tag"] == "db"
    assert (await client.get(f"{V1}/tag/db")).json()["id"] == created["id"]
    assert (await client.get(f"{V1}/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"{V1}/tag/nope")).status_code == 404
    assert (await client.get(f"{V1}/not-a-uuid")).status_code == 422
    # A global limit that is not a tag limit is not a v1 limit.
    other = (await client.post(f"{V2}/", json={"name": "db", "limit": 1})).json()
    assert (await client.get(f"{V1}/{other['id']}")).status_code == 404
    assert (await client.delete(f"{V1}/{other['id']}")).status_code == 404


async def test_filter_lists_only_tag_limits_by_tag(client) -> None:
    for tag in ("c", "a", "b"):
        await make(client, tag)
    await client.post(f"{V2}/", json={"name": "global", "limit": 1})
    assert [r["tag"] for r in (await client.post(f"{V1}/filter", json={})).json()] == [
        "a",
        "b",
        "c",
    ]
    page = (await client.post(f"{V1}/filter", json={"limit": 1, "offset": 1})).json()
    assert [r["tag"] for r in page] == ["b"]
    assert (await client.post(f"{V1}/filter", json={"limit": -1})).status_code == 422


async def test_increment_lists_holders_and_decrement_releases(client) -> None:
    created = await make(client, "db", 2)
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    taken = await increment(client, "db", "untracked", task_run_id=run_a)
    assert taken.status_code == 200
    assert taken.json() == [{"id": created["id"], "name": "db", "limit": 2}]
    assert (await increment(client, "db", task_run_id=run_b)).status_code == 200
    assert (await client.get(f"{V1}/tag/db")).json()["active_slots"] == [str(run_a), str(run_b)]
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 2
    refused = await increment(client, "db")
    assert refused.status_code == 423
    assert float(refused.headers["Retry-After"]) > 0
    released = await client.post(
        f"{V1}/decrement", json={"names": ["db"], "task_run_id": str(run_a)}
    )
    assert released.status_code == 200
    assert released.json() == [{"id": created["id"], "name": "db", "limit": 2}]
    assert (await client.get(f"{V1}/tag/db")).json()["active_slots"] == [str(run_b)]
    # Releasing again, or for a run that holds nothing, gives back nothing.
    await client.post(f"{V1}/decrement", json={"names": ["db"], "task_run_id": str(run_a)})
    await client.post(f"{V1}/decrement", json={"names": ["db"], "task_run_id": str(uuid.uuid4())})
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 1


async def test_v1_and_v2_share_the_slots(client) -> None:
    await make(client, "db", 1)
    body = {
        "names": ["tag:db"],
        "slots": 1,
        "lease_duration": 60,
        "holder": {"type": "task_run", "id": str(uuid.uuid4())},
    }
    lease = await client.post(f"{V2}/increment-with-lease", json=body)
    assert lease.status_code == 200
    holders = (await client.get(f"{V1}/tag/db")).json()["active_slots"]
    assert holders == [body["holder"]["id"]]
    assert (await increment(client, "db")).status_code == 423
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease.json()["lease_id"]})
    assert (await increment(client, "db")).status_code == 200


async def test_a_zero_limit_aborts_without_retry_after(client) -> None:
    await make(client, "frozen", 0)
    refused = await increment(client, "frozen")
    assert refused.status_code == 423
    assert "Retry-After" not in refused.headers
    assert "is 0" in refused.json()["detail"]


async def test_no_limits_or_inactive_ones_take_nothing(client) -> None:
    assert (await increment(client, "nothing")).json() == []
    await make(client, "db", 1)
    await client.patch(f"{V2}/tag:db", json={"active": False})
    assert (await increment(client, "db")).json() == []
    assert (await increment(client, "db")).json() == []
    await client.patch(f"{V2}/tag:db", json={"active": True})
    assert (await client.get(f"{V1}/tag/db")).json()["active_slots"] == []
    assert (await increment(client, "db")).status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("increment", {"names": ["db"]}),
        ("increment", {"names": ["db"], "task_run_id": "nope"}),
        ("decrement", {"task_run_id": str(uuid.uuid4())}),
    ],
)
async def test_increment_and_decrement_reject_bad_bodies(client, path: str, body: dict) -> None:
    await make(client, "db", 1)
    assert (await client.post(f"{V1}/{path}", json=body)).status_code == 422
    assert (await client.get(f"{V1}/tag/db")).json()["active_slots"] == []


async def test_reset_frees_the_slots_or_hands_them_over(client) -> None:
    await make(client, "db", 2)
    await make(client, "other", 2)
    run = uuid.uuid4()
    await increment(client, "db", "other", task_run_id=run)
    await increment(client, "db")
    assert (await client.post(f"{V1}/tag/db/reset", json={})).status_code == 200
    db = (await client.get(f"{V1}/tag/db")).json()
    assert db["active_slots"] == []
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 0
    # The run's slot on "other" is untouched, and releasing it later frees only that.
    assert (await client.get(f"{V1}/tag/other")).json()["active_slots"] == [str(run)]
    await client.post(f"{V1}/decrement", json={"names": ["db", "other"], "task_run_id": str(run)})
    assert (await client.get(f"{V2}/tag:other")).json()["active_slots"] == 0
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 0

    holders = [str(uuid.uuid4()), str(uuid.uuid4())]
    response = await client.post(f"{V1}/tag/db/reset", json={"slot_override": holders})
    assert response.status_code == 200
    assert sorted((await client.get(f"{V1}/tag/db")).json()["active_slots"]) == sorted(holders)
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 2
    await client.post(f"{V1}/decrement", json={"names": ["db"], "task_run_id": holders[0]})
    assert (await client.get(f"{V2}/tag:db")).json()["active_slots"] == 1
    assert (await client.post(f"{V1}/tag/nope/reset", json={})).status_code == 404
    assert (
        await client.post(f"{V1}/tag/db/reset", json={"slot_override": ["x"]})
    ).status_code == 422


async def test_delete_by_id_and_by_tag(client) -> None:
    a = await make(client, "a", 1)
    await make(client, "b", 1)
    await increment(client, "a")
    assert (await client.delete(f"{V1}/{a['id']}")).status_code == 200
    assert (await client.delete(f"{V1}/tag/b")).status_code == 200
    assert (await client.post(f"{V1}/filter", json={})).json() == []
    assert (await client.get(f"{V2}/tag:a")).status_code == 404
    assert (await client.delete(f"{V1}/tag/b")).status_code == 404
    assert (await client.delete(f"{V1}/{uuid.uuid4()}")).status_code == 404
