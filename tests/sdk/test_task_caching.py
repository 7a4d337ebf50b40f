"""Task caching and persisted results through the engine: Cached states, keys on the server, expiry, refresh, locks, other processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sdk_support import task_runs_of

from flowplane import flow, task
from flowplane.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from flowplane.sdk.states import State


def counting(calls: list[Any]):  # type: ignore[no-untyped-def]
    def add(x: int, y: int = 0) -> int:
        calls.append((x, y))
        return x + y

    return add


def test_a_cached_task_does_not_run_again_and_is_recorded_as_cached(
    client: Any, flowplane_home: Path
) -> None:
    calls: list[Any] = []
    add = task(counting(calls), cache_policy=INPUTS + TASK_SOURCE)

    @flow
    def pipeline() -> Any:
        return add(1, 2), add(1, 2, return_state=True), add(2, 2)

    first, second, third = pipeline()
    assert calls == [(1, 2), (2, 2)]
    assert first == 3 and third == 4
    assert isinstance(second, State)
    assert (second.type.value, second.name, second.result()) == ("COMPLETED", "Cached", 3)
    assert second.state_details.cache_key
    assert second.data["storage_key"] == second.state_details.cache_key

    state = pipeline(return_state=True)
    assert calls == [(1, 2), (2, 2)]  # every call of the second run came from the cache
    runs = task_runs_of(client, state.state_details.flow_run_id, 3)
    assert {r.state.name for r in runs} == {"Cached"}
    assert all(r.cache_key for r in runs)
    assert len({r.cache_key for r in runs}) == 2
    stored = sorted(os.listdir(flowplane_home / "storage"))
    assert sorted({r.cache_key for r in runs}) == [
        k for k in stored if k in {r.cache_key for r in runs}
    ]


def test_without_persistence_tasks_are_not_cached_and_nothing_is_written(
    flowplane_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Any] = []
    add = task(counting(calls))

    @flow
    def pipeline() -> None:
        add(1)
        add(1)

    pipeline()
    assert len(calls) == 2
    assert not (flowplane_home / "storage").exists()

    # Persisting by default turns on the DEFAULT policy, which includes the flow run id:
    # cached within a run, not across runs.
    monkeypatch.setenv("FLOWPLANE_RESULTS_PERSIST_BY_DEFAULT", "true")
    calls.clear()
    pipeline()
    pipeline()
    assert len(calls) == 2


def test_persist_result_false_and_no_cache_disable_caching(flowplane_home: Path) -> None:
    calls: list[Any] = []
    off = task(counting(calls), cache_policy=INPUTS, persist_result=False)
    none = task(counting(calls), cache_policy=NO_CACHE)

    @flow
    def pipeline() -> None:
        off(1)
        off(1)
        none(2)
        none(2)

    pipeline()
    assert len(calls) == 4


def test_cache_expiration_and_refresh_cache(flowplane_home: Path) -> None:
    calls: list[Any] = []
    fn = counting(calls)
    lasting = task(fn, cache_policy=INPUTS, cache_expiration=dt.timedelta(hours=1))
    expired = task(fn, cache_policy=INPUTS - "x" + TASK_SOURCE, cache_expiration=dt.timedelta(0))
    refresh = lasting.with_options(refresh_cache=True)

    @flow
    def pipeline() -> Any:
        return (
            lasting(1, return_state=True),
            lasting(1, return_state=True),
            expired(5, 1),
            expired(6, 1),
            refresh(1),
        )

    first, second, *_ = pipeline()
    assert calls == [(1, 0), (5, 1), (6, 1), (1, 0)]
    assert second.name == "Cached"
    assert second.state_details.cache_expiration is not None
    expires = second.state_details.cache_expiration
    assert (
        dt.timedelta(minutes=59)
        < expires - dt.datetime.now(dt.timezone.utc)
        <= dt.timedelta(hours=1)
    )


def test_cache_key_fn_and_result_storage_key(flowplane_home: Path, tmp_path: Path) -> None:
    calls: list[Any] = []
    seen_ctx: list[Any] = []

    def key_fn(ctx: Any, inputs: dict[str, Any]) -> str | None:
        seen_ctx.append(ctx.task.name)
        return None if inputs["x"] < 0 else f"by-x-{inputs['x']}"

    keyed = task(counting(calls), cache_key_fn=key_fn, name="keyed")
    named = task(
        counting(calls),
        result_storage_key="report-{parameters[x]}",
        result_storage=tmp_path / "reports",
        result_serializer="json",
    )

    @flow
    def pipeline() -> None:
        keyed(1, 1)
        keyed(1, 2)  # same key from key_fn: cached, although y differs
        keyed(-1)
        keyed(-1)  # no key: runs every time
        named(7)
        named(7)

    pipeline()
    assert calls == [(1, 1), (-1, 0), (-1, 0), (7, 0)]
    assert seen_ctx and set(seen_ctx) == {"keyed"}
    assert (flowplane_home / "storage" / "by-x-1").is_file()
    assert (tmp_path / "reports" / "report-7").read_text().count('"json"') == 1


def test_results_dropped_from_memory_load_from_storage(flowplane_home: Path) -> None:
    @task(persist_result=True, cache_result_in_memory=False)
    def big() -> list[int]:
        return list(range(5))

    @flow
    def pipeline() -> Any:
        state = big(return_state=True)
        assert state._result is not None  # the private slot is the "unset" marker
        return state.result(), big()

    assert pipeline() == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])


def test_a_value_the_serializer_cannot_store_fails_the_task(flowplane_home: Path) -> None:
    @task(result_serializer="json", persist_result=True)
    def odd() -> object:
        return object()

    @flow
    def pipeline() -> Any:
        state = odd(return_state=True)
        return state.type.value, state.message

    kind, message = pipeline()
    assert kind == "FAILED"
    assert "not JSON serializable" in message
    with pytest.raises(TypeError):
        task(lambda: 1, cache_policy="INPUTS")
    with pytest.raises(ValueError, match="Unknown result serializer"):
        task(lambda: 1, result_serializer="yaml")


def test_standalone_and_async_tasks_cache(flowplane_home: Path) -> None:
    calls: list[Any] = []
    add = task(counting(calls), cache_policy=INPUTS)
    assert add(3) == 3
    assert add(3, return_state=True).name == "Cached"

    @task(cache_policy=INPUTS)
    async def slow(x: int) -> int:
        calls.append(("async", x))
        return x * 10

    @flow
    async def pipeline() -> Any:
        return await slow(1), await slow(1, return_state=True)

    value, state = asyncio.run(pipeline())
    assert value == 10 and state.name == "Cached" and state.result() == 10
    assert calls == [(3, 0), ("async", 1)]


def test_serializable_isolation_computes_a_value_once(flowplane_home: Path) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    @task(cache_policy=INPUTS.configure(isolation_level="SERIALIZABLE"))
    def expensive(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.2)
        return x * 2

    @flow
    def pipeline() -> list[Any]:
        futures = [expensive.submit(4) for _ in range(4)]
        for future in futures:
            future.wait()
        return [(f.state.name, f.result()) for f in futures]

    outcomes = pipeline()
    assert calls == [4]
    assert sorted(outcomes) == [("Cached", 8)] * 3 + [("Completed", 8)]


def test_a_flow_that_persists_makes_its_tasks_persist(flowplane_home: Path) -> None:
    @task
    def inner(x: int) -> int:
        return x + 1

    @flow(persist_result=True)
    def pipeline() -> Any:
        state = inner(1, return_state=True)
        return state.data, state.state_details.cache_key

    data, cache_key = pipeline()
    # The DEFAULT policy (inputs, code, flow run id) keys the record.
    assert data["storage_key"] == cache_key and data["task_name"] == "inner"
    assert (flowplane_home / "storage" / cache_key).is_file()
    wire = State(type="COMPLETED", data=data)  # as another process would read it
    assert State.from_wire(wire).result() == 2


# --- across processes -----------------------------------------------------------------------

SCRIPT = """
    import sys
    from pathlib import Path
    from flowplane import flow, task
    from flowplane.cache_policies import INPUTS, TASK_SOURCE

    marker = Path(sys.argv[1])

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def expensive(x):
        with marker.open("a") as f:
            f.write("ran\\n")
        return {"x": x, "squared": x * x}

    @task(persist_result=True)
    def plain(x):
        return [x, "plain"]

    @flow(persist_result=True)
    def pipeline(x: int):
        return expensive(x), plain(x)

    state = pipeline(int(sys.argv[2]), return_state=True)
    print(state.state_details.flow_run_id)
