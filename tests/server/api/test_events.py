"""Events API: receive, store, filter by every criterion, page, count."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest
from app_support import post_and_store

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def event(name: str, resource_id: str, minutes_ago: float = 0, **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event": name,
        "occurred": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "resource": {"prefect.resource.id": resource_id},
        "related": [],
        "payload": {},
    }
    body.update(kwargs)
    return body


async def query(
    http: httpx.AsyncClient, flt: dict[str, Any] | None = None, limit: int = 50
) -> dict[str, Any]:
    response = await http.post("/events/filter", json={"filter": flt, "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()


async def names(http: httpx.AsyncClient, flt: dict[str, Any]) -> list[str]:
    page = await query(http, flt)
    return sorted(e["event"] for e in page["events"])


SAMPLE = [
    event(
        "prefect.flow-run.Completed",
        "prefect.flow-run.1",
        minutes_ago=1,
        resource={
            "prefect.resource.id": "prefect.flow-run.1",
            "prefect.resource.name": "brave-fox",
            "env": "prod",
        },
        related=[
            {
                "prefect.resource.id": "prefect.flow.etl",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "etl",
            },
            {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
        ],
        payload={"note": "all rows loaded"},
    ),
    event(
        "prefect.flow-run.Failed",
        "prefect.flow-run.2",
        minutes_ago=2,
        resource={
            "prefect.resource.id": "prefect.flow-run.2",
            "prefect.resource.name": "calm-owl",
            "env": "dev",
        },
        related=[{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow"}],
        payload={"note": "disk full"},
    ),
    event(
        "prefect.task-run.Running",
        "prefect.task-run.3",
        minutes_ago=3,
        related=[
            {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.role": "flow-run"},
            {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
        ],
    ),
    event("custom.ping", "my.thing_100%", minutes_ago=4),
]


async def test_events_are_received_stored_and_returned_newest_first(
    served: tuple[Any, httpx.AsyncClient],
) -> None:
    _, http = served
    await post_and_store(served, SAMPLE)
    page = await query(http)
    assert page["total"] == 4
    assert page["next_page"] is None
    assert [e["event"] for e in page["events"]] == [e["event"] for e in SAMPLE]
    first = page["events"][0]
    assert first["id"] == SAMPLE[0]["id"]
    assert first["resource"]["prefect.resource.name"] == "brave-fox"
    assert first["related"][0]["prefect.resource.role"] == "flow"
    assert first["payload"] == {"note": "all rows loaded"}
    assert dt.datetime.fromisoformat(first["received"]) >= dt.datetime.fromisoformat(
        first["occurred"]
    )

    ascending = await query(http, {"order": "ASC"})
    assert [e["event"] for e in ascending["events"]] == [e["event"] for e in reversed(SAMPLE)]


async def test_duplicate_event_ids_are_stored_once(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    one = event("dup.event", "r.1")
    await post_and_store(served, [one, one])
    await post_and_store(served, [one])
    assert (await query(http))["total"] == 1


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (
            {"event": {"prefix": ["prefect.flow-run."]}},
            ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
        ),
        ({"event": {"exclude_prefix": ["prefect."]}}, ["custom.ping"]),
        ({"event": {"name": ["prefect.flow-run.Failed"]}}, ["prefect.flow-run.Failed"]),
        (
            {"event": {"prefix": ["prefect."], "exclude_name": ["prefect.flow-run.Failed"]}},
            ["prefect.flow-run.Completed", "prefect.task-run.Running"],
        ),
        ({"resource": {"id": ["prefect.flow-run.2"]}}, ["prefect.flow-run.Failed"]),
        ({"resource": {"id_prefix": ["prefect.task-run."]}}, ["prefect.task-run.Running"]),
        ({"resource": {"id_prefix": ["my.thing_"]}}, ["custom.ping"]),
        ({"resource": {"id_prefix": ["my.thing%"]}}, []),  # LIKE wildcards are escaped
        ({"resource": {"labels": {"env": "prod"}}}, ["prefect.flow-run.Completed"]),
        (
            {"resource": {"labels": {"env": ["prod", "dev"]}}},
            ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
        ),
        ({"resource": {"labels": {"env": "!prod"}}}, ["prefect.flow-run.Failed"]),
        ({"resource": {"labels": {"prefect.resource.name": "*-o?l"}}}, ["prefect.flow-run.Failed"]),
        (
            {"resource": {"labels": {"prefect.resource.id": "prefect.flow-run.*"}}},
            ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
        ),
        ({"resource": {"labels": {"env": []}}}, []),
        (
            {"related": {"id": ["prefect.flow.etl"]}},
            ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
        ),
        ({"related": {"role": ["flow-run"]}}, ["prefect.task-run.Running"]),
        (
            {"related": {"id": ["prefect.flow-run.1"]}},
            ["prefect.task-run.Running"],
        ),  # not the own resource
        ({"related": {"id": ["prefect.flow.etl"], "role": ["tag"]}}, []),
        (
            {"related": {"resources_in_roles": [["prefect.tag.nightly", "tag"]]}},
            ["prefect.flow-run.Completed", "prefect.task-run.Running"],
        ),
        ({"related": {"labels": {"prefect.resource.name": "etl"}}}, ["prefect.flow-run.Completed"]),
        (
            {"related": {"labels": {"prefect.resource.role": "flow"}}},
            ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
        ),
        ({"related": [{"role": ["flow"]}, {"role": ["tag"]}]}, ["prefect.flow-run.Completed"]),
        (
            {"any_resource": {"id": ["prefect.flow-run.1"]}},
            ["prefect.flow-run.Completed", "prefect.task-run.Running"],
        ),
        (
            {"any_resource": {"id_prefix": ["prefect.tag."]}},
            ["prefect.flow-run.Completed", "prefect.task-run.Running"],
        ),
        (
            {"any_resource": {"labels": {"prefect.resource.name": "calm-*"}}},
            ["prefect.flow-run.Failed"],
        ),
        (
            {"any_resource": [{"id_prefix": ["prefect.tag."]}, {"id_prefix": ["prefect.flow."]}]},
            ["prefect.flow-run.Completed"],
        ),
        ({"text": {"query": "rows"}}, ["prefect.flow-run.Completed"]),
        ({"text": {"query": "DISK"}}, ["prefect.flow-run.Failed"]),
        ({"text": {"query": "nightly -loaded"}}, ["prefect.task-run.Running"]),
        ({"text": {"query": '"disk full" +owl'}}, ["prefect.flow-run.Failed"]),
        ({"text": {"query": "100%"}}, ["custom.ping"]),
    ],
)
async def test_filter_criteria(
    served: tuple[Any, httpx.AsyncClient], flt: dict[str, Any], expected: list[str]
) -> None:
    _, http = served
    await post_and_store(served, SAMPLE)
    assert await names(http, flt) == sorted(expected)


async def test_filter_by_id_and_time(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    old = event("old.event", "r.old", minutes_ago=3 * 24 * 60)
    await post_and_store(served, [*SAMPLE, old])
    assert await names(http, {"id": {"id": [SAMPLE[1]["id"]]}}) == ["prefect.flow-run.Failed"]
    # By default a query looks back one day.
    assert "old.event" not in await names(http, {})
    since = (NOW - dt.timedelta(days=4)).isoformat()
    assert "old.event" in await names(http, {"occurred": {"since": since}})
    window = {
        "since": (NOW - dt.timedelta(minutes=2, seconds=30)).isoformat(),
        "until": (NOW - dt.timedelta(seconds=90)).isoformat(),
    }
    assert await names(http, {"occurred": window}) == ["prefect.flow-run.Failed"]


async def test_distinct_resources(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    await post_and_store(
        served,
        [
            event("e.a", "r.1", minutes_ago=3),
            event("e.b", "r.1", minutes_ago=1),
            event("e.c", "r.2", minutes_ago=2),
        ],
    )
    page = await query(http, {"resource": {"distinct": True}})
    assert page["total"] == 2
    assert [e["event"] for e in page["events"]] == ["e.b", "e.c"]


async def test_paging_with_next_page(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    events = [event(f"paged.{i}", f"r.{i}", minutes_ago=i) for i in range(7)]
    await post_and_store(served, events)
    page = await query(http, {"event": {"prefix": ["paged."]}}, limit=3)
    seen = [e["event"] for e in page["events"]]
    assert page["total"] == 7
    while page["next_page"]:
        assert page["next_page"].startswith("http://test/api/events/filter/next?page-token=")
        # Events stored between pages do not shift or repeat the pages still to come.
        await post_and_store(served, [event("paged.late", "r.late")])
        response = await http.get(page["next_page"])
        assert response.status_code == 200
        page = response.json()
        assert page["total"] == 7
        seen.extend(e["event"] for e in page["events"])
    assert seen == [f"paged.{i}" for i in range(7)]


async def test_limits_and_bad_tokens(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    await post_and_store(served, [event("e", "r")])
    page = await query(http, limit=0)
    assert page["events"] == [] and page["total"] == 1 and page["next_page"] is None
    assert (await http.post("/events/filter", json={"limit": 201})).status_code == 422
    assert (await http.post("/events/filter", json={"filter": {"bogus": 1}})).status_code == 422
    assert (
        await http.get("/events/filter/next", params={"page-token": "garbage!"})
    ).status_code == 403
    assert (await http.get("/events/filter/next")).status_code == 422


async def test_invalid_events_are_rejected_and_nothing_is_published(
    served: tuple[Any, httpx.AsyncClient],
) -> None:
    app, http = served
    subscription = app.state.bus.subscribe("events")
    bad = [event("ok", "r.1"), {"event": "no resource id", "resource": {}}]
    assert (await http.post("/events", json=bad)).status_code == 422
    missing_role = event("x", "r.1", related=[{"prefect.resource.id": "a"}])
    assert (await http.post("/events", json=[missing_role])).status_code == 422
    assert subscription.pending() == 0
    subscription.close()


async def test_count_by_event_and_resource(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    await post_and_store(
        served,
        [
            event(
                "a",
                "r.1",
                5,
                resource={"prefect.resource.id": "r.1", "prefect.resource.name": "old-name"},
            ),
            event(
                "a",
                "r.1",
                1,
                resource={"prefect.resource.id": "r.1", "prefect.resource.name": "new-name"},
            ),
            event("b", "r.2", 3),
            event("a", "r.2", 2),
        ],
    )
    response = await http.post("/events/count-by/event", json={"filter": {}})
    assert response.status_code == 200
    assert [(c["value"], c["count"]) for c in response.json()] == [("a", 3), ("b", 1)]
    by_event = response.json()[0]
    assert dt.datetime.fromisoformat(by_event["start_time"]) == NOW - dt.timedelta(minutes=5)
    assert dt.datetime.fromisoformat(by_event["end_time"]) == NOW - dt.timedelta(minutes=1)

    response = await http.post(
        "/events/count-by/resource", json={"filter": {"event": {"name": ["a"]}}}
    )
    counts = response.json()
    assert [(c["value"], c["label"], c["count"]) for c in counts] == [
        ("r.1", "new-name", 2),
        ("r.2", "r.2", 1),
    ]


async def test_count_by_time_fills_empty_buckets(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    base = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.timezone.utc)

    def at(hour: float) -> dict[str, Any]:
        return event("t", "r", occurred=(base + dt.timedelta(hours=hour)).isoformat())

    await post_and_store(served, [at(0.1), at(0.5), at(2.2)])
    flt = {
        "occurred": {
            "since": base.isoformat(),
            "until": (base + dt.timedelta(hours=3, minutes=30)).isoformat(),
        }
    }
    response = await http.post(
        "/events/count-by/time", json={"filter": flt, "time_unit": "hour", "time_interval": 1}
    )
    assert response.status_code == 200, response.text
    counts = response.json()
    assert [c["count"] for c in counts] == [2, 0, 1, 0]
    assert [c["value"] for c in counts] == ["0", "1", "2", "3"]
    assert dt.datetime.fromisoformat(counts[1]["start_time"]) == base + dt.timedelta(hours=1)

    response = await http.post(
        "/events/count-by/time", json={"filter": flt, "time_unit": "minute", "time_interval": 30}
    )
    assert [c["count"] for c in response.json()] == [1, 1, 0, 0, 1, 0, 0, 0]

    response = await http.post("/events/count-by/day", json={"filter": flt})
    assert [(c["label"][:10], c["count"]) for c in response.json()] == [("2026-01-05", 3)]


async def test_count_by_rejects_bad_requests(served: tuple[Any, httpx.AsyncClient]) -> None:
    _, http = served
    week = {
        "occurred": {"since": (NOW - dt.timedelta(days=7)).isoformat(), "until": NOW.isoformat()}
    }
    too_many = await http.post(
        "/events/count-by/time", json={"filter": week, "time_unit": "second"}
    )
    assert too_many.status_code == 422
    assert "too many" in too_many.json()["detail"]
    assert (await http.post("/events/count-by/color", json={"filter": {}})).status_code == 422
    assert (
        await http.post("/events/count-by/time", json={"filter": {}, "time_interval": 0})
    ).status_code == 422
    assert (await http.post("/events/count-by/event", json={})).status_code == 422


async def test_bodies_orjson_refuses_are_still_read(served: tuple[Any, httpx.AsyncClient]) -> None:
    """Event bodies are parsed with orjson; what only the json module reads is still accepted."""
    app, http = served
    subscription = app.state.bus.subscribe("events")
    body = event("big.number", "r.1")
    text = json.dumps([{**body, "payload": {"n": 2**70}}])
    response = await http.post(
        "/events", content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code == 204, response.text
    (received,) = subscription.drain_nowait()
    assert received.payload == {"n": 2**70}
    response = await http.post(
        "/events", content="[{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    subscription.close()
