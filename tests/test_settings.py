"""Settings: defaults, environment variables, and the active profile, in that order of weakness."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowplane.settings import Settings, field_name


def _write_profiles(home: Path, text: str) -> None:
    (home / "profiles.toml").write_text(text)


def test_defaults_live_under_home(flowplane_home: Path) -> None:
    settings = Settings.load()
    assert settings.home == flowplane_home
    assert settings.api_url is None
    assert (
        settings.resolved_database_url == f"sqlite+aiosqlite:///{flowplane_home / 'flowplane.db'}"
    )
    assert (settings.server_host, settings.server_port) == ("127.0.0.1", 4200)


def test_profile_values_apply_and_env_wins(
    flowplane_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_profiles(
        flowplane_home,
        'active = "dev"\n'
        "[profiles.default]\n"
        '[profiles.dev]\nFLOWPLANE_API_URL = "http://127.0.0.1:9999/api"\nFLOWPLANE_SERVER_PORT = 5000\n',
    )
    settings = Settings.load()
    assert settings.api_url == "http://127.0.0.1:9999/api"
    assert settings.server_port == 5000
    monkeypatch.setenv("FLOWPLANE_SERVER_PORT", "6000")
    assert Settings.load().server_port == 6000


def test_profile_env_var_selects_profile(
    flowplane_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_profiles(
        flowplane_home,
        'active = "default"\n[profiles.default]\n[profiles.other]\nFLOWPLANE_LOGGING_LEVEL = "debug"\n',
    )
    assert Settings.load().logging_level == "INFO"
    monkeypatch.setenv("FLOWPLANE_PROFILE", "other")
    assert Settings.load().logging_level == "DEBUG"


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLANE_SERVER_PORT", "not-a-port")
    with pytest.raises(ValueError, match="server_port"):
        Settings.load()


def test_field_names_accept_env_style_keys() -> None:
    assert field_name("FLOWPLANE_API_URL") == "api_url"
    assert field_name("api_url") == "api_url"
    with pytest.raises(KeyError):
        field_name("FLOWPLANE_NOPE")
