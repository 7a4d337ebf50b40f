"""Models of the server's own endpoints: CSRF tokens."""

from __future__ import annotations

from flowplane.schemas.base import ObjectModel, UTCDateTime


class CsrfToken(ObjectModel):
    token: str
    client: str
    expiration: UTCDateTime
