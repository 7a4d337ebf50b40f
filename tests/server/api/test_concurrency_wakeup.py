"""Held slot requests (``?wait=``): a release wakes the oldest waiter at once, timeouts still answer 423."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowplane.schemas.base import now_utc
from flowplane.server import slot_waiters
from flowplane.server.services.lease_expiry import release_expired
from flowplane.server.slot_waiters import waiters_for

V2 = "/v2/concurrency_limits"
#: Far longer than any wake-up should take; reaching it means nobody woke the waiter.
GENEROUS = 20.0


@pytest.fixture(autouse=True)
def _no_rechecks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiters do not re-check on their own here: only a notification can wake them in time."""
    monkeypatch.setattr(slot_waiters, "RECHECK_SECONDS", 60.0)
    from flowplane.server.api import concurrency_limits_v2

    monkeypatch.setattr(concurrency_limits_v2, "RECHECK_SECONDS", 60.0)


@pytest.fixture
async def app(database_url: str, flowplane_home: Path) -> AsyncIterator[Any]:
    """The FastAPI app itself (its ``state`` holds the waiters), started with its services."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    application = create_app(
        Settings(home=flowplane_home, database_url=database_url), run_migrations=False
    )
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
        yield http


async def make_limit(client: Any, name: str = "db", limit: int = 1, **fields: Any) -> dict:
    response = await client.post(f"{V2}/", json={"name": name, "limit": limit, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def take(client: Any, *names: str, wait: float = 0.0, **extra: Any) -> Any:
    body = {"names": list(names), "slots": 1, "lease_duration": 60, **extra}
    return await client.post(f"{V2}/increment-with-lease", json=body, params={"wait": wait})


async def active_slots(client: Any, name: str) -> int:
    return (await client.get(f"{V2}/{name}")).json()["active_slots"]


async def until_waiting(app: Any, count: int) -> None:
    for _ in range(400):
        if waiters_for(app).waiting() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} waiting request(s)")


async def test_release_hands_the_slot_to_a_waiting_request(app, client) -> None:
    await make_limit(client)
    held = (await take(client, "db")).json()["lease_id"]
    waiter = asyncio.create_task(take(client, "db", wait=GENEROUS))
    await until_waiting(app, 1)
    assert not waiter.done()
    release = await client.post(f"{V2}/decrement-with-lease", json={"lease_id": held})
    assert release.status_code == 204
    answer = await asyncio.wait_for(waiter, GENEROUS / 2)
    assert answer.status_code == 200, answer.text
    assert answer.json()["limits"][0]["name"] == "db"
    assert await active_slots(client, "db") == 1
    assert waiters_for(app).waiting() == 0


async def test_oldest_waiter_goes_first_and_one_release_wakes_one(app, client) -> None:
    await make_limit(client)
    held = (await take(client, "db")).json()["lease_id"]
    first = asyncio.create_task(take(client, "db", wait=GENEROUS))
    await until_waiting(app, 1)
    second = asyncio.create_task(take(client, "db", wait=GENEROUS))
    await until_waiting(app, 2)
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": held})
    got = await asyncio.wait_for(first, GENEROUS / 2)
    assert got.status_code == 200
    await asyncio.sleep(0.2)
    assert not second.done()  # still full: its turn comes with the next release
    await client.post(f"{V2}/decrement-with-lease", json={"lease_id": got.json()["lease_id"]})
    assert (await asyncio.wait_for(second, GENEROUS / 2)).status_code == 200


async def test_a_wait_that_runs_out_is_answered_423_and_takes_nothing(app, client) -> None:
    await make_limit(client)
    await take(client, "db")
    answer = await take(client, "db", wait=0.3)
    assert answer.status_code == 423
    assert float(answer.headers["Retry-After"]) > 0
    assert await active_slots(client, "db") == 1
    assert waiters_for(app).waiting() == 0


async def test_without_wait_a_full_limit_answers_at_once(app, client) -> None:
    """Prefect's clients never send ``wait``: they get 423 and Retry-After as before."""
    await make_limit(client)
    await take(client, "db")
    answer = await client.post(
        f"{V2}/increment-with-lease", json={"names": ["db"], "slots": 1, "lease_duration": 60}
    )
    assert answer.status_code == 423
    assert "Retry-After" in answer.headers


