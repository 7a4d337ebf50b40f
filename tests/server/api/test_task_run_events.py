"""Task-run state events: recorded as task_run_state rows only, read back as events.

Clients send a ``prefect.task-run.<State>`` event per state change. The server keeps
the state rows (not a second copy in ``event``) and every read of events - filters,
pages, counts - synthesizes the events from those rows, mixed with stored events.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from app_support import post_and_store

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
TYPES = [("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed")]


async def make_flow_run(http: httpx.AsyncClient, flow_name: str = "etl") -> dict[str, Any]:
    """A flow run, moved to Running (so its own state events are stored ones)."""
    flow = (await http.post("/flows/", json={"name": flow_name})).json()
    run = (
        await http.post(
            "/flow_runs/",
            json={"flow_id": flow["id"], "name": f"{flow_name}-run", "state": {"type": "PENDING"}},
        )
    ).json()
    response = await http.post(
        f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert response.status_code in (200, 201), response.text
    run["flow_name"] = flow["name"]
    return run


def task_run_events(
    flow_run: dict[str, Any] | None,
    name: str,
    start: dt.datetime,
    tags: tuple[str, ...] = ("demo",),
    dynamic_key: str = "0",
) -> list[dict[str, Any]]:
    """A task run's Pending, Running and Completed events, as the SDK (and Prefect's client) send
    them."""
    task_run_id = uuid.uuid4()
    related: list[dict[str, str]] = []
    if flow_run is not None:
        related = [
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": flow_run["name"],
            },
            {
                "prefect.resource.id": f"prefect.flow.{flow_run['flow_id']}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow_run["flow_name"],
            },
        ]
    related += [
        {"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"} for t in tags
    ]
    events = []
    initial: dict[str, Any] | None = None
    for i, (type_, state_name) in enumerate(TYPES):
        occurred = start + dt.timedelta(seconds=i)
        run_count = 0 if type_ == "PENDING" else 1
        events.append(
            {
                "id": str(uuid.uuid4()),
                "occurred": occurred.isoformat(),
                "event": f"prefect.task-run.{state_name}",
                "resource": {
                    "prefect.resource.id": f"prefect.task-run.{task_run_id}",
                    "prefect.resource.name": name,
                    "prefect.run-count": str(run_count),
                    "prefect.state-message": "",
                    "prefect.state-name": state_name,
                    "prefect.state-timestamp": occurred.isoformat(),
                    "prefect.state-type": type_,
                    "prefect.orchestration": "client",
                },
                "related": related,
                "payload": {
                    "intended": {"from": initial["type"] if initial else None, "to": type_},
                    "initial_state": initial,
                    "validated_state": {
                        "type": type_,
                        "name": state_name,
                        "message": None,
                        "state_details": {},
                        "data": None,
                    },
                    "task_run": {
                        "name": name,
                        "task_key": f"{name.split('-')[0]}-abc",
                        "dynamic_key": dynamic_key,
                        "flow_run_run_count": 1,
                        "empirical_policy": {},
                        "tags": list(tags),
                        "task_inputs": {},
                        "task_version": None,
                        "run_count": run_count,
                    },
                },
            }
        )
        initial = {"type": type_, "name": state_name}
    return events


async def query(
    http: httpx.AsyncClient, flt: dict[str, Any] | None = None, limit: int = 200
) -> dict[str, Any]:
    response = await http.post("/events/filter", json={"filter": flt or {}, "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()


async def ids(http: httpx.AsyncClient, flt: dict[str, Any] | None = None) -> list[str]:
    return [e["id"] for e in (await query(http, flt))["events"]]


async def stored_event_ids(app: Any) -> set[str]:
    from flowplane.server.db import tables as t

    async with app.state.db.read_session() as session:
        rows = await session.execute(sa.select(t.Event.id))
        return {str(i) for i in rows.scalars()}


@pytest.fixture
async def scene(served: tuple[Any, httpx.AsyncClient]) -> dict[str, Any]:
    """Two flow runs with two task runs each (one tagged "slow"), and one task run outside a flow run."""
    _, http = served
    a = await make_flow_run(http, "alpha")
    b = await make_flow_run(http, "beta")
    sent = {
        "a1": task_run_events(a, "load-0", NOW - dt.timedelta(minutes=50)),
        "a2": task_run_events(a, "save-0", NOW - dt.timedelta(minutes=40), tags=("demo", "slow")),
        "b1": task_run_events(b, "load-0", NOW - dt.timedelta(minutes=30)),
        "b2": task_run_events(b, "save-0", NOW - dt.timedelta(minutes=20), dynamic_key="1"),
        "free": task_run_events(None, "solo-0", NOW - dt.timedelta(minutes=10), tags=()),
    }
    await post_and_store(served, [e for events in sent.values() for e in events])
    return {"a": a, "b": b, "sent": sent}


async def test_task_run_events_read_back_as_sent_and_are_not_stored(
    served: tuple[Any, httpx.AsyncClient], scene: dict[str, Any]
) -> None:
    app, http = served
    sent = [e for events in scene["sent"].values() for e in events]
    stored = await stored_event_ids(app)
    assert not stored & {e["id"] for e in sent}
    assert stored  # the flow runs' own events are stored as before

    page = await query(http, {"event": {"prefix": ["prefect.task-run."]}})
    assert page["total"] == len(sent)
    read = {e["id"]: e for e in page["events"]}
    assert set(read) == {e["id"] for e in sent}
    for event in sent:
        got = read[event["id"]]
        assert got["event"] == event["event"]
        assert dt.datetime.fromisoformat(got["occurred"]) == dt.datetime.fromisoformat(
            event["occurred"]
        )
        expected_resource = {k: v for k, v in event["resource"].items() if k != "prefect.run-count"}
        resource = dict(got["resource"])
        assert resource.pop("prefect.run-count") == "1"  # the run's count
        assert dt.datetime.fromisoformat(
            resource.pop("prefect.state-timestamp")
        ) == dt.datetime.fromisoformat(expected_resource.pop("prefect.state-timestamp"))
        assert resource == expected_resource
        assert got["related"] == event["related"]
        payload = got["payload"]
        assert payload["initial_state"] == event["payload"]["initial_state"]
        assert payload["intended"] == event["payload"]["intended"]
        assert payload["validated_state"]["type"] == event["payload"]["validated_state"]["type"]
        assert payload["validated_state"]["name"] == event["payload"]["validated_state"]["name"]
        assert payload["task_run"]["name"] == event["payload"]["task_run"]["name"]
        assert payload["task_run"]["task_key"] == event["payload"]["task_run"]["task_key"]
        assert got["received"] is not None


async def test_filters_mean_the_same_for_synthesized_events(
    served: tuple[Any, httpx.AsyncClient], scene: dict[str, Any]
) -> None:
    _, http = served
    sent, a = scene["sent"], scene["a"]

    def of(*keys: str) -> set[str]:
        return {e["id"] for k in keys for e in sent[k]}

    flow_run_a = f"prefect.flow-run.{a['id']}"
    # Related to a flow run: its task runs' events only (its own events name it as resource).
    assert set(await ids(http, {"related": {"id": [flow_run_a]}})) == of("a1", "a2")
    # Any resource: the flow run's own stored events as well.
    both = await query(http, {"any_resource": {"id": [flow_run_a]}})
    assert of("a1", "a2") < {e["id"] for e in both["events"]}
    assert {e["event"] for e in both["events"]} >= {"prefect.flow-run.Running"}
    # The task run's own resource.
    task_run = sent["b1"][0]["resource"]["prefect.resource.id"]
    assert set(await ids(http, {"resource": {"id": [task_run]}})) == of("b1")
    assert set(await ids(http, {"resource": {"id_prefix": [task_run[:-4]]}})) == of("b1")
    # Names: prefix, exact, exclusions.
    flow_run_only = await query(http, {"event": {"prefix": ["prefect.flow-run."]}})
    assert flow_run_only["events"] and all(
        e["event"].startswith("prefect.flow-run.") for e in flow_run_only["events"]
    )
    completed = await ids(http, {"event": {"name": ["prefect.task-run.Completed"]}})
    assert set(completed) == {events[2]["id"] for events in sent.values()}
    not_running = await query(
        http,
        {
            "event": {
                "prefix": ["prefect.task-run."],
                "exclude_name": ["prefect.task-run.Running"],
            }
        },
    )
    assert not_running["total"] == 10
    no_task_runs = await query(http, {"event": {"exclude_prefix": ["prefect.task-run."]}})
    assert not of(*sent) & {e["id"] for e in no_task_runs["events"]}
    assert no_task_runs["total"] == len(no_task_runs["events"]) > 0
    # Related roles, labels and tags.
    assert set(await ids(http, {"related": {"id": ["prefect.tag.slow"]}})) == of("a2")
    assert set(
        await ids(http, {"related": {"resources_in_roles": [["prefect.tag.slow", "tag"]]}})
    ) == of("a2")
    assert set(
        await ids(
            http,
            {
                "event": {"prefix": ["prefect.task-run."]},
                "related": {"role": ["flow"], "labels": {"prefect.resource.name": "be*"}},
            },
        )
    ) == of("b1", "b2")
    assert set(
        await ids(http, {"resource": {"labels": {"prefect.resource.name": "save-*"}}})
    ) == of("a2", "b2")
    assert set(
        await ids(
            http,
            {
                "resource": {
                    "labels": {"prefect.state-type": "RUNNING", "prefect.orchestration": "client"}
                }
            },
        )
    ) == {events[1]["id"] for events in sent.values()}
    assert set(
        await ids(http, {"any_resource": {"labels": {"prefect.resource.id": "prefect.tag.sl*"}}})
    ) == of("a2")
    # Among all resources, the event's own one has the role "" (stored events say the same).
    assert set(
        await ids(
            http,
            {
                "any_resource": {
                    "labels": {"prefect.resource.role": "", "prefect.resource.name": "solo-*"}
                }
            },
        )
    ) == of("free")
    # Time range and ids.
    window = {
        "since": (NOW - dt.timedelta(minutes=45)).isoformat(),
        "until": (NOW - dt.timedelta(minutes=15)).isoformat(),
    }
    in_window = await query(http, {"occurred": window, "event": {"prefix": ["prefect.task-run."]}})
    assert {e["id"] for e in in_window["events"]} == of("a2", "b1", "b2")
    picked = [sent["a1"][1]["id"], sent["free"][0]["id"]]
    assert set(await ids(http, {"id": {"id": picked}})) == set(picked)
    # Text search finds them by name.
    assert set(await ids(http, {"text": {"query": "solo"}})) == of("free")


async def test_order_and_paging_span_stored_and_synthesized_events(
    served: tuple[Any, httpx.AsyncClient], scene: dict[str, Any]
) -> None:
    _, http = served
    everything = (await query(http, {"order": "ASC"}))["events"]
    kinds = {e["event"].split(".")[1] for e in everything}
    assert kinds >= {"flow-run", "task-run"}
    keys = [(dt.datetime.fromisoformat(e["occurred"]), e["id"]) for e in everything]
    assert keys == sorted(keys)
    newest_first = await ids(http, {"order": "DESC"})
    assert newest_first == [e["id"] for e in reversed(everything)]

    for order in ("ASC", "DESC"):
        page = await query(http, {"order": order}, limit=4)
        assert page["total"] == len(everything)
        seen = [e["id"] for e in page["events"]]
        while page["next_page"]:
            response = await http.get(page["next_page"].split("/api", 1)[1])
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [e["id"] for e in page["events"]]
        expected = [e["id"] for e in everything]
        assert seen == (expected if order == "ASC" else expected[::-1])


async def test_counts_include_synthesized_events(
    served: tuple[Any, httpx.AsyncClient], scene: dict[str, Any]
) -> None:
    _, http = served
    flt = {"event": {"prefix": ["prefect.task-run.", "prefect.flow-run."]}}
    response = await http.post("/events/count-by/event", json={"filter": flt})
    assert response.status_code == 200, response.text
    counts = {c["value"]: c["count"] for c in response.json()}
    assert counts["prefect.task-run.Pending"] == 5
    assert counts["prefect.task-run.Running"] == 5
    assert counts["prefect.task-run.Completed"] == 5
    assert counts["prefect.flow-run.Running"] == 2

    response = await http.post("/events/count-by/day", json={"filter": flt})
    assert response.status_code == 200, response.text
    total = (await query(http, flt))["total"]
    assert sum(c["count"] for c in response.json()) == total >= 17

    response = await http.post(
        "/events/count-by/resource", json={"filter": {"event": {"prefix": ["prefect.task-run."]}}}
    )
    by_resource = response.json()
    assert len(by_resource) == 5
    assert {c["count"] for c in by_resource} == {3}
    assert {c["label"] for c in by_resource} == {"load-0", "save-0", "solo-0"}

    distinct = await query(
        http, {"event": {"prefix": ["prefect.task-run."]}, "resource": {"distinct": True}}
    )
    assert distinct["total"] == 5
    assert {e["event"] for e in distinct["events"]} == {"prefect.task-run.Completed"}


async def test_task_run_events_stored_before_are_not_returned_twice(
    served: tuple[Any, httpx.AsyncClient],
) -> None:
    """A database written before this change holds task-run events as rows too."""
    from flowplane.schemas.events import Event
    from flowplane.server.store import events as store

    app, http = served
    flow_run = await make_flow_run(http)
    sent = task_run_events(flow_run, "load-0", NOW - dt.timedelta(minutes=5))
    await post_and_store(served, sent)
    async with app.state.db.session() as session:
        await store.write_many(session, [Event.model_validate(e).receive() for e in sent])
    assert {e["id"] for e in sent} <= await stored_event_ids(app)

    page = await query(http, {"event": {"prefix": ["prefect.task-run."]}})
    assert page["total"] == 3
    assert sorted(e["id"] for e in page["events"]) == sorted(e["id"] for e in sent)
    response = await http.post(
        "/events/count-by/event", json={"filter": {"event": {"prefix": ["prefect.task-run."]}}}
    )
    assert sum(c["count"] for c in response.json()) == 3


async def test_events_out_backfill_includes_synthesized_events(
    served: tuple[Any, httpx.AsyncClient],
) -> None:
    """The websocket's backfill reads them from the database (a fresh bus has none)."""
    from flowplane.schemas.events import EventFilter
    from flowplane.server.api.events import _backfill
    from flowplane.server.events.bus import EventBus

    app, http = served
    flow_run = await make_flow_run(http)
    sent = task_run_events(flow_run, "load-0", NOW - dt.timedelta(minutes=5))
    await post_and_store(served, sent)
    flt = EventFilter.model_validate(
        {
            "occurred": {"since": (NOW - dt.timedelta(minutes=10)).isoformat()},
            "related": {"id": [f"prefect.flow-run.{flow_run['id']}"]},
            "order": "ASC",
        }
    )
    backfilled = await _backfill(app.state.db, EventBus(), flt)
    assert [str(e.id) for e in backfilled] == [e["id"] for e in sent]
    assert [e.event for e in backfilled] == [e["event"] for e in sent]
