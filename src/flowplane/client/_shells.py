"""AsyncClient and Client: thin shells that perform the protocol's actions with httpx, and ``get_client``."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import httpx

from flowplane.client._concurrency import ConcurrencyLimitOperations
from flowplane.client._deployments import DeploymentOperations
from flowplane.client._flow_runs import FlowRunOperations
from flowplane.client._flows import FlowOperations
from flowplane.client._logs_events import LogEventOperations, ServerOperations
from flowplane.client._protocol import Action, Exchange, Sleep, Steps
from flowplane.client._task_runs import TaskRunOperations
from flowplane.client._variables_artifacts import ArtifactOperations, VariableOperations
from flowplane.client._work_pools import WorkPoolOperations
from flowplane.settings import Settings

T = TypeVar("T")

#: The base URL requests carry in embedded mode (they never leave the process).
EMBEDDED_BASE_URL = "http://embedded/api"


class _BaseClient(
    FlowOperations,
    FlowRunOperations,
    TaskRunOperations,
    LogEventOperations,
    ServerOperations,
    VariableOperations,
    ArtifactOperations,
    DeploymentOperations,
    WorkPoolOperations,
    ConcurrencyLimitOperations,
):
    """Configuration both faces share: URL, auth headers, timeouts, the protocol state."""

    _http: Any

    def __init__(
        self,
        api_url: str | None = None,
        *,
        api_key: str | None = None,
        settings: Settings | None = None,
        httpx_settings: dict[str, Any] | None = None,
        max_retries: int = 5,
        retry_backoff: float = 1.0,
        csrf_enabled: bool | None = None,
    ) -> None:
        settings = settings or Settings.load()
        self.settings = settings
        url = api_url or settings.api_url
        #: True when the API runs in this process on the home folder's database.
        self.embedded = url is None
        self.api_url = url.rstrip("/") if url else EMBEDDED_BASE_URL
        options: dict[str, Any] = {
            "base_url": self.api_url,
            "headers": _headers(settings, api_key),
            "timeout": settings.api_request_timeout,
        }
        extra = dict(httpx_settings or {})
        options["headers"].update(extra.pop("headers", None) or {})
        options.update(extra)
        if self.embedded:
            options["transport"] = self._embedded_transport(settings)
        self._http = self._make_http(options)
        #: Embedded with plain options, requests go straight to the in-process transport:
        #: httpx's client layer (auth, redirects, cookies, hooks) has nothing to do there.
        self._direct = options["transport"] if self.embedded and not extra else None
        if csrf_enabled is None:
            # The embedded app shares our settings, so we know whether it wants tokens.
            csrf_enabled = settings.server_csrf_protection_enabled if self.embedded else True
        where = f"embedded ({settings.resolved_database_url})" if self.embedded else self.api_url
        self._exchange = Exchange(
            self._http.build_request,
            where,
            csrf_enabled=csrf_enabled,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
        )

    def _make_http(self, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _embedded_transport(self, settings: Settings) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.api_url!r}{', embedded' if self.embedded else ''})"


def _headers(settings: Settings, api_key: str | None) -> dict[str, str]:
    from flowplane import __version__

    headers = {"User-Agent": f"flowplane/{__version__}"}
    key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
    auth = _auth_string(settings)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    elif auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    return headers


def _auth_string(settings: Settings) -> str | None:
    """The basic-auth string: the client's own setting if there is one, else the server's."""
    secret = getattr(settings, "api_auth_string", None) or settings.server_api_auth_string
    return secret.get_secret_value() if secret is not None else None


class AsyncClient(_BaseClient):
    """The flowplane API client for ``async`` code; every operation is a coroutine.

    Use it as ``async with get_client() as client: ...``.
    """

    _http: httpx.AsyncClient

    def _make_http(self, options: dict[str, Any]) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    def _embedded_transport(self, settings: Settings) -> httpx.AsyncBaseTransport:
        from flowplane.embedded import async_transport

        return async_transport(settings)

    def _bind(self, body: Callable[..., Steps[T]]) -> Callable[..., Coroutine[Any, Any, T]]:
        async def method(*args: Any, **kwargs: Any) -> T:
            return await self._run(body(self, *args, **kwargs))

        return method

    async def _run(self, steps: Steps[T]) -> T:
        actions = self._exchange.run(steps)
        reply: Any = None
        while True:
            try:
                action: Action = actions.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
                reply = None
                continue
            try:
                if self._direct is not None:
                    reply = await self._direct.handle_async_request(action)
                    reply.request = action
                else:
                    reply = await self._http.send(action)
            except httpx.TransportError as exc:
                reply = exc

    async def aclose(self) -> None:
        """Close the connections (the embedded server, shared by the process, stays up)."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)


class Client(_BaseClient):
    """The flowplane API client for synchronous code; every operation blocks until answered.

    Use it as ``with get_client(sync_client=True) as client: ...``.
    """

    _http: httpx.Client

    def _make_http(self, options: dict[str, Any]) -> httpx.Client:
        return httpx.Client(**options)

    def _embedded_transport(self, settings: Settings) -> httpx.BaseTransport:
        from flowplane.embedded import sync_transport

        return sync_transport(settings)

    def _bind(self, body: Callable[..., Steps[T]]) -> Callable[..., T]:
        def method(*args: Any, **kwargs: Any) -> T:
            return self._run(body(self, *args, **kwargs))

        return method

    def _run(self, steps: Steps[T]) -> T:
        actions = self._exchange.run(steps)
        reply: Any = None
        while True:
            try:
                action: Action = actions.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                reply = None
                continue
            try:
                if self._direct is not None:
                    reply = self._direct.handle_request(action)
                    reply.request = action
                else:
                    reply = self._http.send(action)
            except httpx.TransportError as exc:
                reply = exc

    def close(self) -> None:
        """Close the connections (the embedded server, shared by the process, stays up)."""
        self._http.close()

    def __enter__(self) -> Client:
        self._http.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.__exit__(exc_type, exc, tb)


@overload
def get_client(
    httpx_settings: dict[str, Any] | None = None,
    sync_client: Literal[False] = False,
    *,
    settings: Settings | None = None,
    api_url: str | None = None,
) -> AsyncClient: ...


@overload
def get_client(
    httpx_settings: dict[str, Any] | None = None,
    *,
    sync_client: Literal[True],
    settings: Settings | None = None,
    api_url: str | None = None,
) -> Client: ...


def get_client(
    httpx_settings: dict[str, Any] | None = None,
    sync_client: bool = False,
    *,
    settings: Settings | None = None,
    api_url: str | None = None,
) -> AsyncClient | Client:
    """A client for the flowplane API.

    With no API URL (argument or ``FLOWPLANE_API_URL``), the client talks to an API
    running inside this process on ``$FLOWPLANE_HOME/flowplane.db`` (embedded mode).

    Args:
        httpx_settings: extra keyword arguments for the ``httpx`` client.
        sync_client: return the synchronous :class:`Client` instead of :class:`AsyncClient`.
            The choice is explicit; it is never guessed from the caller's context.
        settings: the settings to use (default: read now with ``Settings.load()``).
        api_url: the API URL, overriding the settings.

    Returns:
        An :class:`AsyncClient` or a :class:`Client`; use it as a context manager.
    """
    cls = Client if sync_client else AsyncClient
    return cls(api_url, settings=settings, httpx_settings=httpx_settings)
