"""Cache policies: how a task run's cache key is computed from its inputs, code, flow run and parameters.

Pure logic: a policy turns what it is given (the task run context, the inputs, the
flow's parameters) into a key or None (no caching); nothing here reads files, the
clock or the network. Policies combine with ``+`` and drop named inputs with ``-``.
"""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Callable
from typing import Any

__all__ = [
    "CachePolicy",
    "CacheKeyFnPolicy",
    "CompoundCachePolicy",
    "Inputs",
    "TaskSource",
    "FlowParameters",
    "RunId",
    "NoCache",
    "INPUTS",
    "TASK_SOURCE",
    "FLOW_PARAMETERS",
    "RUN_ID",
    "NO_CACHE",
    "NONE",
    "DEFAULT",
    "hash_objects",
]


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    if type(value).__name__ == "UUID":
        return str(value)
    raise TypeError


def hash_objects(*objects: Any) -> str | None:
    """A stable hex digest of ``objects`` (JSON when possible, else cloudpickle); None if neither works."""
    try:
        blob = json.dumps(objects, sort_keys=True, default=_default).encode()
    except (TypeError, ValueError):
        try:
            import cloudpickle

            blob = cloudpickle.dumps(objects)
        except Exception:
            return None
    return hashlib.md5(blob, usedforsecurity=False).hexdigest()


_digests: dict[Any, str] = {}


def code_digest(fn: Callable[..., Any]) -> str:
    """A digest of a function's compiled code, stable across processes (nested code included)."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        known = _digests.get(code)
        if known is None:
            if len(_digests) > 4096:
                _digests.clear()
            known = _digests[code] = _code_digest(fn)
        return known
    return _code_digest(fn)


def _code_digest(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        inner = getattr(fn, "__wrapped__", None) or type(fn).__call__
        code = getattr(inner, "__code__", None)
        if code is None:
            return hashlib.md5(repr(fn).encode(), usedforsecurity=False).hexdigest()
    digest = hashlib.md5(usedforsecurity=False)

    def feed(co: types.CodeType) -> None:
        digest.update(co.co_code)
        digest.update(repr(co.co_names).encode())
        for const in co.co_consts:
            if isinstance(const, types.CodeType):
                feed(const)
            else:
                digest.update(repr(const).encode())

    feed(code)
    return digest.hexdigest()


class CachePolicy:
    """Base of cache policies; also carries how the cache is isolated and locked.

    Attributes:
        key_storage: where cache records go instead of the task's result storage (a
            folder or fsspec URL), or None.
        isolation_level: "READ_COMMITTED" or "SERIALIZABLE" (or None: READ_COMMITTED).
        lock_manager: the lock manager SERIALIZABLE isolation uses.
    """

    key_storage: Any = None
    isolation_level: Any = None
    lock_manager: Any = None

    @classmethod
    def from_cache_key_fn(cls, cache_key_fn: Callable[..., str | None]) -> CacheKeyFnPolicy:
        """A policy from a ``fn(task_run_context, inputs) -> key`` function."""
        return CacheKeyFnPolicy(cache_key_fn)

    def configure(
        self, key_storage: Any = None, lock_manager: Any = None, isolation_level: Any = None
    ) -> CachePolicy:
        """A copy of this policy with its storage, lock manager or isolation level set."""
        import copy

        new = copy.copy(self)
        if key_storage is not None:
            new.key_storage = key_storage
        if lock_manager is not None:
            new.lock_manager = lock_manager
        if isolation_level is not None:
            from flowplane.sdk.transactions import IsolationLevel

            new.isolation_level = IsolationLevel(isolation_level)
        return new

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        """The cache key, or None for "do not cache"."""
        raise NotImplementedError

    def __add__(self, other: CachePolicy | None) -> CachePolicy:
        if other is None or isinstance(other, NoCache):
            return self
        if not isinstance(other, CachePolicy):
            return NotImplemented
        mine = self.policies if isinstance(self, CompoundCachePolicy) else [self]
        theirs = other.policies if isinstance(other, CompoundCachePolicy) else [other]
        combined = CompoundCachePolicy(mine + theirs)
        combined.key_storage = self.key_storage or other.key_storage
        combined.isolation_level = self.isolation_level or other.isolation_level
        combined.lock_manager = self.lock_manager or other.lock_manager
        return combined

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only input names (strings) can be subtracted from a cache policy.")
        return self + Inputs(exclude=[name])

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CacheKeyFnPolicy(CachePolicy):
    """The key a user function computes: ``cache_key_fn(task_run_context, inputs)``."""

    def __init__(self, cache_key_fn: Callable[..., str | None]) -> None:
        self.cache_key_fn = cache_key_fn

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        return self.cache_key_fn(task_ctx, inputs)

    def __repr__(self) -> str:
        return f"CacheKeyFnPolicy({getattr(self.cache_key_fn, '__name__', self.cache_key_fn)!r})"


class CompoundCachePolicy(CachePolicy):
    """Several policies at once: the key hashes every part's key (None only if all are None)."""

    def __init__(self, policies: list[CachePolicy] | None = None) -> None:
        self.policies: list[CachePolicy] = list(policies or [])

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        excluded: set[str] = set()
        for policy in self.policies:
            if isinstance(policy, Inputs):
                excluded.update(policy.exclude)
        keys = []
        for policy in self.policies:
            if isinstance(policy, Inputs):
                policy = Inputs(exclude=sorted(excluded))
            key = policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
            if key is not None:
                keys.append(key)
        if not keys:
            return None
        return hash_objects(*keys)

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only input names (strings) can be subtracted from a cache policy.")
        if not any(isinstance(p, Inputs) for p in self.policies):
            return self + Inputs(exclude=[name])
        new = CompoundCachePolicy([p - name if isinstance(p, Inputs) else p for p in self.policies])
        new.key_storage, new.isolation_level, new.lock_manager = (
            self.key_storage,
            self.isolation_level,
            self.lock_manager,
        )
        return new

    def __repr__(self) -> str:
        return " + ".join(repr(p) for p in self.policies) or "CompoundCachePolicy([])"


