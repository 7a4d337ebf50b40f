"""The engine's one logic and its two thin drivers.

A run is written once, as a generator (see ``_task_engine`` and ``_flow_engine``)
that *yields actions* — call the user's function, sleep, make an API request, do
something blocking — and receives each action's outcome (its value, or its
exception thrown back in). :func:`drive_sync` performs the actions in the calling
thread; :func:`drive_async` performs them on the running event loop (awaiting
coroutines, ``asyncio.sleep``, an ``AsyncClient``, blocking work in a thread). The
run logic never knows which one drives it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Generator
from typing import Any

from flowplane.sdk._timeouts import sync_timeout
from flowplane.sdk.context import Frame, enter, leave


class Invoke:
    """Call ``fn(*args, **kwargs)`` inside ``frame``, awaiting it if it returns an awaitable.

    ``timeout`` (seconds) ends the call with ``timeout_error``.
    """

    __slots__ = ("fn", "args", "kwargs", "frame", "timeout", "timeout_error")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Any,
        kwargs: dict[str, Any],
        frame: Frame | None = None,
        timeout: float | None = None,
        timeout_error: type[BaseException] = TimeoutError,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.frame = frame
        self.timeout = timeout
        self.timeout_error = timeout_error


class Sleep:
    """Wait ``seconds``."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Api:
    """Call client operation ``name`` with the driver's client (sync or async)."""

    __slots__ = ("operation", "args", "kwargs")

    def __init__(self, __operation: str, *args: Any, **kwargs: Any) -> None:
        self.operation = __operation
        self.args = args
        self.kwargs = kwargs


class Blocking:
    """Run ``fn()``, which may block (waiting on futures, flushing): in a thread under async."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn


Action = Invoke | Sleep | Api | Blocking
Steps = Generator[Action, Any, Any]


def drive_sync(steps: Steps, client: Any = None) -> Any:
    """Run ``steps`` to completion in this thread; API actions use the sync ``client``."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            action = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            if type(action) is Invoke:
                value = _invoke_sync(action)
            elif type(action) is Api:
                value = getattr(client, action.operation)(*action.args, **action.kwargs)
            elif type(action) is Sleep:
                import time

                time.sleep(action.seconds)
            else:
                value = action.fn()  # type: ignore[union-attr]
        except BaseException as exc:  # everything goes back to the run logic to decide
            error = exc


#: Types a function's result is most often, none of them awaitable: checked first, since
#: ``inspect.isawaitable`` asks the ``Awaitable`` ABC (~0.3 µs a task run).
_NEVER_AWAITABLE = frozenset({type(None), bool, int, float, str, bytes, list, tuple, dict, set})


def _invoke_sync(action: Invoke) -> Any:
    token = enter(action.frame) if action.frame is not None else None
    try:
        if action.timeout is None:
            result = action.fn(*action.args, **action.kwargs)
        else:
            with sync_timeout(action.timeout, action.timeout_error):
                result = action.fn(*action.args, **action.kwargs)
        if type(result) not in _NEVER_AWAITABLE and inspect.isawaitable(result):
            # An async hook (or function) met by the sync driver: run it to completion here.
            result = _run_awaitable(result)
        return result
    finally:
        if token is not None:
            leave(token)


def _run_awaitable(awaitable: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    # A loop runs in this thread (sync code called from async code): use a helper thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _await(awaitable)).result()


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def drive_async(steps: Steps, client: Any = None) -> Any:
    """Run ``steps`` to completion on the running loop; API actions use the async ``client``."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            action = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            if type(action) is Invoke:
                value = await _invoke_async(action)
            elif type(action) is Api:
                value = await getattr(client, action.operation)(*action.args, **action.kwargs)
            elif type(action) is Sleep:
                await asyncio.sleep(action.seconds)
            else:
                value = await asyncio.to_thread(action.fn)  # type: ignore[union-attr]
        except BaseException as exc:  # everything goes back to the run logic to decide
            error = exc


async def _invoke_async(action: Invoke) -> Any:
    token = enter(action.frame) if action.frame is not None else None
    try:
        if action.timeout is None:
            result = action.fn(*action.args, **action.kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        try:
            result = action.fn(*action.args, **action.kwargs)
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(_await(result), action.timeout)
            return result
        except asyncio.TimeoutError:
            raise action.timeout_error(f"Timed out after {action.timeout:g} second(s).") from None
    finally:
        if token is not None:
            leave(token)
