"""Timeouts for synchronous code: SIGALRM in the main thread, an asynchronous exception in other threads."""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def sync_timeout(seconds: float | None, exc_type: type[BaseException]) -> Iterator[None]:
    """Raise ``exc_type`` inside the block if it runs longer than ``seconds``.

    In the main thread an interval timer delivers SIGALRM (which interrupts blocking
    calls such as ``time.sleep``). In other threads the exception is injected with
    ``PyThreadState_SetAsyncExc``: it is raised at the thread's next bytecode, so a
    call blocked in C code ends only when that call returns.
    """
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _alarm(seconds, exc_type):
            yield
    else:
        with _async_exception(seconds, exc_type):
            yield


@contextmanager
def _alarm(seconds: float, exc_type: type[BaseException]) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise exc_type(f"Timed out after {seconds:g} second(s).")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if 0 < outer_left < seconds:  # an outer timer (e.g. the flow's) is due first
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, outer_left)
        yield
        return
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left > 0:  # the outer timer keeps counting
            left = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))


@contextmanager
def _async_exception(seconds: float, exc_type: type[BaseException]) -> Iterator[None]:
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"inside": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["inside"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread_id), ctypes.py_object(exc_type)
                )

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["inside"] = False
            fired = state["fired"]
        timer.cancel()
        if fired:
            # If the exception was injected but not yet raised, clear it so it cannot
            # surface later, outside the block.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
