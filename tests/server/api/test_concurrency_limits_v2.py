"""Global concurrency limits (v2): CRUD, taking and giving back slots, 422/423, and the race for the last slot."""

from __future__ import annotations

import asyncio
import uuid

import pytest

V2 = "/v2/concurrency_limits"


async def make_limit(client, name: str = "db", limit: int = 1, **fields: object) -> dict:
    response = await client.post(f"{V2}/", json={"name": name, "limit": limit, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def read(client, ident: str) -> dict:
    response = await client.get(f"{V2}/{ident}")
    assert response.status_code == 200, response.text
    return response.json()


def lease_body(*names: str, slots: int = 1, **extra: object) -> dict:
    return {
        "names": list(names),
        "slots": slots,
        "mode": "concurrency",
        "lease_duration": 60,
        **extra,
    }


# --- CRUD ------------------------------------------------------------------------------


async def test_create_returns_every_counter_and_reads_by_id_and_name(client) -> None:
    created = await make_limit(client, "db", 3, slot_decay_per_second=0.5)
    assert created["name"] == "db" and created["limit"] == 3 and created["active"] is True
    assert (created["active_slots"], created["denied_slots"]) == (0, 0)
    assert created["slot_decay_per_second"] == 0.5
    assert created["avg_slot_occupancy_seconds"] == 2.0
    uuid.UUID(created["id"])
    by_id = await read(client, created["id"])
    by_name = await read(client, "db")
    assert by_id == by_name
    assert set(by_id) == {
        "id",
        "created",
        "updated",
        "active",
        "name",
        "limit",
        "active_slots",
        "slot_decay_per_second",
    }


async def test_duplicate_name_is_409_and_changes_nothing(client) -> None:
    first = await make_limit(client, "db", 1)
    again = await client.post(f"{V2}/", json={"name": "db", "limit": 7})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    assert (await read(client, "db"))["limit"] == 1
    assert (await read(client, "db"))["id"] == first["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"limit": 1},
        {"name": "x", "limit": -1},
        {"name": "a/b", "limit": 1},
        {"name": "a%b", "limit": 1},
        {"name": "", "limit": 1},
        {"name": "x", "limit": 1, "slot_decay_per_second": -1},
        {"name": "x", "limit": 1, "active_slots": -2},
        {"name": "x", "limit": 1, "bogus": True},
    ],
)
async def test_create_rejects_bad_bodies_and_writes_nothing(client, body: dict) -> None:
    assert (await client.post(f"{V2}/", json=body)).status_code == 422
    assert (await client.post(f"{V2}/filter", json={})).json() == []


async def test_404s(client) -> None:
    missing = str(uuid.uuid4())
    for ident in (missing, "nope"):
        assert (await client.get(f"{V2}/{ident}")).status_code == 404
        assert (await client.patch(f"{V2}/{ident}", json={"limit": 2})).status_code == 404
        assert (await client.delete(f"{V2}/{ident}")).status_code == 404
    assert "not found" in (await client.get(f"{V2}/nope")).json()["detail"]


async def test_filter_orders_by_name_with_offset_and_limit(client) -> None:
    for name in ("c", "a", "b", "d"):
        await make_limit(client, name)
    names = [row["name"] for row in (await client.post(f"{V2}/filter", json={})).json()]
    assert names == ["a", "b", "c", "d"]
    page = (await client.post(f"{V2}/filter", json={"offset": 1, "limit": 2})).json()
    assert [row["name"] for row in page] == ["b", "c"]
    nulls = (await client.post(f"{V2}/filter", json={"offset": None, "limit": None})).json()
    assert len(nulls) == 4
    assert (await client.post(f"{V2}/filter", json={"offset": -1})).status_code == 422


async def test_patch_by_id_and_by_name(client) -> None:
    created = await make_limit(client, "db", 1)
    response = await client.patch(f"{V2}/{created['id']}", json={"limit": 5, "active": False})
    assert response.status_code == 204
    row = await read(client, "db")
    assert (row["limit"], row["active"]) == (5, False)
    assert (
        await client.patch(f"{V2}/db", json={"name": "warehouse", "limit": None})
    ).status_code == 204
    assert (await read(client, created["id"]))["name"] == "warehouse"
    assert (await read(client, "warehouse"))["limit"] == 5  # null means "leave as is"
    assert (await client.patch(f"{V2}/warehouse", json={"active_slots": 3})).status_code == 204
    assert (await read(client, "warehouse"))["active_slots"] == 3


async def test_patch_rejects_bad_bodies_and_duplicate_names(client) -> None:
    await make_limit(client, "a", 1)
    await make_limit(client, "b", 1)
    assert (await client.patch(f"{V2}/a", json={"limit": -1})).status_code == 422
    assert (await client.patch(f"{V2}/a", json={"bogus": 1})).status_code == 422
    assert (await client.patch(f"{V2}/a", json={"name": "x/y"})).status_code == 422
    assert (await client.patch(f"{V2}/a", json={"name": "b"})).status_code == 409
    assert (await read(client, "a"))["limit"] == 1


async def test_delete_by_id_and_name(client) -> None:
    a = await make_limit(client, "a")
    await make_limit(client, "b")
    assert (await client.delete(f"{V2}/{a['id']}")).status_code == 204
    assert (await client.delete(f"{V2}/b")).status_code == 204
    assert (await client.post(f"{V2}/filter", json={})).json() == []


# --- slots with leases -----------------------------------------------------------------------


async def test_no_limits_means_a_fresh_lease_and_no_limits(client) -> None:
    body = lease_body(
        "tag:etl", "tag:nightly", holder={"type": "task_run", "id": str(uuid.uuid4())}
    )
    first = await client.post(f"{V2}/increment-with-lease", json=body)
    second = await client.post(f"{V2}/increment-with-lease", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json()["limits"] == []
    assert first.json()["lease_id"] != second.json()["lease_id"]
    # Nothing was stored: there is nothing to renew, and releasing it is harmless.
    lease_id = first.json()["lease_id"]
    assert (
        await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": 60})
    ).status_code == 410
    assert (
        await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease_id})
    ).status_code == 204


