"""``concurrency()`` and ``rate_limit()`` for async code (as ``prefect.concurrency.asyncio``)."""

from flowplane.sdk.concurrency import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
)
from flowplane.sdk.concurrency import aconcurrency as concurrency
from flowplane.sdk.concurrency import arate_limit as rate_limit

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]
