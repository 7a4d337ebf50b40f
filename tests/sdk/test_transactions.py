"""Transactions: commit and rollback hooks, nesting and commit modes, shared values, records, and RolledBack task runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sdk_support import eventually

from flowplane import flow, task
from flowplane.exceptions import ConfigurationError
from flowplane.results import ResultStore
from flowplane.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)


def test_hooks_run_on_commit_and_on_rollback_newest_first() -> None:
    log: list[str] = []
    with transaction() as txn:
        txn.stage("v", on_commit_hooks=[lambda t: log.append("commit")])
        assert txn.is_staged() and get_transaction() is txn
    assert txn.is_committed() and log == ["commit"] and get_transaction() is None

    log.clear()
    with pytest.raises(RuntimeError), transaction() as txn:
        txn.stage(
            "v",
            on_rollback_hooks=[lambda t: log.append("first"), lambda t: log.append("second")],
            on_commit_hooks=[lambda t: log.append("commit")],
        )
        raise RuntimeError("undo")
    assert txn.is_rolled_back() and log == ["second", "first"]
    assert txn.rollback() is False and txn.commit() is False  # already done


def test_nested_transactions_commit_and_roll_back_with_their_parent() -> None:
    log: list[str] = []
    with transaction() as outer:
        with transaction() as inner:
            inner.stage(1, on_commit_hooks=[lambda t: log.append("inner commit")])
        assert inner.parent is outer and inner.commit_mode is CommitMode.LAZY
        assert not inner.is_committed() and log == []  # waits for the parent
        assert outer.children == [inner]
    assert inner.is_committed() and log == ["inner commit"]

    log.clear()
    with pytest.raises(ValueError), transaction() as outer:
        with transaction() as inner:
            inner.stage(1, on_rollback_hooks=[lambda t: log.append("inner undo")])
        with transaction(commit_mode=CommitMode.EAGER) as eager:
            eager.stage(2, on_commit_hooks=[lambda t: log.append("eager commit")])
        raise ValueError("later failure")
    assert log == ["eager commit", "inner undo"]
    assert inner.is_rolled_back() and eager.is_committed()

    with transaction(commit_mode=CommitMode.OFF) as off:
        off.stage(1)
    assert off.state is TransactionState.STAGED


def test_values_are_shared_down_the_nesting() -> None:
    with transaction() as outer:
        outer.set("run", 7)
        with transaction() as inner:
            assert inner.get("run") == 7
            inner.set("own", 1)
            assert inner.get("missing", "fallback") == "fallback"
            with pytest.raises(ValueError, match="unknown key: missing"):
                inner.get("missing")
        assert outer.get("own", None) is None


def test_a_keyed_transaction_writes_its_record_on_commit_only(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path)
    with transaction(key="k", store=store) as txn:
        assert txn.is_active()
        txn.stage(store.create_result_record({"v": 1}, key="k"))
        assert not store.exists("k")
    assert store.read("k").result == {"v": 1}

    with transaction(key="k", store=store) as again:
        assert again.is_committed()  # a record exists: nothing to do
        assert again.read().result == {"v": 1}

    with pytest.raises(KeyError), transaction(key="k2", store=store) as failed:
        failed.stage(store.create_result_record(2, key="k2"))
        raise KeyError("no")
    assert not store.exists("k2")

    with transaction(key="k", store=store, overwrite=True) as over:
        over.stage(store.create_result_record(3, key="k"))
    assert store.read("k").result == 3


def test_serializable_needs_a_store_and_holds_the_key(tmp_path: Path) -> None:
    txn = Transaction(key="x", store=None, isolation_level=IsolationLevel.SERIALIZABLE)
    with pytest.raises(ConfigurationError, match="SERIALIZABLE"):
        txn.__enter__()
    assert get_transaction() is None
    store = ResultStore(result_storage=tmp_path)
    with transaction(key="held", store=store, isolation_level="SERIALIZABLE") as txn:
        assert store.is_locked("held") and not store.is_lock_holder("held")
        txn.stage(store.create_result_record(1, key="held"))
    assert not store.is_locked("held") and store.exists("held")


def test_async_with() -> None:
    log: list[str] = []

    async def main() -> None:
        async with transaction() as txn:
            txn.stage(1, on_commit_hooks=[lambda t: log.append("commit")])

    asyncio.run(main())
    assert log == ["commit"]


def test_task_hooks_in_a_flow_transaction(client: Any) -> None:
    log: list[Any] = []

    @task
    def write(name: str) -> str:
        assert get_transaction() is not None  # the task's own, nested in the flow's
        return name

    @write.on_commit
    def committed(txn: Any) -> None:
        log.append(("commit", txn.parent is not None))

    @write.on_rollback
    def undone(txn: Any) -> None:
        log.append(("rollback",))

    @task
    def fail() -> None:
        raise RuntimeError("downstream failure")

    @flow
    def pipeline(fail_after: bool) -> str:
        with transaction():
            write("a")
            if fail_after:
                fail()
        return "done"

    assert pipeline(False) == "done"
    assert log == [("commit", True)]

    log.clear()
    state = pipeline(True, return_state=True)
    assert state.type.value == "FAILED"
    assert log == [("rollback",)]

    def rolled_back() -> Any:
        runs = client.read_task_runs(
            flow_run_filter={"id": {"any_": [str(state.state_details.flow_run_id)]}}
        )
        return [r for r in runs if r.state and r.state.name == "RolledBack"]

    runs = eventually(rolled_back)
    assert len(runs) == 1 and runs[0].name.startswith("write")
    assert runs[0].state.type.value == "COMPLETED"
    assert runs[0].state.message == "Task rolled back as part of transaction"


def test_a_failing_task_stages_nothing_and_its_own_hooks_stay_silent() -> None:
    log: list[str] = []

    @task(
        on_rollback=[lambda t: log.append("rollback")], on_commit=[lambda t: log.append("commit")]
    )
    def broken() -> None:
        raise ValueError("broken")

    @flow
    def pipeline() -> str:
        state = broken(return_state=True)
        return state.type.value

    assert pipeline() == "FAILED"
    assert log == []


def test_a_cached_task_in_a_transaction_writes_its_record_only_if_the_transaction_commits(
    flowplane_home: Path,
) -> None:
    from flowplane.cache_policies import INPUTS, TASK_SOURCE

    calls: list[int] = []

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def compute(x: int) -> int:
        calls.append(x)
        return x * 3

    @flow
    def pipeline(fail: bool) -> int:
        with transaction():
            value = compute(1)
            if fail:
                assert not (flowplane_home / "storage").exists()  # staged, not written yet
                raise RuntimeError("abandon")
        return value

    assert pipeline(True, return_state=True).type.value == "FAILED"
    assert not (flowplane_home / "storage").exists() or not any(
        (flowplane_home / "storage").iterdir()
    )
    assert pipeline(False) == 3
    assert len(list((flowplane_home / "storage").iterdir())) == 1
    assert pipeline(False) == 3
    assert calls == [1, 1]  # the rolled-back run's value was never cached


def test_result_options_survive_with_options_and_pickling() -> None:
    import datetime as dt

    import cloudpickle as pickle

    from flowplane.cache_policies import INPUTS

    @task(cache_policy=INPUTS - "debug", cache_expiration=dt.timedelta(minutes=5))
    def compute(x: int, debug: bool = False) -> int:
        return x

    copy = compute.with_options(refresh_cache=True, result_serializer="json")
    assert copy.refresh_cache and copy.result_serializer == "json"
    assert copy.cache_expiration == dt.timedelta(minutes=5)
    assert copy.cache_policy.exclude == ["debug"]
    again = pickle.loads(pickle.dumps(compute.with_options(persist_result=False)))
    assert again.persist_result is False and again.cache_policy.__class__.__name__ == "NoCache"
    plain = pickle.loads(pickle.dumps(task(abs)))
    assert not plain.results_explicit
