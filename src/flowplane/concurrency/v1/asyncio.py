"""``concurrency(names, task_run_id)`` on tag limits for async code (as ``prefect.concurrency.v1.asyncio``)."""

from flowplane.sdk.concurrency import AcquireConcurrencySlotTimeoutError
from flowplane.sdk.concurrency import aconcurrency_v1 as concurrency

__all__ = ["AcquireConcurrencySlotTimeoutError", "concurrency"]
