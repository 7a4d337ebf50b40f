"""The hot flow-run routes answer as the FastAPI routes would, and leave every doubtful request to them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from flowplane.server.hot_routes import _is_hot, _is_json


async def _flow_id(client: Any) -> str:
    response = await client.post("/flows/", json={"name": "hot"})
    return response.json()["id"]


async def test_create_and_state_changes_answer_like_the_routes(client: Any) -> None:
    flow_id = await _flow_id(client)
    created = await client.post(
        "/flow_runs/", json={"flow_id": flow_id, "state": {"type": "PENDING"}}
    )
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    run_id = created.json()["id"]
    running = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert running.status_code == 201
    assert running.json()["status"] == "ACCEPT"
    # The 32-digit spelling of the id is one FastAPI's path parameter accepts too.
    again = await client.post(
        f"/flow_runs/{run_id.replace('-', '')}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert again.status_code == 200
    assert again.json()["status"] == "REJECT"
    read = await client.get(f"/flow_runs/{run_id}")
    assert read.json()["state"]["type"] == "RUNNING"


async def test_doubtful_requests_get_the_apps_own_answers(client: Any) -> None:
    flow_id = await _flow_id(client)
    run_id = (await client.post("/flow_runs/", json={"flow_id": flow_id})).json()["id"]
    state = b'{"state": {"type": "RUNNING"}}'
    # Misplaced dashes: uuid.UUID would take them, FastAPI's path parameter does not.
    odd = run_id.replace("-", "")
    odd = f"{odd[:12]}-{odd[12:]}"
    response = await client.post(f"/flow_runs/{odd}/set_state", content=state)
    assert response.status_code == 422
    # Not JSON by its content type (or without one): FastAPI refuses the body.
    for headers in ({"content-type": "text/plain"}, {}):
        response = await client.post(
            f"/flow_runs/{run_id}/set_state", content=state, headers=headers
        )
        assert response.status_code == 422
    # A lax bool, an unknown run, a missing flow: the routes answer, and nothing was written.
    lax = await client.post(
        f"/flow_runs/{run_id}/set_state", json={"state": {"type": "RUNNING"}, "force": "true"}
    )
    assert lax.status_code == 201
    missing = await client.post(
        f"/flow_runs/{uuid4()}/set_state", json={"state": {"type": "RUNNING"}}
    )
    assert missing.status_code == 404
    no_flow = await client.post("/flow_runs/", json={"flow_id": str(uuid4())})
    assert no_flow.status_code == 404
    bad = await client.post(
        "/flow_runs/", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422


def test_only_json_posts_to_the_hot_paths_are_taken() -> None:
    def scope(method: str, path: str, content_type: bytes | None = None) -> dict[str, Any]:
        headers = [(b"content-type", content_type)] if content_type else []
        return {"type": "http", "method": method, "path": path, "headers": headers}

    assert _is_hot(scope("POST", "/api/flow_runs/"))
    assert _is_hot(scope("POST", f"/api/flow_runs/{uuid4()}/set_state"))
    assert not _is_hot(scope("GET", "/api/flow_runs/"))
    assert not _is_hot(scope("POST", "/api/flow_runs/filter"))
    assert not _is_hot({**scope("POST", "/api/flow_runs/"), "root_path": "/prefix"})
    assert _is_json(scope("POST", "/", b"application/json; charset=utf-8"))
    assert _is_json(scope("POST", "/", b"Application/vnd.x+JSON"))
    assert not _is_json(scope("POST", "/", b"text/json"))
    assert not _is_json(scope("POST", "/"))


@pytest.fixture
async def guarded(database_url: str, flowplane_home: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that requires an auth string."""
    from asgi_lifespan import LifespanManager

    from flowplane.server.app import create_app
    from flowplane.settings import Settings

    settings = Settings(
        home=flowplane_home, database_url=database_url, server_api_auth_string="s3cret"
    )
    application = create_app(settings, run_migrations=False, run_services=False)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api") as http:
            yield http


async def test_authentication_still_guards_the_hot_routes(guarded: httpx.AsyncClient) -> None:
    response = await guarded.post("/flow_runs/", json={"flow_id": str(uuid4())})
    assert response.status_code == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"s3cret").decode()}
    flow_id = (await guarded.post("/flows/", json={"name": "hot"}, headers=auth)).json()["id"]
    response = await guarded.post("/flow_runs/", json={"flow_id": flow_id}, headers=auth)
    assert response.status_code == 201
