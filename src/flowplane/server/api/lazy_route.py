"""``LazyAPIRoute``: a FastAPI route that builds its request machinery the first time it is used.

FastAPI builds each route when its decorator runs: the dependant (every parameter's
pydantic field), the body model and field, the response field and the request handler,
about 2-3 ms a route. A process serves a few routes of each router it loads (a first
flow run: 3 of the 30 routes of ``/flows`` and ``/flow_runs``), so a lazy route keeps
only what matching needs (path pattern, methods, name) and builds the rest when anything
else is first asked of it: handling a request, the OpenAPI document, FastAPI's checks.
The built route is the one FastAPI would have built, from the same arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import compile_path, get_name


class LazyAPIRoute(APIRoute):
    """An ``APIRoute`` whose FastAPI build runs on first use (see the module docstring)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # What matching a request and naming the route need, as APIRoute sets them.
        self.path = path
        self.endpoint = endpoint
        methods = kwargs.get("methods") or ["GET"]
        self.methods = {method.upper() for method in methods}
        name = kwargs.get("name")
        self.name = get_name(endpoint) if name is None else name
        self.path_regex, self.path_format, self.param_convertors = compile_path(path)
        self._deferred: dict[str, Any] | None = kwargs
        self._build_lock = threading.Lock()
        self._building_thread: int | None = None

    def __getattr__(self, attribute: str) -> Any:
        # Called only for attributes not set yet, which the build sets. While the build
        # runs, FastAPI's own probes of unset attributes fail as they would on an APIRoute.
        if (
            attribute.startswith("__")
            or "_build_lock" not in self.__dict__
            or self.__dict__.get("_building_thread") == threading.get_ident()
        ):
            raise AttributeError(attribute)
        self.build()
        return object.__getattribute__(self, attribute)

    def build(self) -> None:
        """Run FastAPI's build of this route now (once; later calls do nothing)."""
        with self._build_lock:
            kwargs = self._deferred
            if kwargs is None:
                return
            self._building_thread = threading.get_ident()
            try:
                APIRoute.__init__(self, self.path, self.endpoint, **kwargs)
            finally:
                self._building_thread = None
            self._deferred = None
