"""Heartbeats and the zombie reaper through the API: who is crashed, when, and who never is."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flowplane.server.db import tables as t
from flowplane.server.services.zombies import (
    CRASHED_MESSAGE,
    HeartbeatRecorder,
    ZombieReaper,
)


@pytest.fixture
async def served(database_url: str, flowplane_home: Path) -> AsyncIterator[tuple[Any, Any, Any]]:
    """An API client, its app (no background services) and a heartbeat recorder on its bus."""
    import httpx
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    application = create_app(
        Settings(home=flowplane_home, database_url=database_url),
        run_migrations=False,
        run_services=False,
    )
    async with LifespanManager(application) as manager:
        recorder = HeartbeatRecorder(application.state.db, application.state.bus, after_seconds=60)
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield http, application, recorder


def now() -> datetime:
    return datetime.now(timezone.utc)


def reaper(app: Any, at: datetime, after: float = 60.0) -> ZombieReaper:
    return ZombieReaper(app.state.db, app.state.bus, after_seconds=after, clock=lambda: at)


async def running_run(client: Any) -> str:
    flow = (await client.post("/flows/", json={"name": "long-job"})).json()
    response = await client.post(
        "/flow_runs/", json={"flow_id": flow["id"], "state": {"type": "RUNNING"}}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def beat(
    client: Any,
    recorder: HeartbeatRecorder,
    run_id: str,
    occurred: datetime | None = None,
    interval: float | None = 30.0,
) -> None:
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
        "occurred": (occurred or now()).isoformat(),
    }
    if interval is not None:
        event["payload"] = {"heartbeat_interval_seconds": interval}
    response = await client.post("/events", json=[event])
    assert response.status_code == 204, response.text
    await recorder.flush()


async def state_of(client: Any, run_id: str) -> dict[str, Any]:
    run = (await client.get(f"/flow_runs/{run_id}")).json()
    return run["state"]


async def liveness_columns(app: Any, run_id: str) -> tuple[datetime | None, datetime | None]:
    async with app.state.db.read_session() as session:
        row = (
            await session.execute(
                sa.select(t.FlowRun.last_heartbeat, t.FlowRun.heartbeat_expires).where(
                    t.FlowRun.id == uuid.UUID(run_id)
                )
            )
        ).one()
    return row[0], row[1]


async def test_a_run_whose_heartbeats_stop_is_crashed(served: tuple[Any, Any, Any]) -> None:
    client, app, recorder = served
    run_id = await running_run(client)
    await beat(client, recorder, run_id)
    last, expires = await liveness_columns(app, run_id)
    assert last is not None and expires is not None
    # 30 s heartbeats: grace is max(60 s setting, 2 x 30 s) = 60 s after receipt.
    assert timedelta(seconds=59) < expires - last < timedelta(seconds=61)
    events = app.state.bus.subscribe("events")

    assert await reaper(app, now() + timedelta(seconds=30)).run_once() == 0
    assert (await state_of(client, run_id))["type"] == "RUNNING"

    assert await reaper(app, now() + timedelta(seconds=80)).run_once() == 1
    state = await state_of(client, run_id)
    assert (state["type"], state["name"], state["message"]) == (
        "CRASHED",
        "Crashed",
        CRASHED_MESSAGE,
    )
    assert [e.event for e in events.drain_nowait()] == ["prefect.flow-run.Crashed"]
    # Once crashed, later passes leave it alone.
    assert await reaper(app, now() + timedelta(hours=1)).run_once() == 0


async def test_heartbeats_keep_a_run_alive(served: tuple[Any, Any, Any]) -> None:
    client, app, recorder = served
    run_id = await running_run(client)
    await beat(client, recorder, run_id)
    await beat(client, recorder, run_id, occurred=now() - timedelta(minutes=5))  # stale, ignored
    last, _ = await liveness_columns(app, run_id)
    assert last is not None and now() - last < timedelta(minutes=1)
    assert await reaper(app, now() + timedelta(seconds=50)).run_once() == 0
    assert (await state_of(client, run_id))["type"] == "RUNNING"


async def test_runs_without_heartbeats_are_never_reaped(served: tuple[Any, Any, Any]) -> None:
    client, app, _ = served
    run_id = await running_run(client)
    assert await reaper(app, now() + timedelta(days=1)).run_once() == 0
    assert (await state_of(client, run_id))["type"] == "RUNNING"


async def test_finished_runs_are_never_reaped(served: tuple[Any, Any, Any]) -> None:
    client, app, recorder = served
    run_id = await running_run(client)
    await beat(client, recorder, run_id)
    response = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": "COMPLETED"}}
    )
    assert response.json()["status"] == "ACCEPT"
    assert await reaper(app, now() + timedelta(hours=1)).run_once() == 0
    assert (await state_of(client, run_id))["type"] == "COMPLETED"


async def test_the_runs_own_interval_and_the_prefect_default(
    served: tuple[Any, Any, Any],
) -> None:
    client, app, recorder = served
    slow = await running_run(client)
    prefect_client = await running_run(client)
    await beat(client, recorder, slow, interval=120)  # grace 240 s
    await beat(client, recorder, prefect_client, interval=None)  # assumed 180 s: grace 360 s

    assert await reaper(app, now() + timedelta(seconds=200)).run_once() == 0
    assert await reaper(app, now() + timedelta(seconds=250)).run_once() == 1
    assert (await state_of(client, slow))["type"] == "CRASHED"
    assert (await state_of(client, prefect_client))["type"] == "RUNNING"
    assert await reaper(app, now() + timedelta(seconds=370)).run_once() == 1
    assert (await state_of(client, prefect_client))["type"] == "CRASHED"


async def test_a_heartbeat_older_than_the_running_state_does_not_count(
    served: tuple[Any, Any, Any],
) -> None:
    """A run that (re-)entered Running after its last heartbeat waits for a new one."""
    client, app, recorder = served
    run_id = await running_run(client)
    await beat(client, recorder, run_id, occurred=now() - timedelta(minutes=10))
    assert await reaper(app, now() + timedelta(hours=1)).run_once() == 0
    assert (await state_of(client, run_id))["type"] == "RUNNING"


async def test_heartbeats_for_unknown_or_malformed_runs_change_nothing(
    served: tuple[Any, Any, Any],
) -> None:
    client, app, recorder = served
    await beat(client, recorder, str(uuid.uuid4()))
    response = await client.post(
        "/events",
        json=[
            {
                "id": str(uuid.uuid4()),
                "event": "prefect.flow-run.heartbeat",
                "resource": {"prefect.resource.id": "prefect.flow-run.not-a-uuid"},
            }
        ],
    )
    assert response.status_code == 204
    await recorder.flush()
    assert recorder.stats.failures == 0
    assert await reaper(app, now() + timedelta(hours=1)).run_once() == 0


async def test_on_start_the_reaper_grants_expired_runs_a_grace_period(
    served: tuple[Any, Any, Any],
) -> None:
    client, app, recorder = served
    assert await reaper(app, now()).grant_grace() == 0  # nothing running: nothing written
    run_id = await running_run(client)
    await beat(client, recorder, run_id)
    later = now() + timedelta(minutes=10)  # the server was down; the run's deadline passed
    assert await reaper(app, later).grant_grace() == 1
    _, expires = await liveness_columns(app, run_id)
    assert expires is not None and expires >= later + timedelta(seconds=359)
    assert await reaper(app, later + timedelta(seconds=60)).run_once() == 0
    assert await reaper(app, later + timedelta(seconds=370)).run_once() == 1


async def test_without_a_stated_interval_the_gap_between_heartbeats_is_used(
    served: tuple[Any, Any, Any],
) -> None:
    """The real Prefect client states no interval: its second heartbeat tells it."""
    client, app, recorder = served
    run_id = await running_run(client)
    first = now()
    await beat(client, recorder, run_id, occurred=first, interval=None)
    _, expires = await liveness_columns(app, run_id)
    assert expires is not None and expires - first > timedelta(seconds=350)  # 2 x 180 s
    await beat(client, recorder, run_id, occurred=first + timedelta(seconds=40), interval=None)
    _, expires = await liveness_columns(app, run_id)
    # 2 x the 40 s gap = 80 s after the second heartbeat was received (about now).
    assert expires is not None and timedelta(seconds=75) < expires - now() < timedelta(seconds=81)
    assert await reaper(app, now() + timedelta(seconds=65)).run_once() == 0
    assert await reaper(app, now() + timedelta(seconds=90)).run_once() == 1