async def test_increment_with_lease_takes_slots_and_release_gives_them_back(client) -> None:
    db = await make_limit(client, "tag:db", 2)
    holder = {"type": "task_run", "id": str(uuid.uuid4())}
    response = await client.post(
        f"{V2}/increment-with-lease", json=lease_body("tag:db", "tag:other", holder=holder)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["limits"] == [{"id": db["id"], "name": "tag:db", "limit": 2}]
    assert (await read(client, "tag:db"))["active_slots"] == 1
    release = await client.post(f"{V2}/decrement-with-lease", json={"lease_id": body["lease_id"]})
    assert release.status_code == 204
    assert (await read(client, "tag:db"))["active_slots"] == 0
    # Releasing twice gives back nothing more.
    await client.post(f"{V2}/increment-with-lease", json=lease_body("tag:db"))
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": body["lease_id"]})
    assert (await read(client, "tag:db"))["active_slots"] == 1


async def test_full_limit_answers_423_with_retry_after(client) -> None:
    await make_limit(client, "db", 1)
    assert (
        await client.post(f"{V2}/increment-with-lease", json=lease_body("db"))
    ).status_code == 200
    refused = await client.post(f"{V2}/increment-with-lease", json=lease_body("db"))
    assert refused.status_code == 423
    retry_after = float(refused.headers["Retry-After"])
    assert 0 < retry_after <= 30 * 1.3
    assert "db" in refused.json()["detail"]
    assert (await read(client, "db"))["active_slots"] == 1


async def test_all_or_nothing_across_limits(client) -> None:
    await make_limit(client, "a", 2)
    await make_limit(client, "b", 1)
    await client.post(f"{V2}/increment-with-lease", json=lease_body("b"))
    refused = await client.post(f"{V2}/increment-with-lease", json=lease_body("a", "b"))
    assert refused.status_code == 423
    assert (await read(client, "a"))["active_slots"] == 0  # a's slot was not kept
    assert (await read(client, "b"))["active_slots"] == 1


async def test_inactive_limits_are_listed_but_not_counted(client) -> None:
    off = await make_limit(client, "off", 1, active=False)
    for _ in range(3):
        response = await client.post(f"{V2}/increment-with-lease", json=lease_body("off"))
        assert response.status_code == 200
        assert response.json()["limits"] == [{"id": off["id"], "name": "off", "limit": 1}]
    assert (await read(client, "off"))["active_slots"] == 0
    # The client renews such a lease, so it exists; releasing it gives back nothing.
    lease_id = response.json()["lease_id"]
    assert (
        await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": 60})
    ).status_code == 204
    await client.patch(f"{V2}/off", json={"active": True, "active_slots": 1})
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease_id})
    assert (await read(client, "off"))["active_slots"] == 1


