"""``flowplane run``: load a flow from a file or module and run it here, streaming its logs and state changes.

The run is an ordinary flow call in this process, so it reports where any flow
call would: the embedded database by default, or the server at
``FLOWPLANE_API_URL``. What the terminal shows comes from two in-process
listeners: a root logging handler (this command is the application, so the SDK's
own console output steps aside and the run's log records reach us as they are
made), and the background writer's client, through which every task-run state
change passes on its way to the API. Both feed one printer that holds lines for a
moment and prints them in time order.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from flowplane.cli.output import fail

if TYPE_CHECKING:
    from types import ModuleType

    from flowplane.sdk.flows import Flow

#: Exit code when several flows could run and none was chosen (no terminal to ask at).
EXIT_AMBIGUOUS = 2


def run(
    path: Optional[str] = typer.Option(
        None,
        "--path",
        "-p",
        help="A Python file holding the flow: path/to/file.py or path/to/file.py:flow_name.",
    ),
    module: Optional[str] = typer.Option(
        None,
        "--module",
        "-m",
        help="An importable module holding the flow: package.module or package.module:flow_name.",
    ),
    param: Optional[List[str]] = typer.Option(
        None,
        "--param",
        help="A parameter as key=value; the value is read as JSON, else taken as a string "
        "(repeatable; wins over --params).",
    ),
    params: Optional[str] = typer.Option(
        None, "--params", help="All parameters as one JSON object, e.g. '{\"n\": 3}'."
    ),
) -> None:
    """Run a flow in this process and watch it: its logs and state changes as they happen.

    The run is recorded like any other (embedded database, or the server at
    FLOWPLANE_API_URL). Exit code 0 when it ends Completed, 1 otherwise.
    When the file defines several flows, those no other flow in it calls are the
    candidates; name one with path:flow_name if more than one remains.
    """
    if (path is None) == (module is None):
        fail("Give the flow's location with either -p path/to/file.py[:flow] or -m module[:flow].")
    parameters = _parameters(param or [], params)
    from flowplane.sdk import entrypoints

    if path is not None:
        location, flow_name = entrypoints.split_entrypoint(path)
        loaded = _load(entrypoints.load_script, location)
    else:
        assert module is not None
        location, flow_name = entrypoints.split_entrypoint(module)
        loaded = _load(entrypoints.load_module, location)
    shown = location
    chosen = _choose_flow(loaded, flow_name, shown, "-p" if path is not None else "-m")
    _keep_strings(chosen, parameters, param or [])
    raise typer.Exit(_run_flow(chosen, parameters))


# --- parameters ------------------------------------------------------------------------------


def _parameters(pairs: list[str], params_json: str | None) -> dict[str, Any]:
    """``--params`` overlaid with each ``--param key=value``."""
    import json

    parameters: dict[str, Any] = {}
    if params_json is not None:
        try:
            parsed = json.loads(params_json)
        except json.JSONDecodeError as exc:
            fail(f"--params is not valid JSON: {exc}.")
        if not isinstance(parsed, dict):
            fail(f"--params must be a JSON object like '{{\"n\": 3}}', got {params_json!r}.")
        parameters.update(parsed)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--param {pair!r} is not key=value.")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parameters[key.strip()] = value
    return parameters


# --- finding the flow ------------------------------------------------------------------------


def _load(load: Any, location: str) -> ModuleType:
    from flowplane.exceptions import EntrypointError

    try:
        return load(location)  # type: ignore[no-any-return]
    except EntrypointError as exc:
        fail(str(exc))


def _choose_flow(
    module: ModuleType, flow_name: str | None, shown: str, option: str
) -> Flow[Any, Any]:
    from flowplane.exceptions import EntrypointError
    from flowplane.sdk.entrypoints import entry_points, find_flow, flows_in

    if flow_name is not None:
        try:
            return find_flow(module, flow_name, shown)
        except EntrypointError as exc:
            fail(str(exc))
    flows = flows_in(module)
    if not flows:
        fail(f"{shown} defines no flow (decorate a function with @flow).")
    candidates = entry_points(flows)
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    attrs = list(candidates)  # in the order the file defines them
    if sys.stdin.isatty() and sys.stdout.isatty():
        typer.echo(f"{shown} defines several flows:")
        for number, attr in enumerate(attrs, 1):
            typer.echo(f"  {number}. {attr}  (flow {candidates[attr].name!r})")
        while True:
            answer = typer.prompt("Which one? (number or name)").strip()
            if answer.isdigit() and 1 <= int(answer) <= len(attrs):
                return candidates[attrs[int(answer) - 1]]
            for attr in attrs:
                if answer in (attr, candidates[attr].name):
                    return candidates[attr]
            typer.echo(f"Please answer 1-{len(attrs)} or one of: {', '.join(attrs)}.")
    typer.echo(f"{shown} defines several flows:")
    for attr in attrs:
        typer.echo(f"  {attr}  (flow {candidates[attr].name!r})")
    fail(
        f"Several flows in {shown}; choose one with {option} {shown}:{attrs[0]} (or another name above).",
        EXIT_AMBIGUOUS,
    )


# --- running and watching --------------------------------------------------------------------


def _run_flow(flow: Flow[Any, Any], parameters: dict[str, Any]) -> int:
    """Run ``flow`` here with ``parameters``, streaming what happens; the exit code."""
    from flowplane.cli._api import load_settings, one_line_errors
    from flowplane.exceptions import ParameterError

    settings = load_settings()
    args, kwargs = _call_arguments(flow, parameters)
    printer = _Printer(sys.stdout)
    watcher = _Watcher(printer)
    handler = _RootHandler(printer, watcher)
    root = logging.getLogger()
    root.addHandler(handler)
    _tee_task_states(settings, printer)
    typer.echo(f"Running flow {flow.name!r} here, reporting to {_where(settings)}")
    printer.start()
    stdout, sys.stdout = sys.stdout, _HeldStream(printer, sys.stdout)  # type: ignore[assignment]
    state: Any = None
    interrupted = False
    try:
        with one_line_errors():
            try:
                outcome = flow(*args, **kwargs, return_state=True)  # type: ignore[call-arg]
                if flow.isasync:
                    import asyncio

                    outcome = asyncio.run(outcome)
                state = outcome
            except ParameterError as exc:  # the checks above missed it: still no run was made
                fail(" ".join(str(exc).split()))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        held, sys.stdout = sys.stdout, stdout
        if isinstance(held, _HeldStream):
            held.flush()
        printer.close()
        root.removeHandler(handler)
    if interrupted:
        typer.secho("Interrupted: the flow run was marked Crashed.", fg="red", err=True)
        return 130
    return _report(state, watcher)


def _keep_strings(flow: Flow[Any, Any], parameters: dict[str, Any], pairs: list[str]) -> None:
    """A ``--param`` whose parameter is annotated ``str`` keeps its text (``--param zip=10115``)."""
    import typing

    try:
        hints = typing.get_type_hints(flow.fn)
    except Exception:  # unresolvable annotations: leave the values as parsed
        return
    for pair in pairs:
        key, _, raw = pair.partition("=")
        key = key.strip()
        if hints.get(key) is str and not isinstance(parameters.get(key), str):
            parameters[key] = raw


def _call_arguments(
    flow: Flow[Any, Any], parameters: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The call for ``parameters``, checked first: a run the flow would refuse is never created."""
    import inspect

    from flowplane.cli._api import one_line_errors
    from flowplane.exceptions import ParameterError

    signature = flow.shape.signature
    kinds = {p.name: p.kind for p in signature.parameters.values()}
    var_kw = inspect.Parameter.VAR_KEYWORD in kinds.values()
    named = [
        n
        for n, k in kinds.items()
        if k not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    unknown = [k for k in parameters if k not in named]
    if unknown and not var_kw:
        known = ", ".join(named) or "none"
        fail(f"Flow {flow.name!r} has no parameter {unknown[0]!r} (its parameters: {known}).")
    missing = [
        p.name
        for p in signature.parameters.values()
        if p.name in named and p.default is inspect.Parameter.empty and p.name not in parameters
    ]
    if missing:
        flags = " ".join(f"--param {name}=..." for name in missing)
        fail(f"Flow {flow.name!r} needs {', '.join(map(repr, missing))}: pass {flags}")
    with one_line_errors():
        try:
            if flow.should_validate_parameters:
                flow.validate_parameters({k: v for k, v in parameters.items() if k in named})
            if var_kw:
                return [], dict(parameters)
            args, kwargs = flow.shape.unbind(parameters)
            flow.shape.bind(tuple(args), kwargs)
            return args, kwargs
        except ParameterError as exc:
            head, *problems = str(exc).splitlines()
            fail(" ".join([head, "; ".join(p.strip().lstrip("- ") for p in problems)]).strip())


def _where(settings: Any) -> str:
    """Where runs are recorded, for people (no password shown)."""
    import re

    if settings.api_url:
        return settings.api_url
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return f"the embedded database {url.split('///', 1)[-1]}"
    masked = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)
    return f"the database {masked}"


