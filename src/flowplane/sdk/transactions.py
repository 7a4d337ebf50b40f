"""Transactions: group work so it commits together (writing staged results, running on_commit hooks) or rolls back together.

``with transaction():`` opens one; task runs inside open nested ones. A nested
transaction commits when its outermost parent commits (``CommitMode.LAZY``, the
default) and rolls back with it. A transaction with a key and a result store is
"committed" on entry when a record already exists under its key (that is how a
cached task run is recognised); SERIALIZABLE isolation holds the key's lock from
entry to commit so concurrent runs compute a value once.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import itertools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from flowplane.exceptions import ConfigurationError

__all__ = [
    "IsolationLevel",
    "CommitMode",
    "TransactionState",
    "Transaction",
    "transaction",
    "get_transaction",
]

logger = logging.getLogger("flowplane.transactions")

#: Numbers the transactions of this process (their lock-holder names).
_serial = itertools.count()


class IsolationLevel(str, enum.Enum):
    """How concurrent transactions on one key see each other."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(str, enum.Enum):
    """When a transaction commits: at its own exit (EAGER), with its outermost parent (LAZY), or never (OFF)."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class TransactionState(str, enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar(
    "flowplane.transaction", default=None
)


def get_transaction() -> Transaction | None:
    """The innermost open transaction here, if any."""
    return _current.get()


class Transaction:
    """One transaction; use :func:`transaction` to open one.

    Attributes:
        key: the record key it commits to (None: it stores nothing).
        store: the ResultStore holding its record (None: it stores nothing).
        children: nested transactions that committed lazily into this one.
    """

    def __init__(
        self,
        key: str | None = None,
        store: Any = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | str | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.commit_mode = CommitMode(commit_mode) if commit_mode is not None else None
        self.isolation_level = (
            IsolationLevel(isolation_level) if isolation_level is not None else None
        )
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.logger = logger or globals()["logger"]
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[Callable[..., Any]] = []
        self.on_rollback_hooks: list[Callable[..., Any]] = []
        self.parent: Transaction | None = None
        self._staged_value: Any = None
        self._has_staged = False
        self._data: dict[str, Any] = {}
        self._token: contextvars.Token[Transaction | None] | None = None
        self._holder = f"{os.getpid()}:{threading.get_ident()}:{next(_serial)}"
        self._locked = False

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"

    # --- state checks ---

    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    # --- shared data ---

    def set(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for this transaction and those nested in it."""
        self._data[name] = value

    def get(self, name: str, default: Any = ...) -> Any:
        """A value set on this transaction or a parent.

        Raises:
            ValueError: ``name`` is not set and no default was given.
        """
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._data:
                return txn._data[name]
            txn = txn.parent
        if default is ...:
            raise ValueError(f"Could not retrieve value for unknown key: {name}")
        return default

    # --- lifecycle ---

    def begin(self) -> None:
        """Open the transaction: inherit the commit mode, take the lock, look for an existing record.

        Raises:
            ConfigurationError: SERIALIZABLE isolation without a store that can lock.
        """
        parent = self.parent if self.parent is not None else _current.get()
        self.parent = parent
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent is not None else CommitMode.LAZY
        if self.isolation_level is None:
            self.isolation_level = IsolationLevel.READ_COMMITTED
        if self.isolation_level is IsolationLevel.SERIALIZABLE and self.key:
            if self.store is None or not self.store.supports_isolation_level(self.isolation_level):
                raise ConfigurationError(
                    "SERIALIZABLE isolation needs a result store with a lock manager."
                )
            self.store.acquire_lock(self.key, holder=self._holder)
            self._locked = True
        if not self.overwrite and self.store is not None and self.key:
            if self.store.exists(self.key):
                self.state = TransactionState.COMMITTED
                return
        self.state = TransactionState.ACTIVE

    def read(self) -> Any:
        """The record stored under this transaction's key (None without key, store or record)."""
        if self.store is None or not self.key:
            return None
        try:
            return self.store.read(self.key, holder=self._holder)
        except FileNotFoundError:
            return None

    def stage(
        self,
        value: Any,
        on_rollback_hooks: list[Callable[..., Any]] | None = None,
        on_commit_hooks: list[Callable[..., Any]] | None = None,
    ) -> None:
        """Hold ``value`` (a result record when a store is set) and hooks until commit."""
        if self.state is TransactionState.COMMITTED:
            return
        self._staged_value = value
        self._has_staged = True
        self.on_rollback_hooks.extend(on_rollback_hooks or [])
        self.on_commit_hooks.extend(on_commit_hooks or [])
        self.state = TransactionState.STAGED

    def commit(self) -> bool:
        """Commit children, write the staged record, run on_commit hooks; False if already done."""
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            self._release()
            return False
        try:
            for child in self.children:
                child.commit()
            if (
                self.write_on_commit
                and self._has_staged
                and self.store is not None
                and self.key
                and hasattr(self._staged_value, "metadata")
            ):
                self.store.persist_result_record(self._staged_value, holder=self._holder)
            for hook in self.on_commit_hooks:
                self._run_hook(hook)
            self.state = TransactionState.COMMITTED
            return True
        except Exception:
            self.logger.exception(
                "An error was encountered while committing transaction %r", self.key
            )
            self.rollback()
            raise
        finally:
            self._release()

    def rollback(self) -> bool:
        """Run on_rollback hooks (newest first) and roll back children; False if already committed or rolled back."""
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            self._release()
            return False
        try:
            for hook in reversed(self.on_rollback_hooks):
                try:
                    self._run_hook(hook)
                except Exception:
                    self.logger.exception("An error was encountered while running a rollback hook")
            self.state = TransactionState.ROLLED_BACK
            for child in reversed(self.children):
                child.rollback()
            return True
        finally:
            self._release()

    def reset(self) -> None:
        """Leave the transaction context (done on exit)."""
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:
                _current.set(self.parent)
            self._token = None

    def _release(self) -> None:
        if self._locked and self.store is not None and self.key:
            self._locked = False
            try:
                self.store.release_lock(self.key, holder=self._holder)
            except ValueError:
                pass

    def _run_hook(self, hook: Callable[..., Any]) -> None:
        result = hook(self)
        if inspect.isawaitable(result):
            from flowplane.sdk._engine import _run_awaitable

            _run_awaitable(result)

    def __enter__(self) -> Transaction:
        if self.state is not TransactionState.PENDING:
            raise RuntimeError("A transaction can only be entered once.")
        self.begin()
        self.push()
        return self

    def push(self) -> None:
        """Make this (begun) transaction the current one (``__enter__`` does begin and push)."""
        self._token = _current.set(self)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close(exc_type is not None)
        finally:
            self.reset()

    def close(self, failed: bool) -> None:
        """End the transaction: roll back if ``failed``, else commit now or hand it to the parent."""
        if failed:
            self.rollback()
            return
        if self.commit_mode is CommitMode.EAGER:
            self.commit()
        elif self.parent is not None and self.commit_mode is not CommitMode.OFF:
            self.parent.children.append(self)
        elif self.commit_mode is CommitMode.LAZY:
            self.commit()
        if self.commit_mode is CommitMode.OFF or (
            self.parent is not None and self.commit_mode is CommitMode.LAZY
        ):
            # Nothing written yet (it commits with the parent), but other runs must not
            # wait that long for the key.
            self._release()

    async def __aenter__(self) -> Transaction:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def transaction(
    key: str | None = None,
    store: Any = None,
    commit_mode: CommitMode | None = None,
    isolation_level: IsolationLevel | str | None = None,
    overwrite: bool = False,
    write_on_commit: bool = True,
    logger: logging.Logger | None = None,
) -> Transaction:
    """Open a transaction (``with transaction():`` or ``async with transaction():``).

    Args:
        key: the key its record is stored under (nested task runs use their cache keys).
        store: the ResultStore for the record (default: the default store, when a key is given).
        commit_mode: EAGER, LAZY (default; nested ones commit with their parent) or OFF.
        isolation_level: READ_COMMITTED (default) or SERIALIZABLE (holds the key's lock).
        overwrite: write even when a record exists under ``key``.
        write_on_commit: write the staged record on commit.
        logger: where hook errors are logged.

    Returns:
        The transaction, to use as a context manager.
    """
    if store is None and key is not None:
        from flowplane.sdk.results import ResultStore

        store = ResultStore()
    return Transaction(
        key=key,
        store=store,
        commit_mode=commit_mode,
        isolation_level=isolation_level,
        overwrite=overwrite,
        write_on_commit=write_on_commit,
        logger=logger,
    )