async def test_more_slots_than_the_limit_is_422(client) -> None:
    await make_limit(client, "db", 2)
    response = await client.post(f"{V2}/increment-with-lease", json=lease_body("db", slots=3))
    assert response.status_code == 422
    assert "greater than the limit" in response.json()["detail"]
    assert (await read(client, "db"))["active_slots"] == 0


@pytest.mark.parametrize(
    "body",
    [
        lease_body("db", lease_duration=59),
        lease_body("db", lease_duration=86401),
        lease_body("db", slots=0),
        lease_body(),
        {"names": ["db"]},
        lease_body("db", mode="other"),
        lease_body("db", holder={"type": "worker", "id": str(uuid.uuid4())}),
        lease_body("db", holder={"type": "task_run", "id": "not-a-uuid"}),
    ],
)
async def test_increment_with_lease_rejects_bad_bodies_and_writes_nothing(
    client, body: dict
) -> None:
    await make_limit(client, "db", 2)
    assert (await client.post(f"{V2}/increment-with-lease", json=body)).status_code == 422
    assert (await read(client, "db"))["active_slots"] == 0


async def test_lease_duration_bounds_are_inclusive(client) -> None:
    await make_limit(client, "db", 5)
    for duration in (60, 86400):
        assert (
            await client.post(
                f"{V2}/increment-with-lease", json=lease_body("db", lease_duration=duration)
            )
        ).status_code == 200


async def test_renew(client) -> None:
    await make_limit(client, "db", 1)
    lease_id = (await client.post(f"{V2}/increment-with-lease", json=lease_body("db"))).json()[
        "lease_id"
    ]
    assert (
        await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": 120})
    ).status_code == 204
    assert (await client.post(f"{V2}/leases/{lease_id}/renew", json={})).status_code == 204
    assert (
        await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": 10})
    ).status_code == 422
    unknown = await client.post(f"{V2}/leases/{uuid.uuid4()}/renew", json={"lease_duration": 60})
    assert unknown.status_code == 410
    assert "expired or was released" in unknown.json()["detail"]
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease_id})
    assert (
        await client.post(f"{V2}/leases/{lease_id}/renew", json={"lease_duration": 60})
    ).status_code == 410
    assert (
        await client.post(f"{V2}/decrement-with-lease", json={"lease_id": "nope"})
    ).status_code == 422


async def test_deleting_a_limit_revokes_leases_that_held_only_it(client) -> None:
    await make_limit(client, "a", 5)
    await make_limit(client, "b", 5)
    only_a = (await client.post(f"{V2}/increment-with-lease", json=lease_body("a"))).json()[
        "lease_id"
    ]
    both = (await client.post(f"{V2}/increment-with-lease", json=lease_body("a", "b"))).json()[
        "lease_id"
    ]
    assert (await client.delete(f"{V2}/a")).status_code == 204
    assert (
        await client.post(f"{V2}/leases/{only_a}/renew", json={"lease_duration": 60})
    ).status_code == 410
    assert (
        await client.post(f"{V2}/leases/{both}/renew", json={"lease_duration": 60})
    ).status_code == 204
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": both})
    assert (await read(client, "b"))["active_slots"] == 0


# --- slots without leases ---------------------------------------------------------------------


async def test_increment_and_decrement_by_name(client) -> None:
    db = await make_limit(client, "db", 3)
    taken = await client.post(
        f"{V2}/increment", json={"names": ["db", "missing"], "slots": 2, "mode": "concurrency"}
    )
    assert taken.status_code == 200
    assert taken.json() == [{"id": db["id"], "name": "db", "limit": 3}]
    assert (await read(client, "db"))["active_slots"] == 2
    refused = await client.post(f"{V2}/increment", json={"names": ["db"], "slots": 2})
    assert refused.status_code == 423 and float(refused.headers["Retry-After"]) > 0
    given = await client.post(
        f"{V2}/decrement", json={"names": ["db"], "slots": 1, "occupancy_seconds": 12.0}
    )
    assert given.status_code == 200 and given.json()[0]["name"] == "db"
    assert (await read(client, "db"))["active_slots"] == 1
    created = (await client.post(f"{V2}/filter", json={})).json()
    assert created[0]["active_slots"] == 1
    # Never below zero; unknown names give back nothing and answer [].
    await client.post(f"{V2}/decrement", json={"names": ["db"], "slots": 5})
    assert (await read(client, "db"))["active_slots"] == 0
    assert (await client.post(f"{V2}/decrement", json={"names": ["nope"], "slots": 1})).json() == []


