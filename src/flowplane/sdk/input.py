"""Typed input for flow runs: ``RunInput`` models, keysets, ``send_input``/``receive_input`` and the flow-run input actions.

A flow run's inputs are JSON values stored by key on the API (the ``/flow_runs/{id}/input``
endpoints). A pause that waits for input stores its schema under a *keyset* (the
``-schema``, ``-description`` and ``-response`` keys), and the resume request
stores the answer under the response key. ``send_input`` stores a value under a
fresh key with a prefix naming its type; ``receive_input`` reads the values under
that prefix in the order they were sent.

Every operation is written once as engine steps (see :mod:`flowplane.sdk._engine`)
and run by a sync or an async driver: ``save``/``asave``, ``load``/``aload``,
``send_input``/``asend_input``, ``next``/``anext`` (and plain or ``async`` iteration).
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable
from inspect import isclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast
from uuid import UUID, uuid4

import orjson
import pydantic
from pydantic import ConfigDict

from flowplane.exceptions import ObjectNotFound
from flowplane.sdk._engine import Api, Sleep, drive_async, drive_sync
from flowplane.sdk.context import FlowRunContext

if TYPE_CHECKING:
    from typing_extensions import Self

    from flowplane.schemas.flow_runs import FlowRunInput

__all__ = [
    "AutomaticRunInput",
    "BaseRunInput",
    "GetAutomaticInputHandler",
    "GetInputHandler",
    "Keyset",
    "RunInput",
    "RunInputMetadata",
    "acreate_flow_run_input",
    "acreate_flow_run_input_from_model",
    "adelete_flow_run_input",
    "afilter_flow_run_input",
    "aread_flow_run_input",
    "asend_input",
    "create_flow_run_input",
    "create_flow_run_input_from_model",
    "delete_flow_run_input",
    "filter_flow_run_input",
    "keyset_from_base_key",
    "keyset_from_paused_state",
    "read_flow_run_input",
    "receive_input",
    "run_input_subclass_from_type",
    "send_input",
]

R = TypeVar("R", bound="RunInput")
B = TypeVar("B", bound="BaseRunInput")
T = TypeVar("T")

#: The keys one pause (or one input type) uses: where its schema, description and answer live.
Keyset = dict[Literal["description", "response", "schema"], str]

#: The first wait between two checks for input; it doubles up to the poll interval.
FIRST_POLL = 0.1

Steps = Generator[Any, Any, Any]


# --- drivers ---------------------------------------------------------------------------------


def run_steps(steps: Steps) -> Any:
    """Run engine steps to completion with a sync client for the settings in effect."""
    from flowplane.sdk import _api

    client, owned = _api.sync_client(_api.current_settings())
    try:
        return drive_sync(steps, client)
    finally:
        if owned:
            client.close()


async def arun_steps(steps: Steps) -> Any:
    """Run engine steps to completion on the running loop with an async client."""
    from flowplane.sdk import _api

    client = _api.async_client(_api.current_settings())
    try:
        return await drive_async(steps, client)
    finally:
        await client.aclose()


def poll_delays(poll_interval: float) -> Generator[float, None, None]:
    """Waits between checks: quick at first (an answer often comes soon), then every ``poll_interval``."""
    delay = min(FIRST_POLL, poll_interval)
    while True:
        yield delay
        delay = min(delay * 2, poll_interval)


# --- keysets ---------------------------------------------------------------------------------


def keyset_from_base_key(base_key: str) -> Keyset:
    """The keyset whose keys start with ``base_key``.

    Returns:
        ``{"description": "<base>-description", "response": "<base>-response",
        "schema": "<base>-schema"}``.
    """
    return {
        "description": f"{base_key}-description",
        "response": f"{base_key}-response",
        "schema": f"{base_key}-schema",
    }


def keyset_from_paused_state(state: Any) -> Keyset:
    """The keyset of a Paused (or Suspended) state: based on its name and pause key.

    Raises:
        RuntimeError: the state is not paused.
    """
    if getattr(state.type, "value", state.type) != "PAUSED":
        raise RuntimeError(f"{getattr(state.type, 'value', state.type)!r} is unsupported.")
    name = (state.name or "").lower()
    return keyset_from_base_key(f"{name}-{state.state_details.pause_key}")


def ensure_flow_run_id(flow_run_id: UUID | str | None = None) -> UUID:
    """``flow_run_id``, or the current flow run's id.

    Raises:
        RuntimeError: no id was given and no flow run is active.
    """
    if flow_run_id is not None:
        return flow_run_id if isinstance(flow_run_id, UUID) else UUID(str(flow_run_id))
    context = FlowRunContext.get()
    if context is None:
        raise RuntimeError("Must either provide a flow run ID or be within a flow run.")
    return context.flow_run.id


def _sender_default(sender: str | None) -> str | None:
    if sender is not None:
        return sender
    context = FlowRunContext.get()
    return f"prefect.flow-run.{context.flow_run.id}" if context is not None else None


# --- the flow-run input actions, as steps --------------------------------------------------------


def create_steps(key: str, value: Any, flow_run_id: UUID, sender: str | None) -> Steps:
    yield Api(
        "create_flow_run_input", flow_run_id, key, orjson.dumps(value).decode(), sender=sender
    )


def read_steps(key: str, flow_run_id: UUID) -> Steps:
    try:
        text = yield Api("read_flow_run_input", flow_run_id, key)
    except ObjectNotFound:
        return None
    return orjson.loads(text)


def filter_steps(
    key_prefix: str, limit: int, exclude_keys: Iterable[str], flow_run_id: UUID
) -> Steps:
    return (
        yield Api(
            "filter_flow_run_input", flow_run_id, key_prefix, limit=limit, exclude_keys=exclude_keys
        )
    )


def delete_steps(key: str, flow_run_id: UUID) -> Steps:
    yield Api("delete_flow_run_input", flow_run_id, key)


def create_flow_run_input(
    key: str, value: Any, flow_run_id: UUID | None = None, sender: str | None = None
) -> None:
    """Store ``value`` (any JSON value) under ``key`` for a flow run (default: the current one).

    Raises:
        ObjectAlreadyExists: the run already has input under ``key``.
        RuntimeError: no flow run id was given and no flow run is active.
    """
    run_steps(create_steps(key, value, ensure_flow_run_id(flow_run_id), sender))


async def acreate_flow_run_input(
    key: str, value: Any, flow_run_id: UUID | None = None, sender: str | None = None
) -> None:
    """Async :func:`create_flow_run_input`."""
    await arun_steps(create_steps(key, value, ensure_flow_run_id(flow_run_id), sender))


def _model_value(model_instance: pydantic.BaseModel) -> Any:
    return orjson.loads(model_instance.model_dump_json())


def create_flow_run_input_from_model(
    key: str,
    model_instance: pydantic.BaseModel,
    flow_run_id: UUID | None = None,
    sender: str | None = None,
) -> None:
    """Store a pydantic model's JSON under ``key`` (sender: the current flow run, if any)."""
    steps = create_steps(
        key, _model_value(model_instance), ensure_flow_run_id(flow_run_id), _sender_default(sender)
    )
    run_steps(steps)


