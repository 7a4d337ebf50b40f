"""Persisted results: ``ResultStore``, ``ResultRecord`` and the cache-record calls behind ``flowplane cache``, as in ``prefect.results``."""

from flowplane.sdk.results import (
    ResultRecord,
    ResultRecordMetadata,
    ResultStorage,
    ResultStore,
    clear_cache,
    get_default_result_storage,
    get_result_store,
    list_cache_records,
    load_result,
)

__all__ = [
    "ResultRecord",
    "ResultRecordMetadata",
    "ResultStorage",
    "ResultStore",
    "clear_cache",
    "get_default_result_storage",
    "get_result_store",
    "list_cache_records",
    "load_result",
]
