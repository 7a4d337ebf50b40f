"""Run loggers: ``get_run_logger()``, the handler that ships run log lines through the writer, and ``log_prints``.

Run log lines go three ways: to the API (through the process's background
writer, with the run's ids), to the console (only when the application has
configured no logging of its own), and up to the root logger (so ``caplog`` and
application handlers see them).
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import sys
import threading
from typing import Any

from flowplane.exceptions import MissingContextError
from flowplane.sdk.context import FlowRunContext, TaskRunContext, current_frame

__all__ = [
    "get_run_logger",
    "get_logger",
    "RunLoggerAdapter",
    "RunLogHandler",
    "disable_run_logger",
    "print_as_log",
]

FLOW_RUN_LOGGER = "flowplane.flow_runs"
TASK_RUN_LOGGER = "flowplane.task_runs"
CONSOLE_FORMAT = "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s"

_UTC = dt.timezone.utc
_setup_lock = threading.Lock()
_configured = False


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger bound to one run: each record carries the run's ids and writer."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra  # type: ignore[dict-item]
        return msg, kwargs

    def getChild(self, suffix: str, extra: dict[str, Any] | None = None) -> RunLoggerAdapter:
        """A child logger carrying the same run (plus ``extra``)."""
        return RunLoggerAdapter(
            self.logger.getChild(suffix), {**(self.extra or {}), **(extra or {})}
        )


class RunLogHandler(logging.Handler):
    """Queues records that carry a run's writer as ``LogCreate`` dicts (no I/O here)."""

    def emit(self, record: logging.LogRecord) -> None:
        writer = getattr(record, "flowplane_writer", None)
        if writer is None:
            return
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message = f"{message}\n{_formatter.formatException(record.exc_info)}"
            writer.emit_log(
                {
                    "name": record.name,
                    "level": record.levelno,
                    "message": message,
                    "timestamp": dt.datetime.fromtimestamp(record.created, _UTC),
                    "flow_run_id": getattr(record, "flow_run_id", None),
                    "task_run_id": getattr(record, "task_run_id", None),
                }
            )
        except Exception:
            self.handleError(record)


class _ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes run logs to stderr unless the application configured handlers of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return  # the root logger will show it (propagation), don't print twice
        super().emit(record)


_formatter = logging.Formatter()


def _setup() -> None:
    """Attach the handlers once per process (on first use, never at import)."""
    global _configured
    if _configured:
        return
    with _setup_lock:
        if _configured:
            return
        handler = RunLogHandler()
        console = _ConsoleHandler(sys.stderr)
        console.setFormatter(logging.Formatter(CONSOLE_FORMAT, "%H:%M:%S"))
        for name in (FLOW_RUN_LOGGER, TASK_RUN_LOGGER):
            lg = logging.getLogger(name)
            lg.addHandler(handler)
            lg.addHandler(console)
            if lg.level == logging.NOTSET:
                lg.setLevel(logging.INFO)
        _configured = True


def flow_run_logger(ctx: FlowRunContext) -> RunLoggerAdapter:
    """The logger of a flow run."""
    _setup()
    return RunLoggerAdapter(
        logging.getLogger(FLOW_RUN_LOGGER),
        {
            "flow_run_id": ctx.flow_run.id,
            "flow_run_name": ctx.flow_run.name,
            "flow_name": ctx.flow.name,
            "task_run_id": None,
            "run_label": f"Flow run {ctx.flow_run.name!r}",
            "flowplane_writer": ctx.record.writer,
        },
    )


def task_run_logger(ctx: TaskRunContext, flow_ctx: FlowRunContext | None) -> RunLoggerAdapter:
    """The logger of a task run."""
    _setup()
    record = ctx.record
    writer = record.flow_run.writer if record.flow_run is not None else None
    return RunLoggerAdapter(
        logging.getLogger(TASK_RUN_LOGGER),
        {
            "task_run_id": record.id,
            "task_run_name": record.name,
            "task_name": ctx.task.name,
            "flow_run_id": record.flow_run.id if record.flow_run is not None else None,
            "flow_run_name": flow_ctx.flow_run.name if flow_ctx is not None else None,
            "flow_name": flow_ctx.flow.name if flow_ctx is not None else None,
            "run_label": f"Task run {record.name!r}",
            "flowplane_writer": writer,
        },
    )


def get_run_logger(
    context: FlowRunContext | TaskRunContext | None = None, **extra: Any
) -> RunLoggerAdapter:
    """A logger for the current flow or task run; its lines are recorded with the run.

    Args:
        context: the run to log for (default: the current one).
        extra: more fields to attach to each record.

    Returns:
        A ``logging.LoggerAdapter``.

    Raises:
        MissingContextError: called outside a flow or task run without ``context``.
    """
    frame = current_frame()
    ctx = context or frame.task or frame.flow
    if ctx is None:
        raise MissingContextError(
            "There is no active flow or task run; get_run_logger() works inside a @flow or "
            "@task (use logging.getLogger() elsewhere)."
        )
    if isinstance(ctx, TaskRunContext):
        adapter = task_run_logger(ctx, frame.flow)
    else:
        adapter = flow_run_logger(ctx)
    if extra:
        adapter.extra = {**(adapter.extra or {}), **extra}
    return adapter


def get_logger(name: str | None = None) -> logging.Logger:
    """A flowplane logger (``flowplane.<name>``), not bound to any run."""
    return logging.getLogger(f"flowplane.{name}" if name else "flowplane")


class disable_run_logger:
    """Within this block run loggers drop their records (useful when calling tasks' ``.fn`` in tests)."""

    def __enter__(self) -> None:
        self._loggers = [logging.getLogger(FLOW_RUN_LOGGER), logging.getLogger(TASK_RUN_LOGGER)]
        self._previous = [lg.disabled for lg in self._loggers]
        for lg in self._loggers:
            lg.disabled = True

    def __exit__(self, *exc: object) -> None:
        for lg, was in zip(self._loggers, self._previous, strict=True):
            lg.disabled = was


# --- log_prints -----------------------------------------------------------------------------

_original_print = builtins.print
_print_users = 0
_print_lock = threading.Lock()


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    frame = current_frame()
    ctx = frame.task or frame.flow
    if ctx is None or not ctx.log_prints or (file is not None and file is not sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    text = (sep if sep is not None else " ").join(str(a) for a in args)
    get_run_logger(ctx).info(text)


class print_as_log:
    """While any run with ``log_prints`` is active, ``print`` to stdout becomes an INFO log line of that run."""

    def __enter__(self) -> None:
        global _print_users
        with _print_lock:
            if _print_users == 0:
                builtins.print = _print
            _print_users += 1

    def __exit__(self, *exc: object) -> None:
        global _print_users
        with _print_lock:
            _print_users -= 1
            if _print_users == 0 and builtins.print is _print:
                builtins.print = _original_print
