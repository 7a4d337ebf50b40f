"""Locks shared by the processes of one machine (lock files in a folder), as in ``prefect.locking.filesystem``."""

from flowplane.sdk.locking import FileSystemLockManager

__all__ = ["FileSystemLockManager"]
