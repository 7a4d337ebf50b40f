"""flowplane's errors, one tree:

    FlowplaneError
    ├── ConfigurationError            a setting or profile is wrong
    ├── ClientError                   talking to the API failed
    │   ├── APIUnreachable            no server answered at the API URL
    │   └── HTTPStatusError           the server answered with an error status
    │       ├── ObjectNotFound        404
    │       ├── ObjectAlreadyExists   409
    │       └── ValidationFailed      422
    └── ...                           (engine errors arrive with the engine)
"""

from __future__ import annotations

from typing import Any


class FlowplaneError(Exception):
    """Root of every flowplane error."""


class ConfigurationError(FlowplaneError):
    """A setting, profile or configuration file is invalid."""


class ClientError(FlowplaneError):
    """A request to the flowplane API failed."""


class APIUnreachable(ClientError):
    """No server answered at the API URL."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Cannot reach the flowplane API at {url}: {reason}")


class HTTPStatusError(ClientError):
    """The server answered with an error status; ``detail`` is its explanation."""

    def __init__(self, status_code: int, detail: Any, method: str = "", url: str = "") -> None:
        self.status_code = status_code
        self.detail = detail
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method else ""
        super().__init__(f"{status_code}: {_detail_text(detail)}{where}")


class ObjectNotFound(HTTPStatusError):
    """The object asked for does not exist (404)."""


class ObjectAlreadyExists(HTTPStatusError):
    """The object to create exists already (409)."""


class ValidationFailed(HTTPStatusError):
    """The server rejected the request body or parameters (422)."""


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)
