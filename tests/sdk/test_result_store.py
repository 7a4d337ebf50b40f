"""Serializers, result records and stores, lock managers, and the cache-record listing behind ``flowplane cache``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flowplane.locking.filesystem import FileSystemLockManager
from flowplane.locking.memory import MemoryLockManager
from flowplane.results import ResultRecord, ResultStore, clear_cache, list_cache_records
from flowplane.sdk.serializers import resolve_serializer, serializer_from_dict
from flowplane.serializers import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    JSONSerializer,
    PickleSerializer,
)


@pytest.mark.parametrize("name", ["pickle", "json", "compressed/pickle", "compressed/json"])
def test_serializers_round_trip_through_their_metadata(name: str) -> None:
    serializer = resolve_serializer(name)
    value = {"a": [1, 2, 3], "b": "text" * 50}
    blob = serializer.dumps(value)
    blob.decode("ascii")  # always text-safe, so a record is one JSON document
    again = serializer_from_dict(json.loads(json.dumps(serializer.to_dict())))
    assert again == serializer
    assert again.loads(blob) == value


def test_serializer_specifics() -> None:
    assert PickleSerializer().loads(PickleSerializer().dumps(lambda x: x + 1))(1) == 2
    assert JSONSerializer().dumps({"when": dt.date(2024, 1, 2)}) == b'{"when": "2024-01-02"}'
    with pytest.raises(TypeError):
        JSONSerializer().dumps(object())
    big = "x" * 10_000
    assert len(CompressedPickleSerializer().dumps(big)) < len(PickleSerializer().dumps(big))
    assert CompressedJSONSerializer().to_dict()["type"] == "compressed/json"
    with pytest.raises(ValueError, match="Unknown result serializer 'yaml'"):
        resolve_serializer("yaml")
    with pytest.raises(ValueError, match="has no dumps/loads"):
        PickleSerializer(picklelib="math")
    with pytest.raises(ValueError, match="cannot be imported"):
        PickleSerializer(picklelib="no_such_pickler")


def test_store_writes_reads_and_expires(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path / "results", serializer="json")
    record = store.write({"answer": 42}, key="my-result")
    assert record.metadata.storage_key == "my-result"
    on_disk = json.loads((tmp_path / "results" / "my-result").read_text())
    assert on_disk["metadata"]["serializer"] == {"type": "json"}
    assert json.loads(on_disk["result"]) == {"answer": 42}
    assert store.exists("my-result")
    assert store.read("my-result").result == {"answer": 42}
    assert not store.exists("other")
    with pytest.raises(FileNotFoundError):
        store.read("other")

    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    store.write(1, key="old", expiration=past)
    assert not store.exists("old")  # expired records do not count as cached
    assert ResultRecord.deserialize(store.result_storage.read("old")).result == 1
    with pytest.raises(ValueError):
        store.write(1, key="../escape")


def test_default_store_lives_under_home(flowplane_home: Path) -> None:
    store = ResultStore()
    record = store.write("v")
    assert (flowplane_home / "storage" / record.metadata.storage_key).is_file()
    assert record.metadata.serializer == PickleSerializer()


def test_memory_locks_exclude_other_holders() -> None:
    locks = MemoryLockManager()
    assert locks is MemoryLockManager()  # one per process
    assert locks.acquire_lock("k", "a")
    assert locks.acquire_lock("k", "a")  # re-entrant for its holder
    assert not locks.acquire_lock("k", "b", acquire_timeout=0.05)
    assert locks.is_lock_holder("k", "a") and not locks.is_lock_holder("k", "b")
    with pytest.raises(ValueError):
        locks.release_lock("k", "b")
    got = []
    waiter = threading.Thread(target=lambda: got.append(locks.acquire_lock("k", "b")))
    waiter.start()
    locks.release_lock("k", "a")
    waiter.join(5)
    assert got == [True] and locks.is_lock_holder("k", "b")
    locks.release_lock("k", "b")
    assert locks.acquire_lock("h", "a", hold_timeout=0.01)
    assert locks.acquire_lock("h", "b", acquire_timeout=2)  # the first hold expired
    locks.release_lock("h", "b")


def test_filesystem_locks_are_shared_between_processes(tmp_path: Path) -> None:
    locks = FileSystemLockManager(tmp_path / "locks")
    assert locks.acquire_lock("key", "parent")
    code = (
        "import sys; from flowplane.locking.filesystem import FileSystemLockManager as L; "
        f"l = L({str(tmp_path / 'locks')!r}); "
        "print(l.is_locked('key'), l.acquire_lock('key', 'child', acquire_timeout=0.2))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr
    locks.release_lock("key", "parent")
    out = subprocess.run(
        [sys.executable, "-c", code.replace("acquire_timeout=0.2", "acquire_timeout=5")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["False", "True"], out.stderr
    assert locks.is_locked("key") and not locks.is_lock_holder("key", "parent")


def test_listing_and_clearing_cache_records(tmp_path: Path) -> None:
    storage = tmp_path / "s"
    store = ResultStore(result_storage=storage)
    for key, task in (("k1", "alpha"), ("k2", "alpha"), ("k3", "beta")):
        store.persist_result_record(store.create_result_record(key, key, task_name=task))
    store.write("a flow result", key="plain")  # not a cache record
    assert {r.storage_key for r in list_cache_records(storage)} == {"k1", "k2", "k3"}
    assert {r.storage_key for r in list_cache_records(storage, task="alpha")} == {"k1", "k2"}

    with pytest.raises(ValueError, match="No cache record with key 'nope'"):
        clear_cache(storage, key="nope")
    with pytest.raises(ValueError, match="belongs to task 'beta'"):
        clear_cache(storage, task="alpha", key="k3")
    with pytest.raises(ValueError, match="not a cache record"):
        clear_cache(storage, key="plain")
    assert store.exists("k3") and store.exists("plain")  # refused requests changed nothing

    assert clear_cache(storage, key="k3") == ["k3"]
    assert sorted(clear_cache(storage, task="alpha")) == ["k1", "k2"]
    assert list_cache_records(storage) == []
    assert store.exists("plain")
