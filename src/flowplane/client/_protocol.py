"""The client's wire protocol written once and without I/O: calls as data, answers parsed, errors mapped, CSRF and retries decided.

An operation describes its HTTP exchange as a :class:`Call` (method, path, body,
how to parse the answer). :class:`Exchange` turns calls into a stream of
*actions* — an ``httpx.Request`` to send or a :class:`Sleep` to wait — and
consumes what the sender replies (an ``httpx.Response`` or the transport error
it raised). The async and sync clients are thin loops that perform those
actions with ``httpx.AsyncClient`` or ``httpx.Client``; every decision (CSRF
tokens, retry on 429/502/503, backoff, status → exception) lives here, once.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import uuid
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar, Union

import httpx
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from flowplane.exceptions import (
    APIUnreachable,
    ClientError,
    FlowplaneError,
    HTTPStatusError,
    ObjectAlreadyExists,
    ObjectNotFound,
    ValidationFailed,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Statuses that mean "try again later" (rate limits, a proxy or server restarting).
RETRY_STATUSES = frozenset({429, 502, 503})
#: Transport errors after which resending is safe: the request never reached the app.
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
STATUS_ERRORS: Mapping[int, type[HTTPStatusError]] = {
    404: ObjectNotFound,
    409: ObjectAlreadyExists,
    422: ValidationFailed,
}
CSRF_DISABLED_DETAIL = "CSRF protection is disabled."
CSRF_INVALID_DETAIL = "Invalid CSRF token"


# --- descriptions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP exchange with the API, as data.

    Attributes:
        method: the HTTP method.
        path: the path under the API URL, e.g. ``/flows/{id}`` already filled in.
        parse: turns the successful response into the operation's result.
        json: the JSON body (plain data; models, UUIDs, datetimes and enums allowed).
        params: query parameters.
    """

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Sleep:
    """An action: wait ``seconds`` before the next one."""

    seconds: float


#: What :class:`Exchange` asks its driver to do.
Action = Union[httpx.Request, Sleep]
#: What an operation body is: one call, or a generator of calls returning the result.
Steps = Union[Call[T], Generator[Call[Any], Any, T]]


# --- parsers -----------------------------------------------------------------------


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    """Parse the body as one ``cls``."""
    return lambda response: cls.model_validate_json(response.content)


def models(cls: type[M]) -> Callable[[httpx.Response], list[M]]:
    """Parse the body as a list of ``cls``."""
    adapter = _adapter(list[cls])  # type: ignore[valid-type]
    return lambda response: adapter.validate_json(response.content)


def value(tp: type[T]) -> Callable[[httpx.Response], T]:
    """Parse the body as a JSON value of type ``tp`` (``int``, ``str``, ``bool`` ...)."""
    adapter = _adapter(tp)  # type: ignore[arg-type]
    return lambda response: adapter.validate_json(response.content)


def nothing(response: httpx.Response) -> None:
    """Ignore the body (204 answers)."""
    return None


def text(response: httpx.Response) -> str:
    """The body as text, not parsed."""
    return response.content.decode()


# --- bodies ------------------------------------------------------------------------


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def encode(body: Any) -> bytes:
    """JSON-encode a request body (orjson handles UUIDs, datetimes and enums natively)."""
    if isinstance(body, BaseModel):
        return body.model_dump_json().encode()
    return orjson.dumps(body, default=_default)


def error_for(response: httpx.Response) -> HTTPStatusError:
    """The typed exception for an error response, carrying the server's ``detail``."""
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text or response.reason_phrase
    request = response.request
    cls = STATUS_ERRORS.get(response.status_code, HTTPStatusError)
    return cls(response.status_code, detail, method=request.method, url=str(request.url))


# --- the exchange ------------------------------------------------------------------


RequestBuilder = Callable[..., httpx.Request]