"""


def _run_script(home: Path, tmp_path: Path, x: int) -> str:
    script = tmp_path / "cached_flow.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWPLANE_")}
    env["FLOWPLANE_HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "marker"), str(x)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_a_cache_hit_after_a_restart_and_results_loaded_in_another_process(
    client: Any, flowplane_home: Path, tmp_path: Path
) -> None:
    first = _run_script(flowplane_home, tmp_path, 3)
    second = _run_script(flowplane_home, tmp_path, 3)
    assert (tmp_path / "marker").read_text() == "ran\n"  # the second process hit the cache

    runs = {r.name.split("-")[0]: r for r in task_runs_of(client, second, 2)}
    assert runs["expensive"].state.name == "Cached"
    assert runs["expensive"].cache_key
    assert runs["plain"].state.name == "Completed"

    # This process never ran either flow: the states' data lead to the stored values.
    for flow_run_id in (first, second):
        flow_run = client.read_flow_run(flow_run_id)
        assert State.from_wire(flow_run.state).result() == ({"x": 3, "squared": 9}, [3, "plain"])
        for run in task_runs_of(client, flow_run_id, 2):
            value = State.from_wire(run.state).result()
            assert value in ({"x": 3, "squared": 9}, [3, "plain"])


def test_cached_runs_recorded_by_a_server_on_each_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "client"))
    try:
        from client_harness import ServerProcess
    finally:
        sys.path.pop(0)
    from flowplane.client import get_client

    (tmp_path / "server-home").mkdir()
    server = ServerProcess(tmp_path / "server-home", FLOWPLANE_DATABASE_URL=database_url)
    try:
        monkeypatch.setenv("FLOWPLANE_API_URL", server.api_url)
        calls: list[Any] = []
        add = task(counting(calls), cache_policy=INPUTS + TASK_SOURCE, name="add")

        @flow
        def pipeline() -> int:
            return add(20, 1)

        first = pipeline(return_state=True)
        second = pipeline(return_state=True)
        assert calls == [(20, 1)]
        with get_client(sync_client=True) as client:
            runs = [
                task_runs_of(client, s.state_details.flow_run_id, 1)[0] for s in (first, second)
            ]
        assert [r.state.name for r in runs] == ["Completed", "Cached"]
        assert runs[0].cache_key == runs[1].cache_key == runs[1].state.state_details.cache_key
        assert State.from_wire(runs[1].state).result() == 21
    finally:
        from flowplane.sdk.writer import close_all_writers

        close_all_writers()
        server.stop()


def test_a_failing_cache_key_fn_fails_the_run_and_leaves_no_lock(flowplane_home: Path) -> None:
    from flowplane.sdk.locking import MemoryLockManager

    def bad_key(ctx: Any, inputs: dict[str, Any]) -> str:
        raise KeyError("no key for you")

    @task(cache_key_fn=bad_key)
    def compute() -> int:
        return 1

    @flow
    def pipeline() -> Any:
        state = compute(return_state=True)
        return state.type.value, state.message

    kind, message = pipeline()
    assert kind == "FAILED" and "no key for you" in message
    assert not MemoryLockManager()._locks
