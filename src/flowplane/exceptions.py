"""flowplane's errors, one tree:

FlowplaneError
├── ConfigurationError            a setting or profile is wrong
├── EntrypointError               a flow cannot be loaded from where it was said to be
├── StepError                     a deployment's pull step failed or is unknown
├── ClientError                   talking to the API failed
│   ├── APIUnreachable            no server answered at the API URL
│   └── HTTPStatusError           the server answered with an error status
│       ├── ObjectNotFound        404
│       ├── ObjectAlreadyExists   409
│       └── ValidationFailed      422
├── RunError                      a run did not produce a result
│   ├── FailedRun                 it failed (no exception attached)
│   ├── CrashedRun                it crashed
│   ├── CancelledRun              it was cancelled
│   ├── PausedRun                 it is paused
│   ├── UnfinishedRun             it has not finished yet
│   ├── RunNotStarted             an existing run the API would not let start here
│   └── MissingResult             its result is not kept in memory
├── ParameterError                a flow's or task's call arguments are wrong
│   ├── ParameterBindError        they do not fit the signature
│   └── ParameterTypeError        they fail validation against the annotations
├── UpstreamTaskError             an upstream run did not complete
├── NotPausedError                resuming a run that is not paused
├── FlowPauseTimeout              a paused run was not resumed in time
├── MappingError                  ``Task.map`` got unusable arguments
│   ├── MappingLengthMismatch     iterables of different lengths
│   └── MappingMissingIterable    nothing to map over
└── MissingContextError           needs a flow or task run, and none is active
TimeoutError (builtin)
├── TaskRunTimeoutError           a task run exceeded its ``timeout_seconds``
└── FlowRunTimeoutError           a flow run exceeded its ``timeout_seconds``
BaseException (control flow; never caught by ``except Exception``)
└── FlowplaneSignal
    ├── Abort                     the API told the run to stop (ABORT)
    ├── Pause                     the run was suspended; this process stops running it
    └── TerminationSignal         the process received SIGTERM
"""

from __future__ import annotations

from typing import Any


class FlowplaneError(Exception):
    """Root of every flowplane error."""


class ConfigurationError(FlowplaneError):
    """A setting, profile or configuration file is invalid."""


class EntrypointError(FlowplaneError):
    """A flow could not be loaded from its entrypoint (``file.py:name`` or ``module:name``)."""


class StepError(FlowplaneError):
    """A deployment's pull step failed, or is not one flowplane knows."""


class ClientError(FlowplaneError):
    """A request to the flowplane API failed."""


class APIUnreachable(ClientError):
    """No server answered at the API URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Cannot reach the flowplane API at {url}: {reason}")


class HTTPStatusError(ClientError):
    """The server answered with an error status; ``detail`` is its explanation."""

    def __init__(self, status_code: int, detail: Any, method: str = "", url: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{status_code}: {_detail_text(detail)}{where}")


class ObjectNotFound(HTTPStatusError):
    """The object asked for does not exist (404)."""


class ObjectAlreadyExists(HTTPStatusError):
    """The object to create exists already (409)."""


class ValidationFailed(HTTPStatusError):
    """The server rejected the request body or parameters (422)."""


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


# --- engine errors ---------------------------------------------------------------------


class RunError(FlowplaneError):
    """A run's result was asked for, and the run has none to give."""


class FailedRun(RunError):
    """The run failed and no exception is attached to its state."""


class CrashedRun(RunError):
    """The run crashed (something outside user code ended it)."""


class CancelledRun(RunError):
    """The run was cancelled."""


class PausedRun(RunError):
    """The run is paused."""


class UnfinishedRun(RunError):
    """The run has not finished (it is scheduled, pending, running or cancelling)."""


class RunNotStarted(RunError):
    """An existing flow run could not be started here: the API refused Running.

    It is cancelled, finished, or already running elsewhere; ``state`` is the state it keeps.
    """

    def __init__(self, message: str, state: Any = None) -> None:
        super().__init__(message)
        self.state = state


class MissingResult(RunError):
    """The state carries no result in memory (e.g. it was read back from the API)."""


class ParameterError(FlowplaneError):
    """A flow's or task's call arguments are wrong; nothing was run or recorded."""


class ParameterBindError(ParameterError, TypeError):
    """The call arguments do not fit the function's signature."""


class ParameterTypeError(ParameterError, TypeError):
    """The call arguments failed validation against the function's annotations."""


class UpstreamTaskError(FlowplaneError):
    """A run depends on an upstream run that did not complete."""


class NotPausedError(FlowplaneError):
    """A run that is not paused was asked to resume."""


class FlowPauseTimeout(FlowplaneError):
    """A paused flow run was not resumed before its pause timed out."""


class MappingError(FlowplaneError, ValueError):
    """``Task.map`` was given arguments it cannot map over."""


class MappingLengthMismatch(MappingError):
    """The iterables given to ``Task.map`` have different lengths."""


class MappingMissingIterable(MappingError):
    """``Task.map`` was given no iterable to map over."""


class MissingContextError(FlowplaneError, RuntimeError):
    """The call needs an active flow or task run, and there is none."""


class TaskRunTimeoutError(TimeoutError):
    """A task run exceeded its ``timeout_seconds``."""


class FlowRunTimeoutError(TimeoutError):
    """A flow run exceeded its ``timeout_seconds``."""


class FlowplaneSignal(BaseException):
    """Base of control-flow signals; user code's ``except Exception`` does not catch them."""


class Abort(FlowplaneSignal):
    """The API answered ABORT to a proposed state: the run must stop now."""


class Pause(FlowplaneSignal):
    """The run was suspended: this process stops executing it, to be run again once resumed.

    Attributes:
        state: the Suspended state the API recorded.
    """

    def __init__(self, *args: Any, state: Any = None) -> None:
        super().__init__(*args)
        self.state = state


class TerminationSignal(FlowplaneSignal):
    """The process received a termination signal (SIGTERM) while a run was active."""

    def __init__(self, signal: int) -> None:
        self.signal = signal
        super().__init__(f"Received termination signal {signal}")
