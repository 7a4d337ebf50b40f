"""The scheduler service: Scheduled runs from deployment schedules, once per time, kept current."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from flowplane.core.schedules import CatchUp, Horizon
from flowplane.server.services.scheduler import Scheduler
from flowplane.server.store.scheduling import CATCH_UP_LABEL, CatchUpPolicy


@pytest.fixture
async def served(database_url: str, flowplane_home: Path) -> AsyncIterator[tuple[Any, Any]]:
    """An API client and its app, without background services (the test runs passes itself)."""
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
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield http, application


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def scheduler(app: Any, now: datetime | None = None, **kwargs: Any) -> Scheduler:
    clock = (lambda: now) if now is not None else utcnow
    return Scheduler(app.state.db, app.state.bus, clock=clock, **kwargs)


async def deploy(client: Any, name: str = "hourly", flow: str = "etl", **fields: Any) -> dict:
    await client.post("/work_pools/", json={"name": "pool", "type": "process"})
    flow_id = (await client.post("/flows/", json={"name": flow})).json()["id"]
    body = {"flow_id": flow_id, "name": name, "work_pool_name": "pool", **fields}
    response = await client.post("/deployments/", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def runs_of(client: Any, deployment_id: str) -> list[dict]:
    response = await client.post(
        "/flow_runs/filter",
        json={
            "deployments": {"id": {"any_": [deployment_id]}},
            "sort": "EXPECTED_START_TIME_ASC",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def times(runs: list[dict]) -> list[datetime]:
    return [datetime.fromisoformat(r["expected_start_time"]) for r in runs]


def interval(seconds: float, anchor: datetime) -> dict:
    return {"interval": seconds, "anchor_date": anchor.isoformat()}


async def test_creates_runs_for_cron_interval_and_rrule_schedules(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0) - timedelta(days=1)
    hourly = await deploy(
        client,
        "hourly",
        parameters={"a": 1, "b": 1},
        tags=["nightly"],
        job_variables={"env": {"X": "1"}},
        schedules=[{"schedule": interval(3600, anchor), "parameters": {"b": 2}}],
    )
    daily = await deploy(client, "daily", schedules=[{"schedule": {"cron": "0 9 * * *"}}])
    weekly = await deploy(
        client,
        "weekly",
        schedules=[{"schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Berlin"}}],
    )
    before = utcnow()
    assert await scheduler(app).run_once() == 9

    runs = await runs_of(client, hourly["id"])
    assert len(runs) == 3  # Prefect's minimums: 3 runs and an hour ahead
    got = times(runs)
    assert all((t - anchor) % timedelta(hours=1) == timedelta(0) for t in got)
    assert got[0] >= before - timedelta(seconds=1) and got[0] - before < timedelta(hours=1)
    for run in runs:
        assert run["auto_scheduled"] is True
        assert run["state_type"] == "SCHEDULED" and run["state_name"] == "Scheduled"
        assert run["parameters"] == {"a": 1, "b": 2}
        assert run["work_pool_name"] == "pool" and run["work_queue_name"] == "default"
        assert set(run["tags"]) == {"auto-scheduled", "nightly"}
        assert run["job_variables"] == {"env": {"X": "1"}}
        assert run["labels"]["prefect.deployment.id"] == hourly["id"]
        assert run["name"] and run["deployment_id"] == hourly["id"]
        assert run["created_by"]["type"] == "SCHEDULE"
    assert [t.hour for t in times(await runs_of(client, daily["id"]))] == [9, 9, 9]
    for when in times(await runs_of(client, weekly["id"])):
        local = when.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
        assert local.weekday() == 0 and local.hour == 0  # midnight Monday, Berlin time


async def test_passes_are_idempotent_alone_concurrently_and_across_redeploys(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0)
    body = {"schedules": [{"schedule": interval(600, anchor)}]}
    dep = await deploy(client, **body)
    first = scheduler(app)
    assert await first.run_once() == 7  # 10-minute steps until an hour ahead
    expected = times(await runs_of(client, dep["id"]))
    assert await first.run_once() == 0

    # Two schedulers (as two servers on one database) racing on fresh work.
    await client.post(f"/deployments/{dep['id']}/pause_deployment")
    await client.post(f"/deployments/{dep['id']}/resume_deployment")
    assert await runs_of(client, dep["id"]) == []
    made = await asyncio.gather(scheduler(app).run_once(), scheduler(app).run_once())
    assert sum(made) == 7
    assert times(await runs_of(client, dep["id"])) == expected

    # A redeploy of the same deployment replaces the future runs, never doubles them.
    again = await deploy(client, **body)
    assert again["id"] == dep["id"]
    await scheduler(app).run_once()
    await scheduler(app).run_once()
    assert times(await runs_of(client, dep["id"])) == expected


async def test_paused_deployments_and_inactive_schedules_get_no_runs(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0)
    await deploy(client, "paused", paused=True, schedules=[{"schedule": interval(600, anchor)}])
    await deploy(
        client, "inactive", schedules=[{"schedule": interval(600, anchor), "active": False}]
    )
    await deploy(client, "unscheduled")
    assert await scheduler(app).run_once() == 0
    assert (await client.post("/flow_runs/count", json={})).json() == 0


async def test_schedule_change_replaces_the_future_runs(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0)
    dep = await deploy(client, schedules=[{"schedule": interval(600, anchor), "slug": "s"}])
    await scheduler(app).run_once()
    manual = await client.post(f"/deployments/{dep['id']}/create_flow_run", json={})
    assert manual.status_code == 201
    assert len(await runs_of(client, dep["id"])) == 8

    response = await client.patch(
        f"/deployments/{dep['id']}",
        json={"schedules": [{"slug": "s", "schedule": interval(1800, anchor)}]},
    )
    assert response.status_code == 204, response.text
    left = await runs_of(client, dep["id"])
    assert [r["id"] for r in left] == [manual.json()["id"]]  # made by hand: kept

    since = utcnow() - timedelta(seconds=5)
    assert await scheduler(app).run_once(changed_since=since) == 3  # the fast loop sees it
    auto = times([r for r in await runs_of(client, dep["id"]) if r["auto_scheduled"]])
    assert len(auto) == 3
    assert all((t - anchor) % timedelta(minutes=30) == timedelta(0) for t in auto)

    # Deleting the schedule removes its runs; the fast loop makes none for it.
    schedule_id = (await client.get(f"/deployments/{dep['id']}/schedules")).json()[0]["id"]
    await client.delete(f"/deployments/{dep['id']}/schedules/{schedule_id}")
    assert await scheduler(app).run_once() == 0
    assert [r["auto_scheduled"] for r in await runs_of(client, dep["id"])] == [False]


async def test_recent_pass_only_touches_changed_deployments(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0)
    old = await deploy(client, "old", schedules=[{"schedule": interval(600, anchor)}])
    cutoff = utcnow() + timedelta(milliseconds=5)
    await asyncio.sleep(0.05)
    new = await deploy(client, "new", schedules=[{"schedule": interval(600, anchor)}])
    assert await scheduler(app).run_once(changed_since=cutoff) == 7
    assert await runs_of(client, old["id"]) == []
    assert len(await runs_of(client, new["id"])) == 7


async def test_max_runs_and_a_schedules_own_bound_are_honoured(served) -> None:
    client, app = served
    anchor = utcnow().replace(microsecond=0)
    capped = await deploy(
        client,
        "capped",
        schedules=[{"schedule": interval(60, anchor), "max_scheduled_runs": 2}],
    )
    busy = await deploy(client, "busy", schedules=[{"schedule": interval(1, anchor)}])
    assert await scheduler(app, horizon=Horizon(max_runs=50)).run_once() == 52
    assert len(await runs_of(client, capped["id"])) == 2
    assert len(await runs_of(client, busy["id"])) == 50


@pytest.mark.parametrize("server_policy", [CatchUp.SKIP, CatchUp.RUN_MISSED])
async def test_catch_up_skips_or_runs_missed_times_bounded(served, server_policy) -> None:
    client, app = served
    now = utcnow().replace(second=0, microsecond=0)
    anchor = now - timedelta(hours=3)
    schedule = [{"schedule": interval(600, anchor)}]
    plain = await deploy(client, "plain", schedules=schedule)
    skips = await deploy(
        client, "skips", flow="f2", schedules=schedule, labels={CATCH_UP_LABEL: "skip"}
    )
    runs = await deploy(
        client, "runs", flow="f3", schedules=schedule, labels={CATCH_UP_LABEL: "run_missed"}
    )
    one = Horizon(min_runs=1, max_runs=1, min_time=timedelta(0))
    # The scheduler last ran three hours ago, then the server was down.
    assert await scheduler(app, now=anchor, horizon=one).run_once() == 3

    policy = CatchUpPolicy(policy=server_policy, max_missed=4)
    back = scheduler(app, now=now, horizon=one, catch_up=policy)
    caught_up = [anchor, *[now - timedelta(minutes=10 * k) for k in (4, 3, 2, 1)], now]
    skipped = [anchor, now]
    assert await back.run_once() == (5 if server_policy is CatchUp.RUN_MISSED else 1) + 1 + 5
    assert times(await runs_of(client, skips["id"])) == skipped
    assert times(await runs_of(client, runs["id"])) == caught_up
    expected = caught_up if server_policy is CatchUp.RUN_MISSED else skipped
    assert times(await runs_of(client, plain["id"])) == expected
    assert await back.run_once() == 0


@pytest.mark.parametrize("late_after", [15, 5])
async def test_catch_up_waits_for_the_late_threshold(served, late_after: int) -> None:
    client, app = served
    now = utcnow().replace(microsecond=0)
    last = now - timedelta(seconds=10)
    dep = await deploy(client, schedules=[{"schedule": interval(2, last)}])
    one = Horizon(min_runs=1, max_runs=1, min_time=timedelta(0))
    assert await scheduler(app, now=last, horizon=one).run_once() == 1
    policy = CatchUpPolicy(
        policy=CatchUp.RUN_MISSED, max_missed=10, late_after=timedelta(seconds=late_after)
    )
    await scheduler(app, now=now, horizon=one, catch_up=policy).run_once()
    got = times(await runs_of(client, dep["id"]))
    if late_after == 15:  # 10 s behind is within the threshold: a normal pass
        assert got == [last, now]
    else:
        assert got == [last + timedelta(seconds=2 * k) for k in range(6)]


async def test_schedule_endpoint_reports_counts_and_refuses_a_reversed_window(served) -> None:
    client, _ = served
    anchor = utcnow().replace(second=0, microsecond=0) - timedelta(days=2)
    dep = await deploy(client, schedules=[{"schedule": interval(3600, anchor)}])
    url = f"/deployments/{dep['id']}/schedule"
    window = {
        "start_time": anchor.isoformat(),
        "end_time": (anchor + timedelta(hours=5)).isoformat(),
        "min_runs": 1000,
        "max_runs": 1000,
    }
    assert (await client.post(url, json=window)).json() == {"created": 6, "existing": 0}
    wider = {**window, "end_time": (anchor + timedelta(hours=7)).isoformat()}
    assert (await client.post(url, json=wider)).json() == {"created": 2, "existing": 6}
    reversed_ = {**window, "end_time": (anchor - timedelta(hours=1)).isoformat()}
    response = await client.post(url, json=reversed_)
    assert response.status_code == 422 and "end_time" in response.text
    assert len(await runs_of(client, dep["id"])) == 8
    missing = await client.post(f"/deployments/{anchor.year}/schedule", json=window)
    assert missing.status_code == 422
    absent = "00000000-0000-0000-0000-000000000000"
    assert (await client.post(f"/deployments/{absent}/schedule", json=window)).status_code == 404


def test_registry_builds_the_scheduler_from_settings(flowplane_home: Path) -> None:
    from types import SimpleNamespace

    from flowplane.server.services.registry import build_services
    from flowplane.settings import Settings

    def built(**overrides: Any) -> list[Any]:
        settings = Settings(home=flowplane_home, **overrides)
        app = SimpleNamespace(state=SimpleNamespace(db=None, bus=_Bus(), settings=settings))
        return [s for s in build_services(app) if s.name == "scheduler"]

    (service,) = built(
        server_services_scheduler_loop_seconds=7,
        server_services_scheduler_min_runs=1,
        server_services_scheduler_catch_up="run_missed",
        server_services_scheduler_catch_up_max_runs=2,
    )
    assert service.interval == 7 and service.horizon.min_runs == 1
    assert service.catch_up.policy is CatchUp.RUN_MISSED and service.catch_up.max_missed == 2
    assert built(server_services_scheduler_enabled=False) == []
    with pytest.raises(ValueError):
        Settings(home=flowplane_home, server_services_scheduler_catch_up="sometimes")


class _Bus:
    def subscribe(self, topic: str) -> None:
        return None
