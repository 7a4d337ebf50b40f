"""Embedded mode hands event and log batches to the routers' ingestion function directly: same results, same errors."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from flowplane.client import get_client
from flowplane.exceptions import ValidationFailed


def _event(name: str, resource_id: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(timezone.utc).isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": resource_id, "note": "x"},
        "related": [{"prefect.resource.id": "prefect.flow.1", "prefect.resource.role": "flow"}],
        "payload": {"n": 1},
    }


def _stored_events(client: Any, resource_id: str, expected: int) -> list[Any]:
    deadline = time.monotonic() + 30
    while True:
        page = client.read_events({"resource": {"id": [resource_id]}}, limit=50)
        if len(page.events) >= expected or time.monotonic() > deadline:
            return list(page.events)
        time.sleep(0.05)


def test_events_sent_embedded_are_stored_as_sent(flowplane_home: Path) -> None:
    events = [_event("test.embedded.one", "test.r.1"), _event("test.embedded.two", "test.r.1")]
    with get_client(sync_client=True) as client:
        assert client.embedded
        client.create_events(events)
        stored = _stored_events(client, "test.r.1", 2)
    by_id = {str(e.id): e for e in stored}
    assert set(by_id) == {e["id"] for e in events}
    for sent in events:
        got = by_id[sent["id"]]
        assert got.event == sent["event"]
        assert got.resource == sent["resource"]
        assert got.related == sent["related"]
        assert got.payload == sent["payload"]
        assert got.occurred == datetime.fromisoformat(sent["occurred"])
        assert got.received >= got.occurred


def test_an_invalid_event_batch_is_refused_whole_and_nothing_is_stored(
    flowplane_home: Path,
) -> None:
    good = _event("test.embedded.good", "test.r.2")
    bad = _event("test.embedded.bad", "test.r.2")
    del bad["resource"]["prefect.resource.id"]
    with get_client(sync_client=True) as client:
        with pytest.raises(ValidationFailed) as caught:
            client.create_events([good, bad])
        assert caught.value.status_code == 422
        assert "prefect.resource.id" in str(caught.value.detail)
        client.create_events([_event("test.embedded.later", "test.r.2")])
        stored = _stored_events(client, "test.r.2", 1)
    assert [e.event for e in stored] == ["test.embedded.later"]


def _log(message: str, level: int = 20) -> dict[str, Any]:
    return {
        "name": "test.embedded",
        "level": level,
        "message": message,
        "timestamp": datetime.now(timezone.utc).isoformat(),
    }


def test_logs_sent_embedded_are_stored_before_the_call_returns(flowplane_home: Path) -> None:
    with get_client(sync_client=True) as client:
        client.create_logs([_log("one"), _log("two", 40)])
        rows = client.read_logs()
    assert [(r.message, r.level) for r in rows] == [("one", 20), ("two", 40)]


def test_an_invalid_log_batch_is_refused_whole(flowplane_home: Path) -> None:
    bad = _log("bad")
    del bad["level"]
    with get_client(sync_client=True) as client:
        with pytest.raises(ValidationFailed) as caught:
            client.create_logs([_log("fine"), bad])
        assert caught.value.status_code == 422
        assert client.read_logs() == []


def test_the_async_client_takes_the_same_path(flowplane_home: Path) -> None:
    async def main() -> list[Any]:
        async with get_client() as client:
            await client.create_logs([_log("async")])
            await client.create_events([_event("test.embedded.async", "test.r.3")])
            return list(await client.read_logs())

    rows = asyncio.run(main())
    assert [r.message for r in rows] == ["async"]
    with get_client(sync_client=True) as client:
        stored = _stored_events(client, "test.r.3", 1)
    assert [e.event for e in stored] == ["test.embedded.async"]


def test_the_writer_sends_events_and_logs_to_the_embedded_api_in_one_hop(
    flowplane_home: Path,
) -> None:
    from flowplane.sdk.writer import Writer

    writer = Writer(lambda: get_client(sync_client=True))
    try:
        writer.emit_event(_event("test.embedded.writer", "test.r.4"))
        writer.emit_log(_log("from the writer"))
        assert writer.flush()
        assert (writer.sent_events, writer.sent_logs, writer.failed_requests) == (1, 1, 0)
        with get_client(sync_client=True) as client:
            assert [r.message for r in client.read_logs()] == ["from the writer"]
            stored = _stored_events(client, "test.r.4", 1)
        assert [e.event for e in stored] == ["test.embedded.writer"]
    finally:
        writer.close()


def test_a_writer_batch_the_api_refuses_is_counted_as_failed_as_before(
    flowplane_home: Path,
) -> None:
    from flowplane.sdk.writer import Writer

    bad = _event("test.embedded.bad", "test.r.5")
    del bad["resource"]["prefect.resource.id"]
    writer = Writer(lambda: get_client(sync_client=True))
    try:
        writer.emit_event(bad)
        writer.emit_log(_log("with a bad event"))
        assert writer.flush()
        assert (writer.sent_events, writer.failed_requests) == (0, 1)
        writer.emit_log(_log("later"))
        assert writer.flush()
        with get_client(sync_client=True) as client:
            assert [r.message for r in client.read_logs()] == ["later"]
    finally:
        writer.close()
