"""Result serializers (pickle, JSON, compressed), as in ``prefect.serializers``."""

from flowplane.sdk.serializers import (
    CompressedJSONSerializer,
    CompressedPickleSerializer,
    CompressedSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
)

__all__ = [
    "Serializer",
    "PickleSerializer",
    "JSONSerializer",
    "CompressedSerializer",
    "CompressedPickleSerializer",
    "CompressedJSONSerializer",
]
