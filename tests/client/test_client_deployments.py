"""Client operations for deployments, work pools, queues and workers, on both client faces."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
from client_harness import Face, open_face

from flowplane.exceptions import ObjectAlreadyExists, ObjectNotFound, ValidationFailed
from flowplane.schemas.deployments import Deployment, DeploymentUpdate
from flowplane.schemas.schedules import CronSchedule, IntervalSchedule
from flowplane.schemas.workers import WorkPoolCreate, WorkPoolUpdate


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Face]:
    face, close = await open_face(request.param)
    try:
        yield face
    finally:
        await close()


async def test_work_pools_queues_and_workers(api: Face) -> None:
    pool = await api.create_work_pool(WorkPoolCreate(name="pool", type="process"))
    assert pool.name == "pool" and pool.default_queue_id is not None
    with pytest.raises(ObjectAlreadyExists):
        await api.create_work_pool({"name": "pool"})
    same = await api.create_work_pool({"name": "pool", "concurrency_limit": 4}, overwrite=True)
    assert same.id == pool.id and same.concurrency_limit == 4
    assert [p.name for p in await api.read_work_pools()] == ["pool"]
    assert await api.count_work_pools() == 1
    await api.update_work_pool("pool", WorkPoolUpdate(is_paused=True))
    assert (await api.read_work_pool("pool")).is_paused is True
    await api.update_work_pool("pool", {"is_paused": False})

    queue = await api.create_work_queue("fast", priority=1, work_pool_name="pool")
    assert queue.work_pool_name == "pool" and queue.priority == 1
    assert (await api.read_work_queue_by_name("fast", work_pool_name="pool")).id == queue.id
    assert (await api.read_work_queue(queue.id)).name == "fast"
    assert [q.name for q in await api.read_work_queues(work_pool_name="pool")] == [
        "fast",
        "default",
    ]
    assert [q.name for q in await api.match_work_queues(["fa"])] == ["fast"]
    await api.update_work_queue(queue.id, concurrency_limit=2)
    assert (await api.read_work_queue(queue.id)).concurrency_limit == 2
    assert (await api.read_work_queue_status(queue.id)).healthy is False
    assert await api.get_runs_in_work_queue(queue.id) == []

    await api.send_worker_heartbeat("pool", "w1", heartbeat_interval_seconds=15)
    workers = await api.read_workers_for_work_pool("pool")
    assert [(w.name, w.status.value) for w in workers] == [("w1", "ONLINE")]
    await api.delete_work_queue_by_id(queue.id)
    with pytest.raises(ObjectNotFound):
        await api.read_work_queue(queue.id)
    await api.delete_work_pool("pool")
    with pytest.raises(ObjectNotFound):
        await api.read_work_pool("pool")


async def test_deployments_runs_and_claims(api: Face) -> None:
    await api.create_work_pool({"name": "pool", "type": "process"})
    flow_id = await api.create_flow_from_name("etl")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    dep_id = await api.create_deployment(
        flow_id,
        "nightly",
        work_pool_name="pool",
        parameters={"n": 1},
        parameter_openapi_schema=schema,
        schedules=[(CronSchedule(cron="0 3 * * *"), True)],
        tags=["t"],
    )
    assert isinstance(dep_id, uuid.UUID)
    again_id = await api.create_deployment(
        flow_id, "nightly", work_pool_name="pool", parameter_openapi_schema=schema
    )
    assert again_id == dep_id
    dep = await api.read_deployment(dep_id)
    assert isinstance(dep, Deployment) and dep.work_pool_name == "pool"
    assert (await api.read_deployment_by_name("etl/nightly")).id == dep_id
    with pytest.raises(ObjectNotFound):
        await api.read_deployment_by_name("etl/nope")
    with pytest.raises(ValueError):
        await api.read_deployment_by_name("no-slash")
    assert [d.name for d in await api.read_deployments()] == ["nightly"]
    assert await api.count_deployments() == 1

    await api.update_deployment(dep_id, DeploymentUpdate(description="about", parameters={"n": 5}))
    assert (await api.read_deployment(dep_id)).parameters == {"n": 5}
    made = await api.create_deployment_schedules(
        dep_id, [(IntervalSchedule(interval=dt.timedelta(hours=1)), True)]
    )
    assert len(made) == 1
    schedules = await api.read_deployment_schedules(dep_id)
    await api.update_deployment_schedule(dep_id, schedules[0].id, active=False)
    await api.delete_deployment_schedule(dep_id, schedules[0].id)
    assert len(await api.read_deployment_schedules(dep_id)) == len(schedules) - 1

    with pytest.raises(ValidationFailed) as info:
        await api.create_flow_run_from_deployment(dep_id, parameters={"n": "x"})
    assert "'n'" in str(info.value)
    run = await api.create_flow_run_from_deployment(
        dep_id, parameters={"n": 2}, idempotency_key="once", tags=["extra"]
    )
    again = await api.create_flow_run_from_deployment(dep_id, idempotency_key="once")
    assert again.id == run.id and run.parameters == {"n": 2} and run.work_pool_name == "pool"
    assert run.tags == ["extra"]  # the upsert above replaced the deployment's tags
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    due = await api.get_scheduled_flow_runs_for_deployments([dep_id], scheduled_before=soon)
    assert [r.id for r in due] == [run.id]
    claimed = await api.get_scheduled_flow_runs_for_work_pool("pool", scheduled_before=soon)
    assert [c.flow_run.id for c in claimed] == [run.id]
    assert await api.get_scheduled_flow_runs_for_work_pool("pool", scheduled_before=soon) == []

    await api.pause_deployment(dep_id)
    assert (await api.read_deployment(dep_id)).paused is True
    await api.resume_deployment(dep_id)
    await api.delete_deployment(dep_id)
    with pytest.raises(ObjectNotFound):
        await api.read_deployment(dep_id)
