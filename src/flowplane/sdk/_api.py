"""Where runs send things: the settings in effect, the process's writer for that API, and clients for the engine's requests."""

from __future__ import annotations

import atexit
import os
import threading
from typing import TYPE_CHECKING, Any

from flowplane.sdk.writer import Writer, writer_for

if TYPE_CHECKING:
    from flowplane.client import AsyncClient, Client
    from flowplane.settings import Settings

_settings_cache: dict[tuple[Any, ...], Settings] = {}
_settings_lock = threading.Lock()


def _settings_key() -> tuple[Any, ...]:
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("FLOWPLANE_")))
    home = os.environ.get("FLOWPLANE_HOME") or os.path.expanduser("~/.flowplane")
    try:
        mtime = os.stat(os.path.join(home, "profiles.toml")).st_mtime_ns
    except OSError:
        mtime = None
    return (env, mtime)


def current_settings() -> Settings:
    """The settings in effect now (environment and profile), read again only when they change."""
    key = _settings_key()
    settings = _settings_cache.get(key)
    if settings is None:
        from flowplane.settings import Settings

        settings = Settings.load()
        with _settings_lock:
            if len(_settings_cache) > 64:
                _settings_cache.clear()
            _settings_cache[key] = settings
    return settings


def target_key(settings: Settings) -> str:
    """What identifies the API runs talk to: its URL, or the embedded database's."""
    return settings.api_url or f"embedded:{settings.resolved_database_url}"


def writer(settings: Settings) -> Writer:
    """The process's background writer for the API of ``settings``."""

    def make_client() -> Client:
        from flowplane.client import get_client

        return get_client(sync_client=True, settings=settings)

    return writer_for(target_key(settings), make_client)


_server_clients: dict[tuple[int, str], Client] = {}


def sync_client(settings: Settings) -> tuple[Client, bool]:
    """A sync client for ``settings``, and whether the caller owns (and closes) it.

    One client per process and API target is kept, so flow runs do not pay for building
    one each: against a server it reuses its connections and CSRF token. Embedded, the
    kept client is replaced when its embedded server is (tests stop and start it between
    runs) or when the settings changed.
    """
    key = (os.getpid(), target_key(settings))
    client = _server_clients.get(key)
    if client is not None and (settings.api_url is not None or _still_current(client, settings)):
        return client, False
    from flowplane.client import get_client

    with _settings_lock:
        client = _server_clients.get(key)
        if client is None or (settings.api_url is None and not _still_current(client, settings)):
            if not _server_clients:
                atexit.register(close_server_clients)
            client = _server_clients[key] = get_client(sync_client=True, settings=settings)
    return client, False


def _still_current(client: Client, settings: Settings) -> bool:
    """Whether a kept embedded client has these very settings and talks to the live embedded server."""
    from flowplane.embedded import embedded_server

    transport = getattr(client._http, "_transport", None)
    return client.settings is settings and getattr(transport, "server", None) is embedded_server(
        settings
    )


def close_server_clients() -> None:
    """Close the clients kept for servers (at exit; tests and the harness call it too)."""
    with _settings_lock:
        clients = list(_server_clients.values())
        _server_clients.clear()
    for client in clients:
        try:
            client.close()
        except Exception:
            pass


def async_client(settings: Settings) -> AsyncClient:
    """A new async client for ``settings`` (the caller closes it)."""
    from flowplane.client import get_client

    return get_client(settings=settings)
