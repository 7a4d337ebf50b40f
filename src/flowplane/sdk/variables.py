"""``Variable``: named, mutable JSON values shared by flows, tasks and deployments, with sync and async faces.

Each pair (``set``/``aset``, ``get``/``aget``, ``unset``/``aunset``) runs the same
client operation; only the client's face differs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from flowplane.schemas.variables import MAX_VARIABLE_NAME_LENGTH
from flowplane.sdk._calls import call_async, call_sync

__all__ = ["Variable"]


class Variable(BaseModel):
    """A variable: a name, a JSON value and tags.

    Attributes:
        name: lowercase letters, numbers, dashes and underscores (at most 255).
        value: any JSON value (string, number, boolean, null, object, array).
        tags: labels to find variables by.
    """

    name: str = Field(max_length=MAX_VARIABLE_NAME_LENGTH)
    value: Any = None
    tags: list[str] | None = None

    @classmethod
    def _from(cls, variable: Any) -> Variable:
        return cls(name=variable.name, value=variable.value, tags=list(variable.tags))

    @classmethod
    def set(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """Create a variable, or replace an existing one's value and tags with ``overwrite=True``.

        Args:
            name: the variable's name.
            value: any JSON value.
            tags: labels for the variable (replacing the old ones when overwriting).
            overwrite: replace a variable that exists instead of raising.

        Returns:
            The variable as stored.

        Raises:
            ValueError: it exists and ``overwrite`` is False, or the name or value is not
                allowed (a ``pydantic.ValidationError``, which is a ``ValueError``).
        """
        return cls._from(call_sync("set_variable", name, value, tags, overwrite))

    @classmethod
    async def aset(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """:meth:`set` for async code."""
        return cls._from(await call_async("set_variable", name, value, tags, overwrite))

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The value of the variable ``name``, or ``default`` if there is none.

        Returns:
            The stored value (which may itself be ``None``), or ``default``.
        """
        variable = call_sync("read_variable_by_name", name)
        return default if variable is None else variable.value

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """:meth:`get` for async code."""
        variable = await call_async("read_variable_by_name", name)
        return default if variable is None else variable.value

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete the variable ``name``.

        Returns:
            True if it was deleted, False if there was none.
        """
        return bool(call_sync("unset_variable", name))

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """:meth:`unset` for async code."""
        return bool(await call_async("unset_variable", name))
