"""The protocol's decisions, with a scripted transport: retries, backoff, CSRF tokens, connection errors, error mapping."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flowplane.client import AsyncClient, Client
from flowplane.exceptions import (
    APIUnreachable,
    HTTPStatusError,
    ObjectAlreadyExists,
    ObjectNotFound,
    ValidationFailed,
)
from flowplane.settings import Settings

FLOW = {"id": "6f1c6b9e-2f3c-4a55-9a3e-0a4b3c2d1e0f", "name": "etl", "tags": []}
TOKEN = {"token": "tok-1", "client": "c", "expiration": "2999-01-01T00:00:00Z"}


class Script:
    """A fake API: ``handler`` answers; every request is recorded."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def sync_client(script: Script, **kwargs: Any) -> Client:
    settings = Settings.load(api_url="http://test/api")
    options = {"retry_backoff": 0.0, "csrf_enabled": False, **kwargs}
    return Client(
        settings=settings, httpx_settings={"transport": httpx.MockTransport(script)}, **options
    )


def async_client(script: Script, **kwargs: Any) -> AsyncClient:
    settings = Settings.load(api_url="http://test/api")
    options = {"retry_backoff": 0.0, "csrf_enabled": False, **kwargs}
    return AsyncClient(
        settings=settings, httpx_settings={"transport": httpx.MockTransport(script)}, **options
    )


def test_retries_503_and_429_then_succeeds() -> None:
    answers = [
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json=FLOW),
    ]
    script = Script(lambda request: answers.pop(0))
    with sync_client(script) as client:
        assert client.read_flow(FLOW["id"]).name == "etl"
    assert len(script.requests) == 3


async def test_async_face_retries_the_same_way() -> None:
    answers = [httpx.Response(502), httpx.Response(200, json=FLOW)]
    script = Script(lambda request: answers.pop(0))
    async with async_client(script) as client:
        assert (await client.read_flow(FLOW["id"])).name == "etl"
    assert len(script.requests) == 2


def test_gives_up_after_max_retries_with_the_last_status() -> None:
    script = Script(lambda request: httpx.Response(503, json={"detail": "busy"}))
    with sync_client(script, max_retries=2) as client, pytest.raises(HTTPStatusError) as error:
        client.read_flows()
    assert error.value.status_code == 503 and error.value.detail == "busy"
    assert len(script.requests) == 3  # the first try and two retries


def test_backoff_doubles_and_retry_after_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("flowplane.client._shells.time.sleep", slept.append)
    answers = [
        httpx.Response(503),
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json=[]),
    ]
    script = Script(lambda request: answers.pop(0))
    client = sync_client(script, retry_backoff=0.5)
    client._exchange.retry_jitter = 0.0
    with client:
        assert client.read_flows() == []
    assert slept == [0.5, 1.0, 7.0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, ObjectNotFound),
        (409, ObjectAlreadyExists),
        (422, ValidationFailed),
        (418, HTTPStatusError),
    ],
)
def test_statuses_map_to_typed_errors(status: int, error: type[HTTPStatusError]) -> None:
    script = Script(lambda request: httpx.Response(status, json={"detail": f"said {status}"}))
    with sync_client(script) as client, pytest.raises(error) as raised:
        client.read_flow(FLOW["id"])
    assert type(raised.value) is error
    assert raised.value.detail == f"said {status}"
    assert f"said {status}" in str(raised.value)


def test_a_body_the_client_cannot_read_is_a_client_error() -> None:
    from flowplane.exceptions import ClientError

    script = Script(lambda request: httpx.Response(200, json={"not": "a flow"}))
    with sync_client(script) as client, pytest.raises(ClientError, match="cannot read"):
        client.read_flow(FLOW["id"])


