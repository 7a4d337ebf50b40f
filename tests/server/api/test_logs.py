"""Logs API: bulk create, filter, sort, paginate; a bad batch writes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

T0 = dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.timezone.utc)


def log(i: int, **kwargs: Any) -> dict[str, Any]:
    body = {
        "name": "flowplane.flow_runs",
        "level": 20,
        "message": f"message {i}",
        "timestamp": (T0 + dt.timedelta(seconds=i)).isoformat(),
    }
    body.update(kwargs)
    return body


async def read(http: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await http.post("/logs/filter", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_create_and_read_back(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    run = str(uuid.uuid4())
    response = await http.post("/logs/", json=[log(2, flow_run_id=run), log(1), log(3, level=40)])
    assert response.status_code == 201
    logs = await read(http)
    assert [entry["message"] for entry in logs] == ["message 1", "message 2", "message 3"]
    first = logs[1]
    assert first["flow_run_id"] == run and first["task_run_id"] is None
    assert uuid.UUID(first["id"]) and first["created"]
    assert dt.datetime.fromisoformat(first["timestamp"]) == T0 + dt.timedelta(seconds=2)


async def test_filters(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    run, task = str(uuid.uuid4()), str(uuid.uuid4())
    await http.post(
        "/logs/",
        json=[
            log(0, flow_run_id=run, level=10),
            log(1, flow_run_id=run, task_run_id=task, level=30, message="Disk is FULL"),
            log(2, level=50, name="worker"),
        ],
    )

    async def messages(flt: dict[str, Any]) -> list[str]:
        return [entry["message"] for entry in await read(http, logs=flt)]

    assert await messages({"level": {"ge_": 30}}) == ["Disk is FULL", "message 2"]
    assert await messages({"level": {"le_": 30, "ge_": 20}}) == ["Disk is FULL"]
    assert await messages({"flow_run_id": {"any_": [run]}}) == ["message 0", "Disk is FULL"]
    assert await messages({"task_run_id": {"any_": [task]}}) == ["Disk is FULL"]
    assert await messages({"task_run_id": {"is_null_": True}}) == ["message 0", "message 2"]
    assert await messages({"text": {"query": "full"}}) == ["Disk is FULL"]
    assert await messages({"text": {"query": "worker"}}) == ["message 2"]
    after = (T0 + dt.timedelta(seconds=1)).isoformat()
    assert await messages({"timestamp": {"after_": after}}) == ["Disk is FULL", "message 2"]
    assert await messages({"timestamp": {"before_": after}}) == ["message 0", "Disk is FULL"]
    assert await messages(
        {"operator": "or_", "level": {"ge_": 50}, "task_run_id": {"any_": [task]}}
    ) == [
        "Disk is FULL",
        "message 2",
    ]


async def test_sort_and_pagination(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    await http.post("/logs/", json=[log(i) for i in range(7)])
    newest = await read(http, sort="TIMESTAMP_DESC", limit=3)
    assert [entry["message"] for entry in newest] == ["message 6", "message 5", "message 4"]
    page = await read(http, sort="TIMESTAMP_ASC", limit=3, offset=3)
    assert [entry["message"] for entry in page] == ["message 3", "message 4", "message 5"]
    assert await read(http, offset=7) == []


async def test_a_large_batch_is_written(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    response = await http.post("/logs/", json=[log(i % 60) for i in range(4000)])
    assert response.status_code == 201
    assert len(await read(http, limit=200, offset=3800)) == 200


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "message": "no level", "timestamp": T0.isoformat()},
        {**log(9), "level": "loud"},
        {**log(9), "unexpected": True},
        {**log(9), "flow_run_id": "not-a-uuid"},
    ],
)
async def test_an_invalid_line_rejects_the_whole_batch(
    served: tuple[Any, httpx.AsyncClient], bad: dict[str, Any]
) -> None:
    _, http = served
    response = await http.post("/logs/", json=[log(1), bad])
    assert response.status_code == 422
    assert await read(http) == []


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 201},
        {"limit": -1},
        {"offset": -1},
        {"sort": "NAME_ASC"},
        {"logs": {"level": {"gt_": 3}}},
    ],
)
async def test_invalid_queries_are_422(
    served: tuple[Any, httpx.AsyncClient], body: dict[str, Any]
) -> None:
    _, http = served
    assert (await http.post("/logs/filter", json=body)).status_code == 422


async def test_created_logs_are_published(served: tuple[Any, httpx.AsyncClient]) -> None:
    app, http = served
    subscription = app.state.bus.subscribe("logs")
    await http.post("/logs/", json=[log(1), log(2)])
    published = subscription.drain_nowait()
    assert [entry.message for entry in published] == ["message 1", "message 2"]
    assert all(entry.id is not None for entry in published)
    subscription.close()


async def test_null_limit_and_offset_mean_the_defaults(
    served: tuple[Any, httpx.AsyncClient],
) -> None:
    """Prefect's client sends ``null`` for whatever the caller did not set."""
    _, http = served
    await http.post("/logs/", json=[log(i) for i in range(3)])
    body = {"logs": None, "limit": None, "offset": None, "sort": "TIMESTAMP_DESC"}
    response = await http.post("/logs/filter", json=body)
    assert response.status_code == 200
    assert [entry["message"] for entry in response.json()] == [
        "message 2",
        "message 1",
        "message 0",
    ]
