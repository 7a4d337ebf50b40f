"""Result serializers: how a run's return value becomes text in a result record, and back.

Every serializer's ``dumps`` returns ASCII bytes (base64 for binary formats) so a
record stays one JSON document; ``to_dict`` describes the serializer in the record's
metadata so any process can read the value back with :func:`serializer_from_dict`.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import importlib
import json
import uuid
from pathlib import PurePath
from typing import Any, ClassVar

__all__ = [
    "Serializer",
    "PickleSerializer",
    "JSONSerializer",
    "CompressedSerializer",
    "CompressedPickleSerializer",
    "CompressedJSONSerializer",
    "resolve_serializer",
    "serializer_from_dict",
]


def _import(name: str, what: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ValueError(f"The {what} library {name!r} cannot be imported.") from None


class Serializer:
    """Turns objects into ASCII bytes and back; ``type`` names it in result metadata."""

    type: ClassVar[str] = ""

    def dumps(self, obj: Any) -> bytes:
        raise NotImplementedError

    def loads(self, blob: bytes) -> Any:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The serializer as result metadata stores it."""
        return {"type": self.type}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Serializer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({fields})"


class PickleSerializer(Serializer):
    """Pickles with ``picklelib`` (default cloudpickle, so lambdas and local classes work)."""

    type: ClassVar[str] = "pickle"

    def __init__(self, picklelib: str = "cloudpickle") -> None:
        module = _import(picklelib, "pickle")
        if not (hasattr(module, "dumps") and hasattr(module, "loads")):
            raise ValueError(f"Pickle library {picklelib!r} has no dumps/loads.")
        self.picklelib = picklelib
        self._lib = module

    def dumps(self, obj: Any) -> bytes:
        return base64.b64encode(self._lib.dumps(obj))

    def loads(self, blob: bytes) -> Any:
        return self._lib.loads(base64.b64decode(blob))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "picklelib": self.picklelib}


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal, PurePath)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class JSONSerializer(Serializer):
    """JSON text; readable anywhere, but only for JSON-shaped values (tuples come back as lists)."""

    type: ClassVar[str] = "json"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, default=_json_default).encode()

    def loads(self, blob: bytes) -> Any:
        return json.loads(blob)


class CompressedSerializer(Serializer):
    """Another serializer's output compressed with ``compressionlib`` (a module with compress/decompress)."""

    type: ClassVar[str] = "compressed"

    def __init__(
        self, serializer: Serializer | str = "pickle", compressionlib: str = "lzma"
    ) -> None:
        self.serializer = resolve_serializer(serializer)
        module = _import(compressionlib, "compression")
        if not (hasattr(module, "compress") and hasattr(module, "decompress")):
            raise ValueError(f"Compression library {compressionlib!r} has no compress/decompress.")
        self.compressionlib = compressionlib
        self._lib = module

    def dumps(self, obj: Any) -> bytes:
        return base64.b64encode(self._lib.compress(self.serializer.dumps(obj)))

    def loads(self, blob: bytes) -> Any:
        return self.serializer.loads(self._lib.decompress(base64.b64decode(blob)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "serializer": self.serializer.to_dict(),
            "compressionlib": self.compressionlib,
        }


class CompressedPickleSerializer(CompressedSerializer):
    """``"compressed/pickle"``: cloudpickle, then lzma."""

    type: ClassVar[str] = "compressed/pickle"

    def __init__(self, picklelib: str = "cloudpickle", compressionlib: str = "lzma") -> None:
        super().__init__(PickleSerializer(picklelib), compressionlib)


class CompressedJSONSerializer(CompressedSerializer):
    """``"compressed/json"``: JSON, then lzma."""

    type: ClassVar[str] = "compressed/json"

    def __init__(self, compressionlib: str = "lzma") -> None:
        super().__init__(JSONSerializer(), compressionlib)


_BY_NAME: dict[str, type[Serializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
    "compressed": CompressedSerializer,
    "compressed/pickle": CompressedPickleSerializer,
    "compressed/json": CompressedJSONSerializer,
}


def resolve_serializer(value: Serializer | str | None) -> Serializer:
    """A serializer from an instance or a name ("pickle", "json", "compressed/pickle", ...).

    Raises:
        ValueError: the name is not a known serializer.
    """
    if isinstance(value, Serializer):
        return value
    if value is None:
        return PickleSerializer()
    cls = _BY_NAME.get(value)
    if cls is None:
        raise ValueError(
            f"Unknown result serializer {value!r}; use one of {', '.join(sorted(_BY_NAME))} "
            "or a Serializer instance."
        )
    return cls()


def serializer_from_dict(data: dict[str, Any]) -> Serializer:
    """The serializer described by result metadata (see :meth:`Serializer.to_dict`).

    Raises:
        ValueError: the description names no known serializer.
    """
    kind = data.get("type")
    if kind == "pickle":
        return PickleSerializer(data.get("picklelib", "cloudpickle"))
    if kind == "json":
        return JSONSerializer()
    if kind == "compressed":
        inner = serializer_from_dict(data.get("serializer") or {"type": "pickle"})
        return CompressedSerializer(inner, data.get("compressionlib", "lzma"))
    if kind == "compressed/pickle":
        return CompressedPickleSerializer(compressionlib=data.get("compressionlib", "lzma"))
    if kind == "compressed/json":
        return CompressedJSONSerializer(data.get("compressionlib", "lzma"))
    raise ValueError(f"Unknown serializer in result metadata: {data!r}")