class NoCache(CachePolicy):
    """Never cache (and, unless ``persist_result=True``, never persist)."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        return None

    def __add__(self, other: CachePolicy | None) -> CachePolicy:
        return other if other is not None else self


class TaskSource(CachePolicy):
    """The task function's compiled code: a changed body gives a new key."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if task_ctx is None:
            return None
        return code_digest(task_ctx.task.fn)


class FlowParameters(CachePolicy):
    """The parameters of the flow run the task runs in."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        return hash_objects(flow_parameters)


class RunId(CachePolicy):
    """The flow run's id (the task run's, outside flows): caches only within one run."""

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        if task_ctx is None:
            return None
        record = task_ctx.record
        run_id = record.flow_run.id if record.flow_run is not None else record.id
        return str(run_id)


class Inputs(CachePolicy):
    """The task's inputs (except the names in ``exclude``)."""

    def __init__(self, exclude: list[str] | None = None) -> None:
        self.exclude: list[str] = list(exclude or [])

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any] | None,
        **kwargs: Any,
    ) -> str | None:
        kept = {k: v for k, v in (inputs or {}).items() if k not in self.exclude}
        if not kept:
            return None
        key = hash_objects(kept)
        if key is None:
            raise ValueError(
                "The task's inputs cannot be hashed for its cache key; exclude the unhashable "
                "ones (cache_policy=INPUTS - 'name') or use a cache_key_fn."
            )
        return key

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            raise TypeError("Only input names (strings) can be subtracted from a cache policy.")
        new = Inputs(exclude=[*self.exclude, name])
        new.key_storage, new.isolation_level, new.lock_manager = (
            self.key_storage,
            self.isolation_level,
            self.lock_manager,
        )
        return new

    def __repr__(self) -> str:
        return f"Inputs(exclude={self.exclude!r})" if self.exclude else "Inputs()"


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = NONE = NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