async def acreate_flow_run_input_from_model(
    key: str,
    model_instance: pydantic.BaseModel,
    flow_run_id: UUID | None = None,
    sender: str | None = None,
) -> None:
    """Async :func:`create_flow_run_input_from_model`."""
    steps = create_steps(
        key, _model_value(model_instance), ensure_flow_run_id(flow_run_id), _sender_default(sender)
    )
    await arun_steps(steps)


def read_flow_run_input(key: str, flow_run_id: UUID | None = None) -> Any:
    """The value stored under ``key`` for a flow run (default: the current one), or None."""
    return run_steps(read_steps(key, ensure_flow_run_id(flow_run_id)))


async def aread_flow_run_input(key: str, flow_run_id: UUID | None = None) -> Any:
    """Async :func:`read_flow_run_input`."""
    return await arun_steps(read_steps(key, ensure_flow_run_id(flow_run_id)))


def filter_flow_run_input(
    key_prefix: str,
    limit: int = 1,
    exclude_keys: Iterable[str] | None = None,
    flow_run_id: UUID | None = None,
) -> list[FlowRunInput]:
    """The inputs of a flow run whose keys start with ``key_prefix``, oldest first."""
    steps = filter_steps(key_prefix, limit, exclude_keys or (), ensure_flow_run_id(flow_run_id))
    return cast("list[FlowRunInput]", run_steps(steps))


