"""Persisted results: result records (a value plus metadata) in a result store backed by a folder or fsspec URL.

A record is one JSON document ``{"metadata": {...}, "result": "..."}`` stored under its
key; the metadata says how the value was serialized, when it expires and where it
lives, and is what a run's state carries as its ``data`` so that ``state.result()``
can load the value in any process, long after the run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import threading
import time
from collections import OrderedDict
from typing import Any

from flowplane.sdk._records import new_id
from flowplane.sdk._storage import ResultStorage
from flowplane.sdk.locking import LockManager, MemoryLockManager
from flowplane.sdk.serializers import Serializer, resolve_serializer, serializer_from_dict

__all__ = [
    "ResultRecordMetadata",
    "ResultRecord",
    "ResultStore",
    "ResultStorage",
    "get_default_result_storage",
    "get_result_store",
    "is_result_metadata",
    "load_result",
    "list_cache_records",
    "clear_cache",
]

UTC = dt.timezone.utc


def _version() -> str:
    from flowplane import __version__

    return __version__


def default_holder() -> str:
    """This thread's lock-holder name: host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _parse_time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ResultRecordMetadata:
    """What a stored result is: its key, serializer, expiry, storage and (for cache records) task."""

    __slots__ = (
        "storage_key",
        "expiration",
        "serializer",
        "storage",
        "task_name",
        "created",
        "prefect_version",
    )

    def __init__(
        self,
        storage_key: str,
        serializer: Serializer,
        expiration: dt.datetime | None = None,
        storage: str | None = None,
        task_name: str | None = None,
        created: dt.datetime | None = None,
        prefect_version: str | None = None,
    ) -> None:
        self.storage_key = storage_key
        self.serializer = serializer
        self.expiration = expiration
        self.storage = storage
        self.task_name = task_name
        self.created = created
        self.prefect_version = prefect_version or _version()

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        if self.expiration is None:
            return False
        return (now or dt.datetime.now(UTC)) >= self.expiration

    def to_dict(self) -> dict[str, Any]:
        """The metadata as JSON (Prefect's field names, plus ``storage``, ``task_name``, ``created``)."""
        return {
            "storage_key": self.storage_key,
            "expiration": self.expiration.isoformat() if self.expiration else None,
            "serializer": self.serializer.to_dict(),
            "prefect_version": self.prefect_version,
            "storage_block_id": None,
            "storage": self.storage,
            "task_name": self.task_name,
            "created": self.created.isoformat() if self.created else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecordMetadata:
        return cls(
            storage_key=data["storage_key"],
            serializer=serializer_from_dict(data.get("serializer") or {"type": "pickle"}),
            expiration=_parse_time(data.get("expiration")),
            storage=data.get("storage"),
            task_name=data.get("task_name"),
            created=_parse_time(data.get("created")),
            prefect_version=data.get("prefect_version"),
        )

    def __repr__(self) -> str:
        return (
            f"ResultRecordMetadata(storage_key={self.storage_key!r}, "
            f"expiration={self.expiration!r}, serializer={self.serializer!r})"
        )


class ResultRecord:
    """A result value with its metadata."""

    __slots__ = ("metadata", "result")

    def __init__(self, metadata: ResultRecordMetadata, result: Any) -> None:
        self.metadata = metadata
        self.result = result

    def serialize(self) -> bytes:
        """The record as stored: one JSON document."""
        blob = self.metadata.serializer.dumps(self.result)
        return json.dumps({"metadata": self.metadata.to_dict(), "result": blob.decode()}).encode()

    @classmethod
    def deserialize(cls, data: bytes) -> ResultRecord:
        """A record from its stored form.

        Raises:
            ValueError: the bytes are not a result record.
        """
        try:
            doc = json.loads(data)
            metadata = ResultRecordMetadata.from_dict(doc["metadata"])
            raw = doc["result"]
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"Not a result record: {exc}") from None
        return cls(metadata, metadata.serializer.loads(raw.encode()))

    def __repr__(self) -> str:
        return f"ResultRecord(metadata={self.metadata!r}, result={self.result!r})"


def _metadata_only(data: bytes) -> ResultRecordMetadata:
    doc = json.loads(data)
    return ResultRecordMetadata.from_dict(doc["metadata"])


#: Records this process wrote or read, by (storage URL, key), with when: cache hits without I/O.
_memory: OrderedDict[tuple[str, str], tuple[float, ResultRecord]] = OrderedDict()
_MEMORY_SIZE = 1000
#: How long a remembered record answers ``exists`` before storage is asked again.
MEMORY_SECONDS = 2.0


def _remember(memory_key: tuple[str, str], record: ResultRecord) -> None:
    _memory[memory_key] = (time.monotonic(), record)
    if len(_memory) > _MEMORY_SIZE:
        try:
            _memory.popitem(last=False)
        except KeyError:
            pass