def _report(state: Any, watcher: _Watcher) -> int:
    run_id = state.state_details.flow_run_id or watcher.flow_run_id
    name = watcher.flow_run_name or "?"
    completed = state.type.value == "COMPLETED"
    text = f"Flow run {name!r} ({run_id}) finished in state {state.name}"
    if state.message and not completed:
        text += f": {' '.join(state.message.split())}"
    typer.secho(text, fg="green" if completed else "red", bold=True)
    typer.echo(f"See it with: flowplane flow-run inspect {run_id}")
    return 0 if completed else 1


class _Watcher:
    """Remembers the outermost flow run (the first one to log) for the header and the summary."""

    def __init__(self, printer: _Printer) -> None:
        self.printer = printer
        self.flow_run_id: Any = None
        self.flow_run_name: str | None = None

    def saw(self, record: logging.LogRecord) -> None:
        if self.flow_run_id is not None or record.name != "flowplane.flow_runs":
            return
        run_id = getattr(record, "flow_run_id", None)
        if run_id is None:
            return
        self.flow_run_id = run_id
        self.flow_run_name = getattr(record, "flow_run_name", None)
        self.printer.add(
            record.created - 1e-6,
            _style(
                f"Flow run {self.flow_run_name!r} created - id {run_id}",
                bold=True,
            ),
        )


