"""Lock managers for SERIALIZABLE transactions: one process (memory) or many on one machine (filesystem).

A lock is named by a key (a cache key) and held by a holder string; it expires after
``hold_timeout`` seconds so a crashed holder cannot block others forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["LockManager", "MemoryLockManager", "FileSystemLockManager"]

_POLL = 0.05


class LockManager:
    """What a result store needs from a lock manager (sync methods; ``a*`` awaitable twins)."""

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``, waiting up to ``acquire_timeout`` (None: forever).

        Returns:
            True once held (also when ``holder`` already holds it); False on timeout.
        """
        raise NotImplementedError

    def release_lock(self, key: str, holder: str) -> None:
        """Give the lock back.

        Raises:
            ValueError: ``holder`` does not hold the lock on ``key``.
        """
        raise NotImplementedError

    def is_locked(self, key: str) -> bool:
        raise NotImplementedError

    def is_lock_holder(self, key: str, holder: str) -> bool:
        raise NotImplementedError

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until nobody holds ``key``; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)
        return True

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        return await asyncio.to_thread(
            self.acquire_lock, key, holder, acquire_timeout, hold_timeout
        )

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_for_lock, key, timeout)


class MemoryLockManager(LockManager):
    """Locks shared by the threads of this process (one instance per process)."""

    _instance: MemoryLockManager | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> MemoryLockManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._cond = threading.Condition()
                instance._locks = {}
                cls._instance = instance
            return cls._instance

    _cond: threading.Condition
    _locks: dict[str, tuple[str, float | None]]

    def _holder(self, key: str) -> str | None:
        entry = self._locks.get(key)
        if entry is None:
            return None
        holder, expires = entry
        if expires is not None and time.monotonic() >= expires:
            del self._locks[key]
            return None
        return holder

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        with self._cond:
            while True:
                current = self._holder(key)
                if current is None or current == holder:
                    expires = None if hold_timeout is None else time.monotonic() + hold_timeout
                    self._locks[key] = (holder, expires)
                    return True
                wait = _POLL * 4
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    wait = min(wait, remaining)
                self._cond.wait(wait)

    def release_lock(self, key: str, holder: str) -> None:
        with self._cond:
            if self._holder(key) != holder:
                raise ValueError(f"No lock on {key!r} held by {holder!r}.")
            del self._locks[key]
            self._cond.notify_all()

    def is_locked(self, key: str) -> bool:
        with self._cond:
            return self._holder(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._cond:
            return self._holder(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._holder(key) is not None:
                wait = _POLL * 4
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    wait = min(wait, remaining)
                self._cond.wait(wait)
        return True


class FileSystemLockManager(LockManager):
    """Locks as files in ``lock_files_directory``, shared by every process that uses the folder.

    A lock file is created atomically (``O_EXCL``) and holds its holder and expiry.
    """

    def __init__(self, lock_files_directory: str | os.PathLike[str]) -> None:
        self.lock_files_directory = Path(lock_files_directory).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FileSystemLockManager({str(self.lock_files_directory)!r})"

    def _path(self, key: str) -> Path:
        safe = key.replace("/", "__")
        return self.lock_files_directory / f"{safe}.lock"

    def _read(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            info: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError:  # being written right now: treat as held
            return {"holder": "", "expires": None}
        expires = info.get("expires")
        if expires is not None and time.time() >= expires:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            return None
        return info

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        self.lock_files_directory.mkdir(parents=True, exist_ok=True)
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        path = self._path(key)
        body = json.dumps(
            {
                "holder": holder,
                "expires": None if hold_timeout is None else time.time() + hold_timeout,
            }
        )
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self._read(key)
                if info is not None and info.get("holder") == holder:
                    path.write_text(body)
                    return True
                if info is None:
                    continue  # expired and removed: try again at once
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(_POLL)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(body)
            return True

    def release_lock(self, key: str, holder: str) -> None:
        info = self._read(key)
        if info is None or info.get("holder") != holder:
            raise ValueError(f"No lock on {key!r} held by {holder!r}.")
        self._path(key).unlink(missing_ok=True)

    def is_locked(self, key: str) -> bool:
        return self._read(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        info = self._read(key)
        return info is not None and info.get("holder") == holder