async def afilter_flow_run_input(
    key_prefix: str,
    limit: int = 1,
    exclude_keys: Iterable[str] | None = None,
    flow_run_id: UUID | None = None,
) -> list[FlowRunInput]:
    """Async :func:`filter_flow_run_input`."""
    steps = filter_steps(key_prefix, limit, exclude_keys or (), ensure_flow_run_id(flow_run_id))
    return cast("list[FlowRunInput]", await arun_steps(steps))


def delete_flow_run_input(key: str, flow_run_id: UUID | None = None) -> None:
    """Delete the input stored under ``key``.

    Raises:
        ObjectNotFound: nothing is stored under ``key``.
    """
    run_steps(delete_steps(key, ensure_flow_run_id(flow_run_id)))


async def adelete_flow_run_input(key: str, flow_run_id: UUID | None = None) -> None:
    """Async :func:`delete_flow_run_input`."""
    await arun_steps(delete_steps(key, ensure_flow_run_id(flow_run_id)))


# --- run input models ------------------------------------------------------------------------


class RunInputMetadata(pydantic.BaseModel):
    """Where a received input came from: its key, its sender and the run it was sent to."""

    key: str
    sender: str | None = None
    receiver: UUID


class BaseRunInput(pydantic.BaseModel):
    """A pydantic model a flow run can wait for (on a pause) or receive (``receive_input``)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    _description: str | None = pydantic.PrivateAttr(default=None)
    _metadata: RunInputMetadata = pydantic.PrivateAttr()

    @property
    def metadata(self) -> RunInputMetadata:
        """Where this input came from (set when it is loaded or received)."""
        return self._metadata

    @classmethod
    def keyset_from_type(cls) -> Keyset:
        """A keyset based on the class's name."""
        return keyset_from_base_key(cls.__name__.lower())

    @classmethod
    def schema_for_input(cls) -> dict[str, Any]:
        """The JSON schema stored for a pause, so that resume input is validated (and a UI can draw a form)."""
        schema = cls.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
        if "$defs" in schema:
            schema["definitions"] = schema.pop("$defs")
        return schema

    @classmethod
    def description_for_input(cls) -> str | None:
        description = cls._description
        return description if isinstance(description, str) else None

    @classmethod
    def save_steps(cls, keyset: Keyset, flow_run_id: UUID) -> Steps:
        yield from create_steps(keyset["schema"], cls.schema_for_input(), flow_run_id, None)
        description = cls.description_for_input()
        if description:
            yield from create_steps(keyset["description"], description, flow_run_id, None)

    @classmethod
    def save(cls, keyset: Keyset, flow_run_id: UUID | None = None) -> None:
        """Store this class's schema (and description, if any) under ``keyset``."""
        run_steps(cls.save_steps(keyset, ensure_flow_run_id(flow_run_id)))

    @classmethod
    async def asave(cls, keyset: Keyset, flow_run_id: UUID | None = None) -> None:
        """Async :meth:`save`."""
        await arun_steps(cls.save_steps(keyset, ensure_flow_run_id(flow_run_id)))

    @classmethod
    def load_steps(cls, keyset: Keyset, flow_run_id: UUID) -> Steps:
        value = yield from read_steps(keyset["response"], flow_run_id)
        instance = cls(**value) if value else cls()
        instance._metadata = RunInputMetadata(
            key=keyset["response"], sender=None, receiver=flow_run_id
        )
        return instance

    @classmethod
    def load(cls, keyset: Keyset, flow_run_id: UUID | None = None) -> Any:
        """The answer stored under ``keyset``'s response key, as an instance of this class.

        Raises:
            pydantic.ValidationError: the stored answer does not fit the class.
        """
        return run_steps(cls.load_steps(keyset, ensure_flow_run_id(flow_run_id)))

    @classmethod
    async def aload(cls, keyset: Keyset, flow_run_id: UUID | None = None) -> Any:
        """Async :meth:`load`."""
        return await arun_steps(cls.load_steps(keyset, ensure_flow_run_id(flow_run_id)))

    @classmethod
    def load_from_flow_run_input(cls, flow_run_input: FlowRunInput) -> Self:
        """An instance from a stored input, with its metadata."""
        instance = cls(**orjson.loads(flow_run_input.value))
        instance._metadata = RunInputMetadata(
            key=flow_run_input.key,
            sender=flow_run_input.sender,
            receiver=flow_run_input.flow_run_id,
        )
        return instance

    @classmethod
    def with_initial_data(cls: type[B], description: str | None = None, **kwargs: Any) -> type[B]:
        """A subclass whose fields default to ``kwargs``, optionally with a markdown ``description``
        shown to whoever resumes the run."""
        fields: dict[str, Any] = {}
        for key, value in kwargs.items():
            original = cls.model_fields.get(key)
            fields[key] = (original.annotation if original else type(value), value)
        model = pydantic.create_model(cls.__name__, __base__=cls, **fields)
        if description is not None:
            model._description = description
        return model

    def _reply_to(self) -> UUID:
        sender = self.metadata.sender
        if sender and sender.startswith("prefect.flow-run"):
            return UUID(sender.rpartition(".")[2])
        raise RuntimeError("Cannot respond to an input that was not sent by a flow run.")

    def respond(
        self, run_input: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Send ``run_input`` to the flow run that sent this input.

        Raises:
            RuntimeError: this input was not sent by a flow run.
        """
        run_steps(send_steps(run_input, self._reply_to(), sender, key_prefix))

    async def arespond(
        self, run_input: Any, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Async :meth:`respond`."""
        await arun_steps(send_steps(run_input, self._reply_to(), sender, key_prefix))

    def send_to(
        self, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Send this input to a flow run."""
        run_steps(send_steps(self, flow_run_id, sender, key_prefix))

    async def asend_to(
        self, flow_run_id: UUID, sender: str | None = None, key_prefix: str | None = None
    ) -> None:
        """Async :meth:`send_to`."""
        await arun_steps(send_steps(self, flow_run_id, sender, key_prefix))


class RunInput(BaseRunInput):
    """Subclass this to describe the input a flow run waits for or receives."""

    @classmethod
    def receive(
        cls,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        key_prefix: str | None = None,
        flow_run_id: UUID | None = None,
    ) -> GetInputHandler[Self]:
        """An iterator over the inputs of this type sent to a flow run (see :func:`receive_input`)."""
        return GetInputHandler(
            run_input_cls=cls,
            key_prefix=key_prefix or f"{cls.__name__.lower()}-auto",
            timeout=timeout,
            poll_interval=poll_interval,
            raise_timeout_error=raise_timeout_error,
            exclude_keys=exclude_keys,
            flow_run_id=flow_run_id,
        )

    @classmethod
    def subclass_from_base_model_type(cls, model_cls: type[pydantic.BaseModel]) -> type[RunInput]:
        """A ``RunInput`` subclass with the fields of a plain pydantic model."""
        return type(f"{model_cls.__name__}RunInput", (RunInput, model_cls), {})


class AutomaticRunInput(BaseRunInput, Generic[T]):
    """A wrapper giving any type pydantic understands (``int``, ``list[str]``...) a ``value`` field."""

    value: T

    @classmethod
    def load_steps(cls, keyset: Keyset, flow_run_id: UUID) -> Steps:
        instance = yield from super().load_steps(keyset, flow_run_id)
        return instance.value

    @classmethod
    def subclass_from_type(cls, type_: Any) -> type[AutomaticRunInput[Any]]:
        """The wrapper for ``type_``; named after the type so senders and receivers agree on keys."""
        prefix = str(getattr(type_, "__name__", getattr(type_, "_name", "")) or "").lower()
        return cast(
            "type[AutomaticRunInput[Any]]",
            pydantic.create_model(
                f"{prefix}AutomaticRunInput", __base__=AutomaticRunInput, value=(type_, ...)
            ),
        )

    @classmethod
    def receive(
        cls,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        key_prefix: str | None = None,
        flow_run_id: UUID | None = None,
        with_metadata: bool = False,
    ) -> GetAutomaticInputHandler[Any]:
        """An iterator over the values of this type sent to a flow run."""
        return GetAutomaticInputHandler(
            run_input_cls=cls,
            key_prefix=key_prefix or f"{cls.__name__.lower()}-auto",
            timeout=timeout,
            poll_interval=poll_interval,
            raise_timeout_error=raise_timeout_error,
            exclude_keys=exclude_keys,
            flow_run_id=flow_run_id,
            with_metadata=with_metadata,
        )


def run_input_subclass_from_type(type_: Any) -> type[BaseRunInput]:
    """The ``RunInput`` class for ``type_``: itself, a ``RunInput`` version of a pydantic
    model, or an :class:`AutomaticRunInput` wrapper for any other type."""
    if isclass(type_):
        if issubclass(type_, RunInput):
            return type_
        if issubclass(type_, pydantic.BaseModel):
            return RunInput.subclass_from_base_model_type(type_)
    return AutomaticRunInput.subclass_from_type(type_)


# --- sending and receiving -----------------------------------------------------------------


def send_steps(
    run_input: Any, flow_run_id: UUID | str, sender: str | None, key_prefix: str | None
) -> Steps:
    wrapped: BaseRunInput
    if isinstance(run_input, RunInput):
        wrapped = run_input
    else:
        wrapper: Any = run_input_subclass_from_type(type(run_input))
        wrapped = wrapper(value=run_input)
    prefix = key_prefix or f"{type(wrapped).__name__.lower()}-auto"
    value = _model_value(wrapped)
    yield from create_steps(
        f"{prefix}-{uuid4()}", value, ensure_flow_run_id(flow_run_id), _sender_default(sender)
    )


def send_input(
    run_input: Any,
    flow_run_id: UUID | str,
    sender: str | None = None,
    key_prefix: str | None = None,
) -> None:
    """Send ``run_input`` (a ``RunInput``, a pydantic model or any JSON-able value) to a flow run.

    The receiver reads it with ``receive_input`` of the same type. Inside a flow run,
    ``sender`` defaults to that run, so the receiver can ``respond``.
    """
    run_steps(send_steps(run_input, flow_run_id, sender, key_prefix))


async def asend_input(
    run_input: Any,
    flow_run_id: UUID | str,
    sender: str | None = None,
    key_prefix: str | None = None,
) -> None:
    """Async :func:`send_input`."""
    await arun_steps(send_steps(run_input, flow_run_id, sender, key_prefix))


class GetInputHandler(Generic[R]):
    """Iterates, with ``for`` or ``async for``, over the inputs sent to a flow run, oldest first.

    Each step waits for the next input, checking at most every ``poll_interval``
    seconds. After ``timeout`` seconds without one the iteration ends (or raises
    ``TimeoutError`` with ``raise_timeout_error``). Inputs already seen (and
    ``exclude_keys``) are skipped.
    """

    def __init__(
        self,
        run_input_cls: type[Any],
        key_prefix: str,
        timeout: float | None = 3600,
        poll_interval: float = 10,
        raise_timeout_error: bool = False,
        exclude_keys: set[str] | None = None,
        flow_run_id: UUID | None = None,
    ) -> None:
        self.run_input_cls = run_input_cls
        self.key_prefix = key_prefix
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.raise_timeout_error = raise_timeout_error
        self.exclude_keys: set[str] = set(exclude_keys or ())
        self.flow_run_id = ensure_flow_run_id(flow_run_id)

    def to_instance(self, flow_run_input: FlowRunInput) -> Any:
        return self.run_input_cls.load_from_flow_run_input(flow_run_input)

    def _filter_steps(self) -> Steps:
        found = yield from filter_steps(self.key_prefix, 1, self.exclude_keys, self.flow_run_id)
        self.exclude_keys.update(i.key for i in found)
        return found

    def filter_for_inputs_sync(self) -> list[FlowRunInput]:
        """The next unseen input, if one is there now (as a list of at most one); marks it seen."""
        return cast("list[FlowRunInput]", run_steps(self._filter_steps()))

    async def filter_for_inputs(self) -> list[FlowRunInput]:
        """Async :meth:`filter_for_inputs_sync`."""
        return cast("list[FlowRunInput]", await arun_steps(self._filter_steps()))

    def _next_steps(self) -> Steps:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        delays = poll_delays(self.poll_interval)
        while True:
            found = yield from self._filter_steps()
            if found:
                return self.to_instance(found[0])
            delay = next(delays)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("Timed out waiting for input")
                delay = min(delay, left)
            yield Sleep(delay)

    def next(self) -> Any:
        """The next input (waits for it).

        Raises:
            TimeoutError: none came within ``timeout`` seconds.
        """
        return run_steps(self._next_steps())

    async def anext(self) -> Any:
        """Async :meth:`next`."""
        return await arun_steps(self._next_steps())

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> Any:
        try:
            return self.next()
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopIteration from None

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.anext()
        except TimeoutError:
            if self.raise_timeout_error:
                raise
            raise StopAsyncIteration from None


class GetAutomaticInputHandler(GetInputHandler[Any], Generic[T]):
    """:class:`GetInputHandler` for plain types: yields the values (or, ``with_metadata``, the wrappers)."""

    def __init__(self, *args: Any, with_metadata: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.with_metadata = with_metadata

    def to_instance(self, flow_run_input: FlowRunInput) -> Any:
        wrapped = self.run_input_cls.load_from_flow_run_input(flow_run_input)
        return wrapped if self.with_metadata else wrapped.value


def receive_input(
    input_type: Any,
    timeout: float | None = 3600,
    poll_interval: float = 10,
    raise_timeout_error: bool = False,
    exclude_keys: set[str] | None = None,
    key_prefix: str | None = None,
    flow_run_id: UUID | None = None,
    with_metadata: bool = False,
) -> GetInputHandler[Any]:
    """Iterate over the inputs of ``input_type`` sent to a flow run (default: the current one).

    Args:
        input_type: a ``RunInput`` subclass, a pydantic model or any type pydantic validates.
        timeout: stop waiting for the next input after this many seconds (None: never).
        poll_interval: the longest wait between two checks for input.
        raise_timeout_error: raise ``TimeoutError`` on timeout instead of ending the iteration.
        exclude_keys: keys of inputs to skip.
        key_prefix: read inputs under this prefix (default: the one senders of the type use).
        flow_run_id: the receiving flow run.
        with_metadata: for plain types, yield the wrappers (``.value``, ``.metadata``).

    Returns:
        An iterator usable with ``for`` and ``async for``.
    """
    cls = run_input_subclass_from_type(input_type)
    options: dict[str, Any] = {
        "timeout": timeout,
        "poll_interval": poll_interval,
        "raise_timeout_error": raise_timeout_error,
        "exclude_keys": exclude_keys,
        "key_prefix": key_prefix,
        "flow_run_id": flow_run_id,
    }
    if issubclass(cls, AutomaticRunInput):
        return cls.receive(with_metadata=with_metadata, **options)
    return cast("type[RunInput]", cls).receive(**options)
