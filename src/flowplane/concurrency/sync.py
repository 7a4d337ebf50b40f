"""``concurrency()`` and ``rate_limit()`` for synchronous code (as ``prefect.concurrency.sync``)."""

from flowplane.sdk.concurrency import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    concurrency,
    rate_limit,
)

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]