class ResultStore:
    """Reads and writes result records in one storage, with locks for SERIALIZABLE transactions.

    Args:
        result_storage: a folder, an fsspec URL or a :class:`ResultStorage`
            (default: the ``results_default_storage`` setting, else ``$FLOWPLANE_HOME/storage``).
        serializer: how values are serialized (name or instance; default the setting).
        lock_manager: locks for SERIALIZABLE isolation (default: this process's memory locks).
        cache_result_in_memory: keep values in memory after persisting them.
        storage_options: fsspec options for a URL storage (e.g. ``{"endpoint_url": ...}``).
    """

    def __init__(
        self,
        result_storage: ResultStorage | str | os.PathLike[str] | None = None,
        serializer: Serializer | str | None = None,
        lock_manager: LockManager | None = None,
        cache_result_in_memory: bool = True,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        settings = None
        if result_storage is None or serializer is None:
            from flowplane.sdk._api import current_settings

            settings = current_settings()
        if result_storage is None:
            assert settings is not None
            result_storage = settings.resolved_result_storage
        if not isinstance(result_storage, ResultStorage):
            result_storage = ResultStorage(result_storage, storage_options)
        self.result_storage: ResultStorage = result_storage
        if serializer is None:
            assert settings is not None
            serializer = settings.results_default_serializer
        self.serializer = resolve_serializer(serializer)
        self.lock_manager: LockManager = lock_manager or MemoryLockManager()
        self.cache_result_in_memory = cache_result_in_memory
        self._recent = threading.local()

    def __repr__(self) -> str:
        return f"ResultStore(result_storage={self.result_storage.url!r}, serializer={self.serializer!r})"

    # --- records ---

    def create_result_record(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | None = None,
        task_name: str | None = None,
    ) -> ResultRecord:
        """A record for ``obj`` (not yet stored); a random key when ``key`` is None."""
        metadata = ResultRecordMetadata(
            storage_key=key or new_id().hex,
            serializer=self.serializer,
            expiration=expiration,
            storage=self.result_storage.url,
            task_name=task_name,
            created=dt.datetime.now(UTC),
        )
        return ResultRecord(metadata, obj)

    def persist_result_record(self, record: ResultRecord, holder: str | None = None) -> None:
        """Store ``record`` under its key.

        Raises:
            RuntimeError: another holder has the key locked.
        """
        key = record.metadata.storage_key
        holder = holder or default_holder()
        if self.lock_manager.is_locked(key) and not self.lock_manager.is_lock_holder(key, holder):
            raise RuntimeError(f"Cannot write result {key!r}: it is locked by another holder.")
        self.result_storage.write(key, record.serialize())
        if self.cache_result_in_memory:
            _remember((self.result_storage.url, key), record)
        else:
            _memory.pop((self.result_storage.url, key), None)

    def write(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | None = None,
        holder: str | None = None,
    ) -> ResultRecord:
        """Serialize and store ``obj``; returns its record."""
        record = self.create_result_record(obj, key, expiration)
        self.persist_result_record(record, holder)
        return record

    def read(self, key: str, holder: str | None = None) -> ResultRecord:
        """The record under ``key`` (waiting while another holder has it locked).

        Raises:
            FileNotFoundError: no record under ``key``.
        """
        holder = holder or default_holder()
        if self.lock_manager.is_locked(key) and not self.lock_manager.is_lock_holder(key, holder):
            self.lock_manager.wait_for_lock(key)
        memory_key = (self.result_storage.url, key)
        known = _memory.get(memory_key)
        if known is not None:
            return known[1]
        # exists() just read these bytes in this thread (a cache lookup): no second read.
        recent = self._recent.__dict__.pop("item", None)
        if recent is not None and recent[0] == key:
            data = recent[1]
        else:
            data = self.result_storage.read(key)
        record = ResultRecord.deserialize(data)
        if self.cache_result_in_memory:
            _remember(memory_key, record)
        return record

    def exists(self, key: str) -> bool:
        """Whether an unexpired record is stored under ``key``.

        Records this process wrote or read in the last ``MEMORY_SECONDS`` are answered
        from memory (no I/O: on a busy process every file access can wait a thread switch
        interval for the GIL), so a record another process deletes is noticed within that
        time; deletions through this process are seen at once.
        """
        memory_key = (self.result_storage.url, key)
        known = _memory.get(memory_key)
        if known is not None:
            if time.monotonic() - known[0] < MEMORY_SECONDS:
                return not known[1].metadata.is_expired()
            _memory.pop(memory_key, None)
        try:
            data = self.result_storage.read(key)
            metadata = _metadata_only(data)
        except (FileNotFoundError, ValueError, KeyError):
            return False
        if metadata.is_expired():
            return False
        self._recent.item = (key, data)
        return True

    def delete(self, key: str) -> bool:
        """Remove the record under ``key``; False when there was none."""
        _memory.pop((self.result_storage.url, key), None)
        return self.result_storage.delete(key)

    def records(self) -> list[ResultRecordMetadata]:
        """The metadata of every record in the storage (unreadable files skipped)."""
        out = []
        for key in self.result_storage.keys():
            try:
                out.append(_metadata_only(self.result_storage.read(key)))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    async def aread(self, key: str, holder: str | None = None) -> ResultRecord:
        return await asyncio.to_thread(self.read, key, holder)

    async def awrite(
        self,
        obj: Any,
        key: str | None = None,
        expiration: dt.datetime | None = None,
        holder: str | None = None,
    ) -> ResultRecord:
        return await asyncio.to_thread(self.write, obj, key, expiration, holder)

    async def aexists(self, key: str) -> bool:
        return await asyncio.to_thread(self.exists, key)

    # --- locks ---

    def supports_isolation_level(self, level: Any) -> bool:
        """Whether transactions on this store can use ``level`` (both levels need a lock manager)."""
        return self.lock_manager is not None

    def acquire_lock(
        self, key: str, holder: str | None = None, timeout: float | None = None
    ) -> bool:
        return self.lock_manager.acquire_lock(key, holder or default_holder(), timeout)

    def release_lock(self, key: str, holder: str | None = None) -> None:
        self.lock_manager.release_lock(key, holder or default_holder())

    def is_locked(self, key: str) -> bool:
        return self.lock_manager.is_locked(key)

    def is_lock_holder(self, key: str, holder: str | None = None) -> bool:
        return self.lock_manager.is_lock_holder(key, holder or default_holder())

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return self.lock_manager.wait_for_lock(key, timeout)


def get_default_result_storage() -> ResultStorage:
    """The storage results go to when nothing else is configured (see ``ResultStore``)."""
    from flowplane.sdk._api import current_settings

    return ResultStorage(current_settings().resolved_result_storage)


def get_result_store() -> ResultStore:
    """A result store on the default storage and serializer."""
    return ResultStore()


_RESULT_KEYS = frozenset({"storage_key", "serializer"})


def is_result_metadata(value: Any) -> bool:
    """Whether a state's ``data`` is a persisted result's metadata (rather than a value)."""
    return type(value) is dict and _RESULT_KEYS <= value.keys()


def load_result(metadata: dict[str, Any] | ResultRecordMetadata) -> Any:
    """The value a persisted result's metadata points to.

    Raises:
        MissingResult: the record is gone (cleared, expired storage, another machine's folder).
    """
    from flowplane.exceptions import MissingResult

    if isinstance(metadata, dict):
        metadata = ResultRecordMetadata.from_dict(metadata)
    key = metadata.storage_key
    if metadata.storage:
        storage = ResultStorage(metadata.storage)
    elif os.path.isabs(key):  # Prefect's local records name their full path
        storage, key = ResultStorage(os.path.dirname(key)), os.path.basename(key)
    else:
        storage = get_default_result_storage()
    try:
        data = storage.read(key)
    except FileNotFoundError:
        raise MissingResult(
            f"The persisted result {metadata.storage_key!r} is not in {storage.url!r} "
            "(was it cleared, or written on another machine?)."
        ) from None
    return ResultRecord.deserialize(data).result


def list_cache_records(
    storage: str | os.PathLike[str] | None = None, task: str | None = None
) -> list[ResultRecordMetadata]:
    """The cache records in a result storage (default: the default storage), newest first.

    Cache records are those task runs wrote under a cache key; other results (flow
    results, results without a cache key) are not listed.

    Args:
        storage: a folder or fsspec URL.
        task: only records written by runs of the task with this name.
    """
    store = ResultStore(result_storage=storage, serializer="pickle")
    records = [
        r
        for r in store.records()
        if r.task_name is not None and (task is None or r.task_name == task)
    ]
    epoch = dt.datetime.min.replace(tzinfo=UTC)
    return sorted(records, key=lambda r: r.created or epoch, reverse=True)


def clear_cache(
    storage: str | os.PathLike[str] | None = None,
    task: str | None = None,
    key: str | None = None,
) -> list[str]:
    """Delete cache records (never other results) so the next run of their tasks runs again.

    Args:
        storage: a folder or fsspec URL (default: the default storage).
        task: only records of the task with this name.
        key: only the record with this key.

    Returns:
        The keys deleted.

    Raises:
        ValueError: ``key`` names no record (nothing is deleted).
    """
    store = ResultStore(result_storage=storage, serializer="pickle")
    if key is not None:
        try:
            metadata = _metadata_only(store.result_storage.read(key))
        except (FileNotFoundError, ValueError, KeyError):
            raise ValueError(f"No cache record with key {key!r} in {store.result_storage.url}.")
        if metadata.task_name is None:
            raise ValueError(f"Record {key!r} is a result, not a cache record; it was left alone.")
        if task is not None and metadata.task_name != task:
            raise ValueError(
                f"Cache record {key!r} belongs to task {metadata.task_name!r}, not {task!r}."
            )
        store.delete(key)
        return [key]
    deleted = []
    for metadata in store.records():
        if metadata.task_name is not None and (task is None or metadata.task_name == task):
            store.delete(metadata.storage_key)
            deleted.append(metadata.storage_key)
    return deleted
