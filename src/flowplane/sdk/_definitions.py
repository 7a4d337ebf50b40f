"""What flow and task definitions share: frozen attributes, ``with_options`` copies, hooks, retry settings."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from flowplane.core.retries import DelaySpec, normalize_delays

#: Hook kinds and the state they fire on.
HOOK_KINDS = ("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running")


class Definition:
    """Base of ``Flow`` and ``Task``: immutable once made (except for hook registration)."""

    _frozen: bool

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen"):
            raise AttributeError(
                f"{type(self).__name__} definitions are frozen; use with_options(...) for a changed copy"
            )
        object.__setattr__(self, name, value)

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def _options(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this definition."""
        raise NotImplementedError

    def with_options(self, **changes: Any) -> Any:
        """A copy of this definition with some options changed.

        Args:
            changes: any keyword the decorator accepts.

        Returns:
            A new definition; this one is unchanged.

        Raises:
            TypeError: an option the decorator does not know.
        """
        options = self._options()
        unknown = set(changes) - set(options)
        if unknown:
            raise TypeError(f"Unknown option(s) for {type(self).__name__}: {sorted(unknown)}")
        options.update(changes)
        return type(self)(**options)

    # --- hooks registered by decorator methods (Prefect's API appends in place) ---

    def _add_hook(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        hooks: list[Callable[..., Any]] = self.__dict__[f"{kind}_hooks"]
        hooks.append(fn)
        return fn

    def on_completion(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(definition, run, state)`` to run when a run completes (decorator)."""
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(definition, run, state)`` to run when a run fails (decorator)."""
        return self._add_hook("on_failure", fn)

    def on_running(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Register ``fn(definition, run, state)`` to run when a run starts running (decorator)."""
        return self._add_hook("on_running", fn)


def hook_list(hooks: Iterable[Callable[..., Any]] | None, kind: str) -> list[Callable[..., Any]]:
    """A hook option as a fresh list, checked to hold callables.

    Raises:
        TypeError: the option is not a list of callables.
    """
    if hooks is None:
        return []
    if callable(hooks):
        raise TypeError(
            f"Expected a list of callables for {kind!r}, got one callable; wrap it in []."
        )
    result = list(hooks)
    for hook in result:
        if not callable(hook):
            raise TypeError(f"Expected callables in {kind!r}, got {type(hook).__name__}.")
    return result


def check_retries(
    retries: int | None, delay: DelaySpec, jitter: float | None
) -> tuple[int, tuple[float, ...]]:
    """Validated retry settings: the retry count and the delays.

    Raises:
        ValueError: a negative count, delay or jitter factor.
    """
    count = int(retries or 0)
    if count < 0:
        raise ValueError("retries must be >= 0")
    if jitter is not None and jitter < 0:
        raise ValueError("retry_jitter_factor must be >= 0")
    return count, normalize_delays(delay, count)


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine."""
    if inspect.iscoroutinefunction(fn):
        return True
    # A callable object whose __call__ is a coroutine function.
    return callable(fn) and inspect.iscoroutinefunction(type(fn).__call__)
