"""Transactions (``with transaction():``, commit and rollback hooks, isolation levels), as in ``prefect.transactions``."""

from flowplane.sdk.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "get_transaction",
    "transaction",
]
