"""Argument annotations: ``unmapped``, ``allow_failure``, ``quote`` and ``opaque`` change how the engine treats a value."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")

__all__ = ["BaseAnnotation", "unmapped", "allow_failure", "quote", "opaque", "NotSet"]


class BaseAnnotation(tuple, Generic[T]):  # type: ignore[type-arg]
    """A one-element wrapper around a value (a tuple, so other tools can unpack it)."""

    __slots__ = ()

    def __new__(cls, value: T) -> BaseAnnotation[T]:
        return tuple.__new__(cls, (value,))

    def unwrap(self) -> T:
        """The wrapped value."""
        return self[0]  # type: ignore[no-any-return]

    def rewrap(self, value: T) -> BaseAnnotation[T]:
        """The same annotation around another value."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and tuple.__eq__(self, other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self[0]!r})"


class unmapped(BaseAnnotation[T]):
    """Pass this value as-is to every run of ``Task.map`` instead of iterating over it."""

    __slots__ = ()

    def __getitem__(self, _: Any) -> T:  # type: ignore[override]
        # Whatever index map asks for, the same value.
        return tuple.__getitem__(self, 0)  # type: ignore[no-any-return]


class allow_failure(BaseAnnotation[T]):
    """Let a downstream run start even if this upstream future/state failed (it receives the exception)."""

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass this value through untouched: no future resolution, no traversal (cheap for big data)."""

    __slots__ = ()

    def unquote(self) -> T:
        """The wrapped value."""
        return self.unwrap()


class opaque(BaseAnnotation[T]):
    """Resolve this future/state to its result, but do not look inside the result."""

    __slots__ = ()


class _NotSetType:
    _instance: _NotSetType | None = None

    def __new__(cls) -> _NotSetType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NotSet"

    def __bool__(self) -> bool:
        return False


#: Marks "not given" where ``None`` is a meaningful value.
NotSet: Any = _NotSetType()