@dataclass
class Exchange:
    """Per-client protocol state and the rules for one request's round trips.

    Args:
        build_request: the httpx client's ``build_request`` (same in sync and async).
        api_url: shown in "cannot reach" errors.
        csrf_enabled: fetch and send CSRF tokens on writes until the server says
            it does not use them (404 or 422 from ``/csrf-token``).
        max_retries: how often to resend after a retryable status or transport error.
        retry_backoff: first backoff in seconds; doubles per attempt (``Retry-After`` wins).
        retry_jitter: +- fraction of random jitter added to computed backoffs.
    """

    build_request: RequestBuilder
    api_url: str
    csrf_enabled: bool = True
    max_retries: int = 5
    retry_backoff: float = 1.0
    retry_jitter: float = 0.2
    csrf_client: str = field(default_factory=lambda: str(uuid.uuid4()))
    csrf_token: str | None = None
    csrf_expiration: dt.datetime | None = None
    #: Once the server has answered, a refused connection is a restart worth retrying.
    connected: bool = False

    def run(self, steps: Steps[T]) -> Generator[Action, Any, T]:
        """Drive an operation body (one call or a generator of calls) to its result."""
        if isinstance(steps, Call):
            return (yield from self.perform(steps))
        result: Any = None
        error: BaseException | None = None
        while True:
            try:
                call = steps.throw(error) if error is not None else steps.send(result)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result = yield from self.perform(call)
                error = None
            except FlowplaneError as exc:
                result, error = None, exc

    def perform(self, call: Call[T]) -> Generator[Action, Any, T]:
        """One call: send, retry, map errors, parse."""
        request = self._build(call)
        if self.csrf_enabled and request.method in WRITE_METHODS:
            yield from self._add_csrf_headers(request)
        attempt = 0
        while True:
            attempt += 1
            reply = yield request
            if isinstance(reply, Exception):
                retryable = isinstance(reply, RETRY_ERRORS) or (
                    self.connected and isinstance(reply, httpx.ConnectError)
                )
                if retryable and attempt <= self.max_retries:
                    yield Sleep(self._backoff(attempt))
                    continue
                raise self._unreachable(reply) from reply
            response: httpx.Response = reply
            self.connected = True
            status = response.status_code
            if (
                status == 403
                and self.csrf_enabled
                and attempt <= self.max_retries
                and CSRF_INVALID_DETAIL in response.text
            ):
                self.csrf_token = None  # expired or revoked: fetch a new one and resend
                yield from self._add_csrf_headers(request)
                continue
            if status in RETRY_STATUSES and attempt <= self.max_retries:
                yield Sleep(self._retry_after(response, attempt))
                continue
            if status >= 400:
                raise error_for(response)
            try:
                return call.parse(response)
            except (ValidationError, ValueError) as exc:
                raise ClientError(
                    f"The API answered {call.method} {call.path} with a body flowplane cannot read: {exc}"
                ) from exc

    # --- pieces ---

    def _build(self, call: Call[Any]) -> httpx.Request:
        params = None
        if call.params:
            params = {k: _param(v) for k, v in call.params.items() if v is not None}
        if call.json is None and call.method in ("GET", "DELETE"):
            return self.build_request(call.method, call.path.lstrip("/"), params=params)
        return self.build_request(
            call.method,
            call.path.lstrip("/"),
            params=params,
            content=encode(call.json),
            headers={"Content-Type": "application/json"},
        )

    def _add_csrf_headers(self, request: httpx.Request) -> Generator[Action, Any, None]:
        now = dt.datetime.now(dt.timezone.utc)
        if self.csrf_token is None or (
            self.csrf_expiration is not None and now >= self.csrf_expiration
        ):
            from flowplane.schemas.admin import CsrfToken

            fetch = Call(
                "GET", "/csrf-token", model(CsrfToken), params={"client": self.csrf_client}
            )
            try:
                token = yield from self.perform(fetch)
            except ObjectNotFound:  # a server without the endpoint
                self.csrf_enabled = False
                return
            except ValidationFailed as exc:
                if CSRF_DISABLED_DETAIL in str(exc.detail):
                    self.csrf_enabled = False
                    return
                raise
            self.csrf_token = token.token
            self.csrf_expiration = token.expiration
        request.headers["Prefect-Csrf-Token"] = self.csrf_token or ""
        request.headers["Prefect-Csrf-Client"] = self.csrf_client

    def _backoff(self, attempt: int) -> float:
        base = self.retry_backoff * 2 ** (attempt - 1)
        if self.retry_jitter:
            base *= 1 + self.retry_jitter * (2 * random.random() - 1)
        return max(base, 0.0)

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                return max(float(header), 0.0)
            except ValueError:
                pass
        return self._backoff(attempt)

    def _unreachable(self, exc: Exception) -> APIUnreachable:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            reason = f"no answer in time ({type(exc).__name__})"
        return APIUnreachable(self.api_url, reason)


def _param(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (uuid.UUID, dt.datetime)):
        return str(v)
    return v