def test_refused_connection_fails_fast_until_the_server_has_answered() -> None:
    calls = {"n": 0}

    def refuse(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        raise httpx.ConnectError("Connection refused", request=request)

    with sync_client(Script(refuse)) as client, pytest.raises(APIUnreachable) as error:
        client.read_flows()
    assert calls["n"] == 1  # no retries before the first answer: a wrong URL fails at once
    assert "http://test/api" in str(error.value) and "Connection refused" in str(error.value)

    answers: list[Any] = [httpx.Response(200, json=[]), "refuse", httpx.Response(200, json=[])]

    def restarting(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if answer == "refuse":
            raise httpx.ConnectError("Connection refused", request=request)
        return answer

    with sync_client(Script(restarting)) as client:
        assert client.read_flows() == []
        assert client.read_flows() == []  # the server restarted: retried, not failed
    assert answers == []


def test_csrf_token_is_fetched_once_and_sent_on_writes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/csrf-token":
            assert request.url.params["client"]
            return httpx.Response(200, json=TOKEN)
        if request.method == "POST":
            assert request.headers["Prefect-Csrf-Token"] == "tok-1"
            assert request.headers["Prefect-Csrf-Client"]
            return httpx.Response(201, json=FLOW)
        assert "Prefect-Csrf-Token" not in request.headers  # reads go without
        return httpx.Response(200, json=FLOW)

    script = Script(handler)
    with sync_client(script, csrf_enabled=None) as client:  # None: on for a remote server
        client.read_flow(FLOW["id"])
        client.create_flow_from_name("etl")
        client.create_flow_from_name("etl")
    assert script.paths == [
        f"GET /api/flows/{FLOW['id']}",
        "GET /api/csrf-token",
        "POST /api/flows/",
        "POST /api/flows/",
    ]


def test_an_invalid_csrf_token_is_refreshed_and_the_write_resent() -> None:
    tokens = iter(["old", "new"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/csrf-token":
            return httpx.Response(200, json={**TOKEN, "token": next(tokens)})
        if request.headers["Prefect-Csrf-Token"] == "old":
            return httpx.Response(403, json={"detail": "Invalid CSRF token or client identifier."})
        return httpx.Response(201, json=FLOW)

    script = Script(handler)
    with sync_client(script, csrf_enabled=True) as client:
        client.create_flow_from_name("etl")
    assert script.paths == [
        "GET /api/csrf-token",
        "POST /api/flows/",
        "GET /api/csrf-token",
        "POST /api/flows/",
    ]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(422, json={"detail": "CSRF protection is disabled."}),
    ],
)
def test_csrf_is_turned_off_when_the_server_does_not_use_it(answer: httpx.Response) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/csrf-token":
            return answer
        assert "Prefect-Csrf-Token" not in request.headers
        return httpx.Response(201, json=FLOW)

    script = Script(handler)
    with sync_client(script, csrf_enabled=True) as client:
        client.create_flow_from_name("a")
        client.create_flow_from_name("b")
        assert client._exchange.csrf_enabled is False
    assert script.paths == ["GET /api/csrf-token", "POST /api/flows/", "POST /api/flows/"]


def test_auth_headers_from_settings() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        return httpx.Response(200, json=[])

    transport = httpx.MockTransport(handler)
    keyed = Settings.load(api_url="http://test/api", api_key="secret-key")
    with Client(
        settings=keyed, httpx_settings={"transport": transport}, csrf_enabled=False
    ) as client:
        client.read_flows()
    basic = Settings.load(api_url="http://test/api", server_api_auth_string="admin:pass")
    with Client(
        settings=basic, httpx_settings={"transport": transport}, csrf_enabled=False
    ) as client:
        client.read_flows()
    assert seen == ["Bearer secret-key", "Basic YWRtaW46cGFzcw=="]


def test_timeout_comes_from_settings() -> None:
    settings = Settings.load(api_url="http://test/api", api_request_timeout=3.5)
    with Client(settings=settings) as client:
        assert client._http.timeout.read == 3.5


def test_request_bodies_leave_unset_fields_out() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=[])

    from flowplane.schemas.filters import FlowRunFilter, FlowRunFilterName

    with sync_client(Script(handler)) as client:
        client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["x"])), limit=5
        )
    assert bodies == [{"flow_runs": {"name": {"any_": ["x"]}}, "limit": 5, "offset": 0}]


def test_methods_are_defined_once_and_bound_per_face() -> None:
    import inspect

    sync = sync_client(Script(lambda r: httpx.Response(200, json=[])))
    asynchronous = async_client(Script(lambda r: httpx.Response(200, json=[])))
    assert inspect.iscoroutinefunction(asynchronous.read_flows)
    assert not inspect.iscoroutinefunction(sync.read_flows)
    assert str(inspect.signature(sync.read_flow)) == str(inspect.signature(asynchronous.read_flow))
    assert "flow_id" in inspect.signature(sync.read_flow).parameters
    assert sync.read_flow.__doc__ == asynchronous.read_flow.__doc__ and sync.read_flow.__doc__
    assert type(sync).__dict__.get("read_flow") is None  # no per-face copy of the body
