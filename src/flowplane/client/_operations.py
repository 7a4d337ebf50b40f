"""The ``@operation`` descriptor: an API operation written once, bound as an async method on AsyncClient and a sync one on Client.

An operation's body takes the client and the caller's arguments and returns
either one :class:`~flowplane.client._protocol.Call` or a generator that yields
calls (receiving each parsed result) and returns the operation's result. It
does no I/O. On first access from a client instance the descriptor asks the
client to ``_bind`` the body — :class:`AsyncClient` wraps it in an ``async def``,
:class:`Client` in a plain ``def`` — and caches the bound method on the instance.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from uuid import UUID, uuid4

from pydantic import BaseModel

from flowplane.client._protocol import Steps

if TYPE_CHECKING:
    from flowplane.client._shells import AsyncClient, Client

P = ParamSpec("P")
T = TypeVar("T")


class Operation(Generic[P, T]):
    """A client method defined once; see the module docstring."""

    def __init__(self, body: Callable[Concatenate[Any, P], Steps[T]]) -> None:
        self.body = body
        self.name = body.__name__
        self.__doc__ = body.__doc__
        self._signature: inspect.Signature | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def signature(self) -> inspect.Signature:
        """The signature callers see (without ``self``)."""
        if self._signature is None:
            sig = inspect.signature(self.body)
            self._signature = sig.replace(
                parameters=list(sig.parameters.values())[1:],
                return_annotation=_result_annotation(sig.return_annotation),
            )
        return self._signature

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Operation[P, T]: ...

    @overload
    def __get__(
        self, obj: AsyncClient, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __get__(self, obj: Client, owner: type | None = None) -> Callable[P, T]: ...

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        method = obj._bind(self.body)
        functools.update_wrapper(method, self.body)
        del method.__wrapped__  # show the caller's signature, not the body's
        method.__signature__ = self.signature
        obj.__dict__[self.name] = method  # later lookups skip the descriptor
        return method


def _result_annotation(annotation: Any) -> Any:
    """``Call[Flow]`` or ``Generator[Call[Any], Any, Flow]`` (as strings) -> ``Flow``."""
    if not isinstance(annotation, str):
        return annotation
    if annotation.startswith("Call[") and annotation.endswith("]"):
        return annotation[len("Call[") : -1]
    if annotation.startswith("Generator[") and annotation.endswith("]"):
        return annotation[len("Generator[") : -1].split(", ", 2)[-1]
    return annotation


def operation(body: Callable[Concatenate[Any, P], Steps[T]]) -> Operation[P, T]:
    """Declare a client operation; ``body(self, ...)`` returns a Call or a generator of calls."""
    return Operation(body)


# --- building bodies -----------------------------------------------------------------


def dump(obj: Any) -> Any:
    """A filter or other model as the JSON the API expects (unset fields left out)."""
    if obj is None:
        return None
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", exclude_unset=True)
    if isinstance(obj, Mapping):
        return dict(obj)
    return obj


def body(**fields: Any) -> dict[str, Any]:
    """A JSON object of the fields that are not ``None`` (so the server's defaults apply)."""
    return {k: dump(v) for k, v in fields.items() if v is not None}


def enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


STATE_FIELDS = ("type", "name", "message", "data", "state_details", "id", "timestamp")


def state_create(state: Any, **details: Any) -> dict[str, Any]:
    """A proposed state as the API's ``StateCreate`` JSON.

    ``state`` may be a flowplane ``State``/``StateCreate``, any model with the same
    fields (SDK states), or a mapping. ``details`` are set in ``state_details``.
    A fresh ``transition_id`` marks the proposal, as Prefect's client does.
    """
    if isinstance(state, BaseModel):
        data = state.model_dump(mode="json", include=set(STATE_FIELDS), exclude_none=True)
    elif isinstance(state, Mapping):
        data = {k: v for k, v in dict(state).items() if k in STATE_FIELDS and v is not None}
    else:
        raise TypeError(f"Expected a state model or mapping, got {type(state).__name__}")
    data["type"] = enum_value(data["type"])
    state_details = dict(data.get("state_details") or {})
    state_details.setdefault("transition_id", str(uuid4()))
    for key, val in details.items():
        if val is not None:
            state_details[key] = str(val) if isinstance(val, UUID) else val
    data["state_details"] = state_details
    return data


def pending() -> dict[str, Any]:
    """The default initial state of new runs."""
    return {"type": "PENDING", "name": "Pending"}


def as_uuid(value: UUID | str) -> UUID:
    """``value`` as a UUID (``ValueError`` for a malformed one)."""
    return value if isinstance(value, UUID) else UUID(str(value))


def tags_of(*groups: Iterable[str] | None) -> list[str]:
    """Tags from several sources, in order, without duplicates."""
    seen: dict[str, None] = {}
    for group in groups:
        for tag in group or ():
            seen[tag] = None
    return list(seen)
