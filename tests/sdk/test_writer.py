"""The background writer: batches reach the API, and a producer faster than the API is held back."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from flowplane.client import get_client
from flowplane.sdk.writer import Writer


def _log(i: int, flow_run_id: str) -> dict:
    return {
        "name": "writer-test",
        "level": 20,
        "message": f"line {i}",
        "timestamp": dt.datetime.now(dt.timezone.utc),
        "flow_run_id": flow_run_id,
    }


def test_backlog_is_bounded_and_nothing_is_lost() -> None:
    flow_run_id = str(uuid.uuid4())
    writer = Writer(
        lambda: get_client(sync_client=True), interval=0.05, batch_size=20, max_backlog=100
    )
    seen_backlog = 0
    try:
        for i in range(2000):
            writer.emit_log(_log(i, flow_run_id))
            seen_backlog = max(seen_backlog, writer.pending())
        assert writer.flush(timeout=60)
    finally:
        writer.close()
    # A producer returns from emit only with room left (one item over, at most, per producer).
    assert seen_backlog <= 101
    with get_client(sync_client=True) as client:
        logs = []
        for offset in range(0, 2000, 200):
            logs += client.read_logs(
                log_filter={"flow_run_id": {"any_": [flow_run_id]}}, limit=200, offset=offset
            )
    assert sorted(int(log.message.split()[1]) for log in logs) == list(range(2000))


def test_flush_from_several_threads_sends_everything_before_it() -> None:
    flow_run_id = str(uuid.uuid4())
    writer = Writer(lambda: get_client(sync_client=True), interval=1.0)
    results: list[bool] = []

    def produce(base: int) -> None:
        for i in range(50):
            writer.emit_log(_log(base + i, flow_run_id))
        results.append(writer.flush(timeout=30))

    threads = [threading.Thread(target=produce, args=(n * 50,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        writer.close()
    assert results == [True] * 4
    assert writer.sent_logs == 200
