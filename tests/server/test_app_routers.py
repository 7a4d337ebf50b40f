"""The API routers are included on first use, and the app answers exactly as with all of them up front."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from flowplane.server.api.lazy_route import LazyAPIRoute
from flowplane.server.app import create_app
from flowplane.server.routers import (
    API_PREFIX,
    ROUTER_GROUPS,
    LazyRouters,
    first_segment,
    router_of,
)
from flowplane.settings import Settings


@pytest.fixture
async def fresh_app(sqlite_url: str, flowplane_home: Path) -> AsyncIterator[Any]:
    """A started app that has served nothing yet (no router group included)."""
    settings = Settings(home=flowplane_home, database_url=sqlite_url, server_services_enabled=False)
    app = create_app(settings, run_migrations=False)
    async with LifespanManager(app):
        yield app


def http_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def api_routes(app: Any) -> list[Any]:
    """The API routes ``app`` has, in the order it matches them."""
    return [
        route
        for route in app.routes
        if route.path.startswith(API_PREFIX + "/") and route.path != "/api/openapi.json"
    ]


def test_each_group_owns_the_first_path_segments_of_its_routes() -> None:
    owners: dict[str, str] = {}
    for group in ROUTER_GROUPS:
        for segment in group.segments:
            assert segment not in owners, f"{segment} claimed by {owners[segment]} and {group}"
            owners[segment] = group.module
        for route in router_of(group).routes:
            assert first_segment(route.path) in group.segments, route.path


async def test_a_new_app_has_no_router_included_until_asked(fresh_app: Any) -> None:
    routers: LazyRouters = fresh_app.state.routers
    assert api_routes(fresh_app) == []
    async with http_client(fresh_app) as client:
        response = await client.post("/api/variables/filter", json={})
    assert response.status_code == 200
    assert response.json() == []
    variables = next(group for group in ROUTER_GROUPS if group.module == "variables")
    assert api_routes(fresh_app) == router_of(variables).routes
    assert not routers.all_loaded


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/flow_runs/filter", {}, 200),
        ("POST", "/api/task_runs/filter", {}, 200),
        ("POST", "/api/logs/filter", {}, 200),
        ("POST", "/api/events/filter", {}, 200),
        ("POST", "/api/v2/concurrency_limits/filter", {}, 200),
        ("POST", "/api/flows/filter", {}, 200),
        (
            "GET",
            "/api/flow_run_states/?flow_run_id=8a3ea0a4-5fd8-4c53-a25c-1b6f33a3c3a5",
            None,
            200,
        ),
        (
            "GET",
            "/api/task_run_states/?task_run_id=8a3ea0a4-5fd8-4c53-a25c-1b6f33a3c3a5",
            None,
            200,
        ),
        ("POST", "/api/concurrency_limits/filter", {}, 200),
        ("GET", "/api/health", None, 200),
        ("GET", "/api/admin/version", None, 200),
        ("POST", "/api/variables/filter", {}, 200),
        ("POST", "/api/artifacts/filter", {}, 200),
        ("POST", "/api/work_pools/filter", {}, 200),
        ("POST", "/api/work_queues/filter", {}, 200),
        ("POST", "/api/deployments/filter", {}, 200),
        # the answers that depend on every route: unknown path, wrong method, bad body
        ("GET", "/api/no_such_thing", None, 404),
        ("GET", "/no_such_thing", None, 404),
        ("PUT", "/api/health", None, 405),
        ("PUT", "/api/deployments/filter", None, 405),
        ("POST", "/api/deployments/filter", {"limit": "many"}, 422),
        ("GET", "/api/flows", None, 307),  # the trailing-slash redirect to /api/flows/
    ],
)
async def test_the_first_request_of_each_kind_answers_as_with_every_router_included(
    fresh_app: Any, method: str, path: str, body: Any, status: int
) -> None:
    async with http_client(fresh_app) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == status, response.text
    if status == 404:
        assert response.json() == {"detail": "Not Found"}
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "limit"]


async def test_openapi_lists_every_route_whatever_was_loaded_before(
    fresh_app: Any, sqlite_url: str, flowplane_home: Path
) -> None:
    async with http_client(fresh_app) as client:
        # Groups included out of their matching order must still end up in it.
        for path in ("/api/deployments/filter", "/api/flows/filter", "/api/logs/filter"):
            assert (await client.post(path, json={})).status_code == 200
        document = (await client.get("/api/openapi.json")).json()
    assert fresh_app.state.routers.all_loaded
    assert api_routes(fresh_app) == [
        route for group in ROUTER_GROUPS for route in router_of(group).routes
    ]
    listed = {
        route.path
        for group in ROUTER_GROUPS
        for route in router_of(group).routes
        if getattr(route, "include_in_schema", False)
    }
    assert set(document["paths"]) == listed

    settings = Settings(home=flowplane_home, database_url=sqlite_url, server_services_enabled=False)
    other = create_app(settings, run_migrations=False)
    async with LifespanManager(other), http_client(other) as client:
        assert (await client.get("/api/openapi.json")).json() == document
    # app.openapi() itself (not only the route) sees every route.
    assert create_app(settings, run_migrations=False).openapi() == document


# --- routes built on first use ---------------------------------------------------------


class Example(BaseModel):
    model_config = {"extra": "forbid"}

    name: str


def _example_router(route_class: type[APIRoute]) -> APIRouter:
    """The same two routes (body, path parameter, response model, status) on ``route_class``."""
    router = APIRouter(prefix="/api/examples", tags=["Examples"], route_class=route_class)

    @router.post("/", response_model=Example, status_code=201)
    async def create_example(example: Example) -> Example:
        return example

    @router.get("/{id}")
    async def read_example(id: UUID, verbose: bool = False) -> Example:
        return Example(name=f"{id}:{verbose}")

    return router


def unbuilt(route: Any) -> bool:
    return route.__dict__.get("_deferred") is not None


def _app_of(router: APIRouter) -> FastAPI:
    app = FastAPI(title="t", version="1")
    app.router.routes.extend(router.routes)
    return app


async def test_a_lazy_route_builds_on_first_use_what_fastapi_builds_up_front() -> None:
    lazy, eager = _example_router(LazyAPIRoute), _example_router(APIRoute)
    create, read = lazy.routes
    assert unbuilt(create) and unbuilt(read)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_app_of(lazy)), base_url="http://t"
    ) as client:
        created = await client.post("/api/examples/", json={"name": "a"})
        assert (created.status_code, created.json()) == (201, {"name": "a"})
        assert unbuilt(read)  # matching a request to another route built nothing
        bad = await client.post("/api/examples/", json={"nom": "a"})
        assert bad.status_code == 422
    assert not unbuilt(create)

    for built, reference in zip(lazy.routes, eager.routes, strict=True):
        assert isinstance(built, APIRoute)
        assert isinstance(reference, APIRoute)
        for attribute in ("path", "path_format", "methods", "name", "unique_id", "status_code"):
            assert getattr(built, attribute) == getattr(reference, attribute), attribute
        assert built.response_model is reference.response_model
        assert [p.name for p in built.dependant.query_params] == [
            p.name for p in reference.dependant.query_params
        ]
    assert _app_of(lazy).openapi() == _app_of(eager).openapi()


# --- what an embedded first flow run loads -----------------------------------------------

FIRST_RUN = """
import json, sys
from flowplane import flow, task

@task
def add(x):
    return x + 1

@flow
def first():
    return add(1)

assert first() == 2
print(json.dumps(sorted(name for name in sys.modules if name.startswith("flowplane.server"))))
"""


def test_an_embedded_flow_run_loads_no_router_or_service_it_does_not_use() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FIRST_RUN], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "flowplane.server.api.flow_runs" in loaded
    unused = {
        f"flowplane.server.api.{module}"
        for module in ("deployments", "work_pools", "work_queues", "artifacts", "variables")
    } | {"flowplane.server.services.scheduler"}
    assert not loaded & unused
