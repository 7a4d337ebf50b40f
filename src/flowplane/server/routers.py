"""The API's routers, each included into the app when a request first needs it.

Importing a router module imports its store and schema modules and defines its
routes, and most processes touch a few groups: an embedded first flow run needs
``/flows`` and ``/flow_runs`` only (and of their routes, FastAPI's per-route build
runs for the ones used: see ``flowplane.server.api.lazy_route``). So :class:`LazyRouters` imports and includes a
router group on the first request under one of its path segments, and all of them
before anything that must see every route (``/openapi.json``, a path no group
claims; ``app.routes`` readers call :meth:`LazyRouters.load_all` first).

Routing answers are the same as with every router included up front: groups own
disjoint first path segments under ``/api`` (a test pins this), so no route of an
unloaded group could match a request another group serves, and the app's routes
are kept in the order below, the order they are matched in when all are loaded.

A group's routes join the app as they are, not through ``include_router``: the
routers carry the full ``/api/...`` prefix already, and an included router makes
FastAPI build every route a second time (dependant, body and response fields) for
the including app on its first request, which doubled the cost of each route.
"""

from __future__ import annotations

import gc
import importlib
import threading
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from flowplane.server.api import API_PREFIX

__all__ = ["API_PREFIX", "ROUTER_GROUPS", "LazyRouters", "LazyRoutersMiddleware", "RouterGroup"]


@dataclass(frozen=True)
class RouterGroup:
    """One router module and the first path segments (under ``/api``) its routes start with."""

    module: str
    segments: tuple[str, ...]


#: Every API router, hot paths first (routes are matched in order).
ROUTER_GROUPS: tuple[RouterGroup, ...] = (
    RouterGroup("flow_runs", ("flow_runs",)),
    RouterGroup("task_runs", ("task_runs",)),
    RouterGroup("logs", ("logs",)),
    RouterGroup("events", ("events",)),
    RouterGroup("concurrency_limits_v2", ("v2",)),
    RouterGroup("flows", ("flows",)),
    RouterGroup("flow_run_states", ("flow_run_states",)),
    RouterGroup("task_run_states", ("task_run_states",)),
    RouterGroup("concurrency_limits", ("concurrency_limits",)),
    RouterGroup("root", ("health", "ready", "hello", "version", "csrf-token", "admin")),
    RouterGroup("variables", ("variables",)),
    RouterGroup("artifacts", ("artifacts",)),
    RouterGroup("work_pools", ("work_pools",)),
    RouterGroup("work_queues", ("work_queues",)),
    RouterGroup("deployments", ("deployments",)),
)

_GROUP_OF_SEGMENT = {segment: group for group in ROUTER_GROUPS for segment in group.segments}


def router_of(group: RouterGroup) -> Any:
    """The ``APIRouter`` of ``group`` (importing its module)."""
    return importlib.import_module(f"flowplane.server.api.{group.module}").router


def first_segment(path: str) -> str | None:
    """The first segment of ``path`` under ``/api`` (``None`` for paths outside it)."""
    if not path.startswith(API_PREFIX + "/"):
        return None
    return path[len(API_PREFIX) + 1 :].split("/", 1)[0]


def route_path(scope: Scope) -> str:
    """The request's path as the app's routes see it (without the ASGI ``root_path``)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


class LazyRouters:
    """Includes the app's router groups on demand, keeping their routes in canonical order.

    The routes the app had before (``/``, ``/docs``, ``/api/openapi.json``) stay first.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._base_routes = list(app.router.routes)
        self._base_paths = frozenset(getattr(route, "path", None) for route in self._base_routes)
        self._included: dict[RouterGroup, list[Any]] = {}
        self.all_loaded = False

    def load_for_path(self, path: str) -> None:
        """Include the group serving ``path``; every group for a path no group claims
        (unless one of the app's own routes serves it)."""
        segment = first_segment(path)
        group = _GROUP_OF_SEGMENT.get(segment) if segment is not None else None
        if group is not None:
            if group not in self._included:
                self.load((group,))
        elif path not in self._base_paths:
            self.load_all()

    def load_all(self) -> None:
        """Include every group not yet included."""
        if not self.all_loaded:
            self.load(ROUTER_GROUPS)

    def load(self, groups: tuple[RouterGroup, ...]) -> None:
        """Include ``groups`` (those not yet included), then restore the canonical route order."""
        with self._lock:
            missing = [group for group in groups if group not in self._included]
            if not missing:
                return
            router = self.app.router
            for group in missing:
                self._included[group] = list(router_of(group).routes)
            router.routes[:] = self._base_routes + [
                route
                for group in ROUTER_GROUPS
                if group in self._included
                for route in self._included[group]
            ]
            # FastAPI >= 0.12x keys its cached OpenAPI document on a routes version.
            mark_changed = getattr(router, "_mark_routes_changed", None)
            if mark_changed is not None:
                mark_changed()
            self.all_loaded = len(self._included) == len(ROUTER_GROUPS)
        # The lifespan froze what start-up built; what this built lives as long.
        gc.freeze()


class LazyRoutersMiddleware:
    """Includes the router group a request needs before the app routes it."""

    def __init__(self, app: ASGIApp, routers: LazyRouters) -> None:
        self.app = app
        self.routers = routers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.routers.all_loaded:
            self.routers.load_for_path(route_path(scope))
        await self.app(scope, receive, send)