async def test_create_if_missing_is_accepted_and_ignored(client) -> None:
    response = await client.post(
        f"{V2}/increment",
        json={"names": ["new"], "slots": 1, "mode": "concurrency", "create_if_missing": True},
    )
    assert response.status_code == 200 and response.json() == []
    assert (await client.get(f"{V2}/new")).status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("increment", {"names": ["db"], "slots": 0}),
        ("increment", {"names": [], "slots": 1}),
        ("increment", {"slots": 1}),
        ("increment", {"names": ["db"], "slots": 1, "mode": "burst"}),
        ("decrement", {"names": ["db"], "slots": -1}),
        ("decrement", {"names": ["db"], "slots": 1, "occupancy_seconds": 0}),
    ],
)
async def test_increment_and_decrement_reject_bad_bodies(client, path: str, body: dict) -> None:
    await make_limit(client, "db", 2, active_slots=1)
    assert (await client.post(f"{V2}/{path}", json=body)).status_code == 422
    assert (await read(client, "db"))["active_slots"] == 1


async def test_rate_limit_mode_needs_decay(client) -> None:
    await make_limit(client, "static", 5)
    refused = await client.post(
        f"{V2}/increment", json={"names": ["static"], "slots": 1, "mode": "rate_limit"}
    )
    assert refused.status_code == 422
    assert "static" in refused.json()["detail"]
    await make_limit(client, "api", 5, slot_decay_per_second=1.0)
    taken = await client.post(
        f"{V2}/increment", json={"names": ["api"], "slots": 2, "mode": "rate_limit"}
    )
    assert taken.status_code == 200
    assert (await read(client, "api"))["active_slots"] >= 1


async def test_rate_limited_lease_does_not_give_slots_back(client) -> None:
    await make_limit(client, "api", 5, slot_decay_per_second=0.001)
    body = lease_body("api", slots=2, mode="rate_limit")
    lease_id = (await client.post(f"{V2}/increment-with-lease", json=body)).json()["lease_id"]
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": lease_id})
    assert (await read(client, "api"))["active_slots"] == 2  # they decay; releasing frees none


# --- the race for the last slot --------------------------------------------------------------


async def test_racing_for_the_last_slots_exactly_the_limit_wins(client) -> None:
    await make_limit(client, "db", 3)
    await client.post(f"{V2}/increment", json={"names": ["db"], "slots": 2})

    async def contend() -> int:
        response = await client.post(f"{V2}/increment-with-lease", json=lease_body("db"))
        assert response.status_code in (200, 423), response.text
        return response.status_code

    results = await asyncio.gather(*(contend() for _ in range(12)))
    assert results.count(200) == 1
    assert results.count(423) == 11
    assert (await read(client, "db"))["active_slots"] == 3


async def test_racing_many_contenders_on_a_roomier_limit(client) -> None:
    await make_limit(client, "db", 4)
    responses = await asyncio.gather(
        *(client.post(f"{V2}/increment", json={"names": ["db"], "slots": 1}) for _ in range(16))
    )
    assert sorted(r.status_code for r in responses) == [200] * 4 + [423] * 12
    assert (await read(client, "db"))["active_slots"] == 4


async def test_crossing_multi_limit_requests_never_deadlock(client) -> None:
    await make_limit(client, "a", 3)
    await make_limit(client, "b", 3)

    async def cycle(names: list[str]) -> None:
        for _ in range(3):
            response = await client.post(f"{V2}/increment-with-lease", json=lease_body(*names))
            assert response.status_code in (200, 423), response.text
            if response.status_code == 200:
                release = await client.post(
                    f"{V2}/decrement-with-lease", json={"lease_id": response.json()["lease_id"]}
                )
                assert release.status_code == 204

    await asyncio.gather(*(cycle(["a", "b"] if i % 2 else ["b", "a"]) for i in range(8)))
    assert (await read(client, "a"))["active_slots"] == 0
    assert (await read(client, "b"))["active_slots"] == 0
