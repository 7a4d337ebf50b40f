"""Locks shared by the threads of one process, as in ``prefect.locking.memory``."""

from flowplane.sdk.locking import MemoryLockManager

__all__ = ["MemoryLockManager"]