async def test_expired_lease_wakes_a_waiter(app, client) -> None:
    await make_limit(client)
    await take(client, "db")  # its holder never renews it
    waiter = asyncio.create_task(take(client, "db", wait=GENEROUS))
    await until_waiting(app, 1)
    later = now_utc() + dt.timedelta(seconds=61)
    assert await release_expired(app.state.db, later, waiters=waiters_for(app)) == 1
    assert (await asyncio.wait_for(waiter, GENEROUS / 2)).status_code == 200


async def test_plain_decrement_and_raising_the_limit_wake_waiters(app, client) -> None:
    await make_limit(client, "plain")
    assert (
        await client.post(f"{V2}/increment", json={"names": ["plain"], "slots": 1})
    ).status_code == 200
    waiter = asyncio.create_task(
        client.post(f"{V2}/increment", json={"names": ["plain"], "slots": 1}, params={"wait": 20})
    )
    await until_waiting(app, 1)
    await client.post(f"{V2}/decrement", json={"names": ["plain"], "slots": 1})
    assert (await asyncio.wait_for(waiter, GENEROUS / 2)).status_code == 200

    blocked = asyncio.create_task(take(client, "plain", wait=GENEROUS))
    await until_waiting(app, 1)
    assert (await client.patch(f"{V2}/plain", json={"limit": 2})).status_code == 204
    assert (await asyncio.wait_for(blocked, GENEROUS / 2)).status_code == 200
    assert await active_slots(client, "plain") == 2


async def test_tag_limit_waiters_wake_on_v1_decrement(app, client) -> None:
    await client.post("/concurrency_limits/", json={"tag": "etl", "concurrency_limit": 1})
    run_a, run_b = str(uuid.uuid4()), str(uuid.uuid4())
    first = await client.post(
        "/concurrency_limits/increment", json={"names": ["etl"], "task_run_id": run_a}
    )
    assert first.status_code == 200
    waiter = asyncio.create_task(
        client.post(
            "/concurrency_limits/increment",
            json={"names": ["etl"], "task_run_id": run_b},
            params={"wait": GENEROUS},
        )
    )
    await until_waiting(app, 1)
    await client.post(
        "/concurrency_limits/decrement", json={"names": ["etl"], "task_run_id": run_a}
    )
    assert (await asyncio.wait_for(waiter, GENEROUS / 2)).status_code == 200
    tag = (await client.get("/concurrency_limits/tag/etl")).json()
    assert tag["active_slots"] == [run_b]


async def test_rate_limit_waiter_is_admitted_by_decay(app, client) -> None:
    await make_limit(client, "api", 1, slot_decay_per_second=5.0)
    body = {"names": ["api"], "slots": 1, "mode": "rate_limit"}
    assert (await client.post(f"{V2}/increment", json=body)).status_code == 200
    answer = await client.post(f"{V2}/increment", json=body, params={"wait": GENEROUS})
    assert answer.status_code == 200  # decay (0.2 s a slot) admits it, no release needed


async def test_wait_beyond_the_cap_is_refused(client) -> None:
    await make_limit(client)
    answer = await take(client, "db", wait=31)
    assert answer.status_code == 422


async def test_deleting_a_tag_limit_lets_its_waiters_through(app, client) -> None:
    await client.post("/concurrency_limits/", json={"tag": "gone", "concurrency_limit": 1})
    taken = await client.post(
        "/concurrency_limits/increment",
        json={"names": ["gone"], "task_run_id": str(uuid.uuid4())},
    )
    assert taken.status_code == 200
    waiter = asyncio.create_task(
        client.post(
            "/concurrency_limits/increment",
            json={"names": ["gone"], "task_run_id": str(uuid.uuid4())},
            params={"wait": GENEROUS},
        )
    )
    await until_waiting(app, 1)
    assert (await client.delete("/concurrency_limits/tag/gone")).status_code == 200
    answer = await asyncio.wait_for(waiter, GENEROUS / 2)
    assert (answer.status_code, answer.json()) == (200, [])  # no limit any more: unlimited
