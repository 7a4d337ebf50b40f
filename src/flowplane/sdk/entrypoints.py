"""Finding a flow from where it lives: a file or an importable module, and the flow's name in it.

An entrypoint is ``path/to/file.py:function_name`` or ``package.module:function_name``
(Prefect's form); the name may also be the flow's own name. ``flowplane run``, the
flow-run executor and workers all load flows through here, so they agree on what an
entrypoint means. Errors are :class:`~flowplane.exceptions.EntrypointError` with a
one-line message naming what was wrong.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
import types
from typing import TYPE_CHECKING, Any

from flowplane.exceptions import EntrypointError

if TYPE_CHECKING:
    from types import ModuleType

    from flowplane.sdk.flows import Flow


def split_entrypoint(value: str) -> tuple[str, str | None]:
    """``'where:flow'`` -> ``('where', 'flow')``; no (or an empty) name -> ``(where, None)``."""
    where, sep, name = value.rpartition(":")
    if not sep or not where or "/" in name or "\\" in name:
        return value, None  # no name given (or a ':' inside the path itself)
    return where, name.strip() or None


def is_file_location(where: str) -> bool:
    """Whether ``where`` names a file (``.py``, or a path) rather than a dotted module name."""
    return where.endswith(".py") or os.sep in where or "/" in where or os.path.exists(where)


def load_script(location: str) -> ModuleType:
    """Execute the Python file at ``location`` as a module (its folder importable, as ``python file.py`` has it)."""
    if not os.path.exists(location):
        raise EntrypointError(f"No such file: {location}")
    if os.path.isdir(location):
        raise EntrypointError(f"{location} is a folder; give a Python file (path/to/file.py).")
    file = os.path.abspath(location)
    stem = os.path.splitext(os.path.basename(file))[0]
    name = stem
    if not stem.isidentifier() or _taken(stem, file):
        name = f"__flowplane_run__.{stem}"  # never shadow a module that exists elsewhere
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"{location} is not a Python file flowplane can load.")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(file)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module  # pickling (process task runners) finds the flow's functions
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise EntrypointError(f"{location} called exit({exc.code}) while loading.") from None
    except KeyboardInterrupt:
        sys.modules.pop(name, None)
        raise
    except BaseException as exc:
        sys.modules.pop(name, None)
        raise EntrypointError(f"{location} failed to load: {describe(exc, file)}") from exc
    return module


def _taken(name: str, file: str) -> bool:
    """Whether importing ``name`` would find something other than ``file`` (stdlib, a package)."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return getattr(loaded, "__file__", None) != file
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin != file


def load_module(location: str) -> ModuleType:
    """Import the module named ``location`` (the working directory importable, as ``python -m`` has it)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (location == exc.name or location.startswith(exc.name + ".")):
            raise EntrypointError(
                f"No module named {location!r} (is it installed, or on PYTHONPATH?)."
            ) from None
        raise EntrypointError(
            f"Module {location!r} failed to import: {describe(exc, None)}"
        ) from exc
    except SystemExit as exc:
        raise EntrypointError(
            f"Module {location!r} called exit({exc.code}) while importing."
        ) from None
    except Exception as exc:
        raise EntrypointError(
            f"Module {location!r} failed to import: {describe(exc, None)}"
        ) from exc


def describe(exc: BaseException, file: str | None) -> str:
    """``exc`` in one line, with the line of the flow's code that raised it."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if isinstance(exc, SyntaxError) and exc.lineno:
        return text
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if file is None or f.filename == file]
    if mine:
        last = mine[-1]
        return f"{text} (at {last.filename}:{last.lineno})"
    return text


def flows_in(module: ModuleType) -> dict[str, Flow[Any, Any]]:
    """The flows ``module`` defines, by the name they are bound to (flows it only imports: when it defines none)."""
    from flowplane.sdk.flows import Flow

    found: dict[str, Flow[Any, Any]] = {}
    seen: set[int] = set()
    for attr, value in vars(module).items():
        if isinstance(value, Flow) and id(value) not in seen:
            seen.add(id(value))
            found[attr] = value
    own = {a: f for a, f in found.items() if f.__module__ == module.__name__}
    return own or found


def _called_names(fn: Any) -> set[str]:
    """Global names a function's code (nested functions and comprehensions included) refers to."""
    code = getattr(fn, "__code__", None)
    names: set[str] = set()
    todo = [code] if code is not None else []
    while todo:
        current = todo.pop()
        names.update(current.co_names)
        todo.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return names


def entry_points(flows: dict[str, Flow[Any, Any]]) -> dict[str, Flow[Any, Any]]:
    """The flows no other flow here calls: running one of those is what people mean."""
    called: set[str] = set()
    for attr, flow in flows.items():
        called |= _called_names(flow.fn) - {attr}
    top = {a: f for a, f in flows.items() if a not in called}
    return top or flows


def find_flow(module: ModuleType, flow_name: str, shown: str) -> Flow[Any, Any]:
    """The flow bound to ``flow_name`` in ``module`` (or whose name is ``flow_name``)."""
    flows = flows_in(module)
    if not flows:
        raise EntrypointError(f"{shown} defines no flow (decorate a function with @flow).")
    for attr, flow in flows.items():
        if flow_name in (attr, flow.name):
            return flow
    raise EntrypointError(f"{shown} has no flow named {flow_name!r}; it has: {', '.join(flows)}.")


def load_flow_from_entrypoint(entrypoint: str) -> Flow[Any, Any]:
    """The flow at ``entrypoint`` (``file.py:name`` or ``module:name``).

    Without a name, the file's single entry-point flow (one no other flow in it calls).

    Raises:
        EntrypointError: the file or module cannot be loaded, or holds no such flow.
    """
    where, name = split_entrypoint(entrypoint)
    module = load_script(where) if is_file_location(where) else load_module(where)
    if name is not None:
        return find_flow(module, name, where)
    flows = flows_in(module)
    if not flows:
        raise EntrypointError(f"{where} defines no flow (decorate a function with @flow).")
    candidates = entry_points(flows)
    if len(candidates) == 1:
        return next(iter(candidates.values()))
    raise EntrypointError(
        f"Several flows in {where} ({', '.join(candidates)}); name one as {where}:{next(iter(candidates))}."
    )


__all__ = [
    "describe",
    "entry_points",
    "find_flow",
    "flows_in",
    "is_file_location",
    "load_flow_from_entrypoint",
    "load_module",
    "load_script",
    "split_entrypoint",
]
