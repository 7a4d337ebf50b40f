"""``concurrency(names, task_run_id)`` on tag limits for synchronous code (as ``prefect.concurrency.v1.sync``)."""

from flowplane.sdk.concurrency import AcquireConcurrencySlotTimeoutError
from flowplane.sdk.concurrency import concurrency_v1 as concurrency

__all__ = ["AcquireConcurrencySlotTimeoutError", "concurrency"]