class _RootHandler(logging.Handler):
    """The application's root handler while the flow runs: run logs to the printer, others' warnings to stderr."""

    def __init__(self, printer: _Printer, watcher: _Watcher) -> None:
        super().__init__(logging.INFO)
        self.printer = printer
        self.watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name.startswith(("flowplane.flow_runs", "flowplane.task_runs")):
                self.watcher.saw(record)
                self.printer.add(record.created, _log_line(record))
            elif record.levelno >= logging.WARNING:
                sys.stderr.write(f"{record.levelname}: {record.getMessage()}\n")
        except Exception:
            self.handleError(record)


_LEVEL_COLORS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}


def _style(text: str, **kwargs: Any) -> str:
    return typer.style(text, **kwargs) if sys.stdout.isatty() else text


def _line(created: float, level: str, label: str, message: str) -> str:
    import datetime as dt

    when = dt.datetime.fromtimestamp(created).strftime("%H:%M:%S.%f")[:-3]
    color = _LEVEL_COLORS.get(level)
    head = _style(f"{level:<7}", fg=color) if color else f"{level:<7}"
    return f"{when} | {head} | {label} - {message}"


def _log_line(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[0] is not None:
        message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
    label = getattr(record, "run_label", None) or record.name
    return _line(record.created, record.levelname, label, message)


#: Task-run states worth no line (Pending and the first Running are implied by what follows).
_QUIET_STATES = frozenset({"Pending", "Running"})
#: Task runs shown entering Completed before the rest go unmentioned (a big map would flood).
MAX_COMPLETED_SHOWN = 100


def _tee_task_states(settings: Any, printer: _Printer) -> None:
    """Show task-run state changes: the process's writer sends them through a client we wrap."""
    from flowplane.sdk import _api
    from flowplane.sdk.writer import writer_for

    def make_client() -> Any:
        from flowplane.client import get_client

        return _TeeClient(get_client(sync_client=True, settings=settings), printer)

    # The first call for a target makes its writer: the flow run will use this one. It sends
    # more often than usual, so state changes reach the terminal close to when they happen.
    writer = writer_for(_api.target_key(_api.current_settings()), make_client)
    writer.interval = min(writer.interval, _Printer.HOLD / 3)


class _TeeClient:
    """A sync client whose ``create_events`` also shows task-run state changes."""

    #: The writer's one-hop embedded path would bypass ``create_events``: send through it.
    embedded = False

    def __init__(self, client: Any, printer: _Printer) -> None:
        self._client = client
        self._printer = printer
        self._completed = 0

    def create_events(self, events: list[dict[str, Any]]) -> Any:
        for event in events:
            try:
                self._show(event)
            except Exception:  # showing must never stop the events from being sent
                pass
        return self._client.create_events(events)

    def _show(self, event: dict[str, Any]) -> None:
        name = event.get("event", "")
        if not name.startswith("prefect.task-run."):
            return
        resource = event["resource"]
        state = resource.get("prefect.state-name", "")
        if state in _QUIET_STATES:
            return
        occurred = event["occurred"]
        created = occurred.timestamp() if hasattr(occurred, "timestamp") else 0.0
        state_type = resource.get("prefect.state-type", "")
        if state == "Completed":
            self._completed += 1
            if self._completed > MAX_COMPLETED_SHOWN:
                if self._completed == MAX_COMPLETED_SHOWN + 1:
                    note = "More task runs completed: not shown (see flowplane task-run ls)"
                    self._printer.add(created, _line(created, "INFO", "flowplane run", note))
                return
        level = "ERROR" if state_type in ("FAILED", "CRASHED") else "INFO"
        label = f"Task run {resource.get('prefect.resource.name', '?')!r}"
        self._printer.add(created, _line(created, level, label, f"Entered state {state}"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _Printer:
    """Prints lines in time order: each is held briefly, so a state change sent by the
    background writer (up to its interval later) still lands among the log lines around it."""

    #: Seconds a line waits for earlier ones (the writer sends at least three times as often).
    HOLD = 0.15

    def __init__(self, out: Any) -> None:
        import threading

        self._out = out
        self._items: list[tuple[float, int, str]] = []
        self._count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Any = None

    def add(self, created: float, line: str) -> None:
        import heapq

        with self._lock:
            self._count += 1
            heapq.heappush(self._items, (created, self._count, line))

    def start(self) -> None:
        import threading

        self._thread = threading.Thread(
            target=self._loop, name="flowplane-run-printer", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        import time

        while not self._stop.wait(0.1):
            self._print_until(time.time() - self.HOLD)

    def _print_until(self, cutoff: float | None) -> None:
        import heapq

        lines = []
        with self._lock:
            while self._items and (cutoff is None or self._items[0][0] <= cutoff):
                lines.append(heapq.heappop(self._items)[2])
        if lines:
            self._out.write("\n".join(lines) + "\n")
            self._out.flush()

    def close(self) -> None:
        """Print everything still held (the run has ended and its writer was flushed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self._print_until(None)


class _HeldStream:
    """Stands in for stdout while the flow runs: what the flow prints joins the printer's
    queue, so it keeps its place among the run's log lines."""

    def __init__(self, printer: _Printer, real: Any) -> None:
        self._printer = printer
        self._real = real
        self._partial = ""

    def write(self, text: str) -> int:
        import time

        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        now = time.time()
        for line in lines:
            self._printer.add(now, line)
        return len(text)

    def flush(self) -> None:
        import time

        if self._partial:
            self._printer.add(time.time(), self._partial)
            self._partial = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
