"""``concurrency()``/``rate_limit()`` (sync, async, v1) and tag limits in the task engine, against the embedded API."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import pytest

from flowplane import flow, task
from flowplane.concurrency import asyncio as aconc
from flowplane.concurrency import sync as conc
from flowplane.concurrency.v1 import sync as conc_v1
from flowplane.sdk import _tag_limits

#: Far longer than any hand-over should take; reaching it is a failure, not a timing budget.
GENEROUS = 30.0


@pytest.fixture(autouse=True)
def _fresh_tag_cache() -> None:
    _tag_limits.forget()


def slots(client: Any, name: str) -> int:
    return client.read_global_concurrency_limit_by_name(name).active_slots


def test_second_holder_enters_after_the_first_leaves(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with conc.concurrency("db"):
            events.append("first in")
            inside.set()
            time.sleep(0.3)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(GENEROUS)
    with conc.concurrency("db", timeout_seconds=GENEROUS):
        events.append("second in")
        assert slots(client, "db") == 1
    thread.join()
    assert events == ["first in", "first out", "second in"]
    assert slots(client, "db") == 0


def test_slots_are_given_back_when_the_block_raises(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 2})
    with pytest.raises(ZeroDivisionError):
        with conc.concurrency("db", occupy=2):
            assert slots(client, "db") == 2
            raise ZeroDivisionError("inside")
    assert slots(client, "db") == 0


def test_timeout_raises_timeout_error_and_takes_nothing(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    with conc.concurrency("db"):
        with pytest.raises(conc.AcquireConcurrencySlotTimeoutError) as caught:
            with conc.concurrency("db", timeout_seconds=0.3):
                pytest.fail("entered a full limit")
        assert isinstance(caught.value, TimeoutError)
        assert slots(client, "db") == 1
    assert slots(client, "db") == 0


def test_max_retries_gives_up(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    with conc.concurrency("db"):
        with pytest.raises(conc.ConcurrencySlotAcquisitionError, match="retries"):
            with conc.concurrency("db", max_retries=0):
                pytest.fail("entered a full limit")


def test_missing_limits_run_unlimited_unless_strict(client) -> None:
    ran = []
    with conc.concurrency("nowhere"):
        ran.append(1)
    assert ran == [1]
    with pytest.raises(conc.ConcurrencySlotAcquisitionError, match="must be created"):
        with conc.concurrency("nowhere", strict=True):
            pytest.fail("strict ran without a limit")


def test_create_if_missing_makes_inactive_placeholders(client) -> None:
    with conc.concurrency(["new-a", "new-b"], create_if_missing=True):
        pass
    for name in ("new-a", "new-b"):
        limit = client.read_global_concurrency_limit_by_name(name)
        assert (limit.active, limit.limit, limit.active_slots) == (False, 1, 0)


def test_occupy_more_than_the_limit_is_an_error(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    with pytest.raises(conc.ConcurrencySlotAcquisitionError):
        with conc.concurrency("db", occupy=2):
            pytest.fail("entered")
    with pytest.raises(ValueError):
        with conc.concurrency("db", occupy=0):
            pytest.fail("entered")
    assert slots(client, "db") == 0


def test_several_limits_are_taken_together(client) -> None:
    client.create_global_concurrency_limit({"name": "a", "limit": 1})
    client.create_global_concurrency_limit({"name": "b", "limit": 1})
    with conc.concurrency("b"):
        with pytest.raises(TimeoutError):
            with conc.concurrency(["a", "b"], timeout_seconds=0.2):
                pass
        assert slots(client, "a") == 0  # all or none
    with conc.concurrency(["a", "b"]):
        assert (slots(client, "a"), slots(client, "b")) == (1, 1)


def test_async_concurrency_serializes_coroutines(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    log: list[str] = []

    async def worker(i: int) -> None:
        async with aconc.concurrency("db", timeout_seconds=GENEROUS):
            log.append(f"in {i}")
            await asyncio.sleep(0.05)
            log.append(f"out {i}")

    async def main() -> None:
        await asyncio.gather(*(worker(i) for i in range(3)))

    asyncio.run(main())
    assert len(log) == 6
    for i in range(0, 6, 2):  # every entry is followed by its own exit
        assert log[i].replace("in", "out") == log[i + 1]
    assert slots(client, "db") == 0


def test_async_timeout(client) -> None:
    client.create_global_concurrency_limit({"name": "db", "limit": 0})

    async def main() -> None:
        async with aconc.concurrency("db", timeout_seconds=0.2):
            pass

    # A limit of 0 can never admit a slot: the server refuses outright.
    with pytest.raises(aconc.ConcurrencySlotAcquisitionError):
        asyncio.run(main())


def test_rate_limit_requires_decay_and_spaces_calls(client) -> None:
    client.create_global_concurrency_limit({"name": "plain", "limit": 5})
    with pytest.raises(conc.ConcurrencySlotAcquisitionError):
        conc.rate_limit("plain")
    client.create_global_concurrency_limit(
        {"name": "api", "limit": 1, "slot_decay_per_second": 10.0}
    )
    started = time.monotonic()
    for _ in range(3):
        conc.rate_limit("api", timeout_seconds=GENEROUS)
    # Three slots at ten a second from a limit of one: at least two decays happened.
    assert time.monotonic() - started >= 0.15
    asyncio.run(aconc.rate_limit("api", timeout_seconds=GENEROUS))


def test_v1_concurrency_holds_tag_slots_for_a_task_run(client) -> None:
    client.create_concurrency_limit("etl", 1)
    run_id = uuid.uuid4()
    with conc_v1.concurrency("etl", task_run_id=run_id):
        assert client.read_concurrency_limit_by_tag("etl").active_slots == [run_id]
        with pytest.raises(TimeoutError):
            with conc_v1.concurrency("etl", task_run_id=uuid.uuid4(), timeout_seconds=0.2):
                pass
    assert client.read_concurrency_limit_by_tag("etl").active_slots == []


# --- the engine ----------------------------------------------------------------------------


def test_tagged_tasks_under_a_tag_limit_never_overlap(client) -> None:
    client.create_concurrency_limit("db", 1)
    spans: list[tuple[float, float]] = []

    @task(tags=["db"])
    def work(i: int) -> int:
        start = time.monotonic()
        time.sleep(0.02)
        spans.append((start, time.monotonic()))
        return i

    @flow
    def many() -> list[int]:
        return [f.result() for f in work.map(range(6))]

    state = many(return_state=True)
    assert state.result() == list(range(6))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert client.read_concurrency_limit_by_tag("db").active_slots == []
    assert slots(client, "tag:db") == 0
    from sdk_support import task_runs_of

    runs = task_runs_of(client, state.state_details.flow_run_id, count=6)
    names = {s.name for r in runs for s in client.read_task_run_states(r.id)}
    assert "AwaitingConcurrencySlot" in names  # the ones that waited said so


def test_a_tagged_task_that_fails_gives_its_slot_back(client) -> None:
    client.create_concurrency_limit("db", 1)

    @task(tags=["db"], retries=1)
    def boom() -> None:
        raise RuntimeError("no")

    @flow
    def f() -> bool:
        return boom(return_state=True).is_failed()

    assert f()
    assert slots(client, "tag:db") == 0


def test_a_tag_limit_of_zero_fails_the_task(client) -> None:
    client.create_concurrency_limit("never", 0)

    @task(tags=["never"])
    def blocked() -> int:
        return 1

    @flow
    def f() -> bool:
        return blocked(return_state=True).is_failed()

    assert f()


def test_tags_without_limits_are_remembered(client) -> None:
    @task(tags=["free"])
    def free() -> int:
        return 1

    @task
    def untagged() -> int:
        return 2

    @flow
    def f() -> int:
        return free() + untagged()

    assert _tag_limits.maybe_limited(["free"])
    assert f() == 3
    assert not _tag_limits.maybe_limited(["free"])  # the next runs ask nobody
    client.create_concurrency_limit("free", 1)
    _tag_limits.forget()
    assert f() == 3
    assert _tag_limits.maybe_limited(["free"])  # a limit exists: every run takes a slot
    assert slots(client, "tag:free") == 0


def test_lease_keeper_renews_and_notices_a_lost_lease(client) -> None:
    from flowplane.sdk import _api
    from flowplane.sdk._concurrency import LeaseKeeper

    client.create_global_concurrency_limit({"name": "db", "limit": 1})
    lease = client.increment_concurrency_slots_with_lease("db", 1, lease_duration=60)
    settings = _api.current_settings()
    keeper = LeaseKeeper(
        lease.lease_id, 60, lambda: _api.sync_client(settings), raise_on_failure=True, interval=0.05
    ).start()
    time.sleep(0.3)  # several renewals of a live lease: nothing to report
    assert keeper.failure is None
    client.release_concurrency_slots_with_lease(lease.lease_id)  # lost, as if it had lapsed
    deadline = time.monotonic() + GENEROUS
    while keeper.failure is None and time.monotonic() < deadline:
        time.sleep(0.05)
    keeper.stop()
    with pytest.raises(conc.ConcurrencySlotAcquisitionError, match="expired"):
        keeper.check()
