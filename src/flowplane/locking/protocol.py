"""The lock manager interface, as in ``prefect.locking.protocol``."""

from flowplane.sdk.locking import LockManager

__all__ = ["LockManager"]
