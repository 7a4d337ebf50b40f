"""``flowplane.profiles``: validated, immutable changes to profiles.toml, saved atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowplane.exceptions import ConfigurationError
from flowplane.profiles import Profiles, canonical_key, load_profiles, save_profiles, validate_value
from flowplane.settings import Settings


@pytest.mark.parametrize(
    "key", ["api_url", "API_URL", "flowplane_api_url", "FLOWPLANE_API_URL", " api_url "]
)
def test_canonical_key_accepts_every_spelling(key: str) -> None:
    assert canonical_key(key) == "FLOWPLANE_API_URL"


def test_unknown_keys_suggest_the_closest() -> None:
    with pytest.raises(ConfigurationError, match="Did you mean FLOWPLANE_API_KEY"):
        canonical_key("FLOWPLANE_API_KYE")
    with pytest.raises(ConfigurationError, match="Unknown setting 'zzz'"):
        canonical_key("zzz")
    with pytest.raises(ConfigurationError):
        canonical_key("home")  # per machine, not per profile


def test_values_are_checked_against_the_setting_type() -> None:
    assert validate_value("FLOWPLANE_SERVER_PORT", "4300") == "4300"
    assert validate_value("FLOWPLANE_SERVER_CSRF_PROTECTION_ENABLED", "true") == "true"
    with pytest.raises(ConfigurationError, match="FLOWPLANE_SERVER_PORT"):
        validate_value("FLOWPLANE_SERVER_PORT", "many")
    with pytest.raises(ConfigurationError):
        validate_value("FLOWPLANE_API_REQUEST_TIMEOUT", "soon")


def test_a_missing_file_is_one_empty_default_profile(tmp_path: Path) -> None:
    profiles = load_profiles(tmp_path / "profiles.toml")
    assert profiles == Profiles()
    assert (profiles.active, profiles.names, profiles.get("default")) == (
        "default",
        ["default"],
        {},
    )


def test_changes_return_new_values_and_never_mutate() -> None:
    start = Profiles()
    changed = start.set_values({"api_url": "http://a/api"})
    assert start.get("default") == {}
    assert changed.get("default") == {"FLOWPLANE_API_URL": "http://a/api"}
    with pytest.raises(TypeError):
        changed.profiles["default"]["FLOWPLANE_API_URL"] = "x"  # type: ignore[index]

    both = (
        changed.create("dev", from_profile="default")
        .use("dev")
        .set_values({"logging_level": "debug"})
    )
    assert both.active == "dev"
    assert both.get("dev") == {
        "FLOWPLANE_API_URL": "http://a/api",
        "FLOWPLANE_LOGGING_LEVEL": "debug",
    }
    assert both.unset_values(["FLOWPLANE_API_URL"]).get("dev") == {
        "FLOWPLANE_LOGGING_LEVEL": "debug"
    }
    assert both.use("default").delete("dev").names == ["default"]
    assert (
        both.set_values({"server_port": "1"}, profile="default").get("default")[
            "FLOWPLANE_SERVER_PORT"
        ]
        == "1"
    )


def test_one_bad_key_rejects_the_whole_change() -> None:
    with pytest.raises(ConfigurationError):
        Profiles().set_values({"api_url": "http://a/api", "bogus": "1"})
    with pytest.raises(ConfigurationError, match="not found"):
        Profiles().set_values({"api_url": "x"}, profile="missing")
    with pytest.raises(ConfigurationError, match="Invalid profile name"):
        Profiles().create("has.dot")
    with pytest.raises(ConfigurationError, match="is active"):
        Profiles().delete("default")


def test_save_and_load_round_trip_and_settings_read_it(
    tmp_path: Path, flowplane_home: Path
) -> None:
    path = flowplane_home / "profiles.toml"
    profiles = (
        Profiles()
        .create("dev")
        .use("dev")
        .set_values({"api_url": "http://dev/api", "server_port": 4301})
    )
    save_profiles(profiles, path)
    assert load_profiles(path) == profiles
    assert [p.name for p in flowplane_home.iterdir()] == ["profiles.toml"]  # no temp files left
    settings = Settings.load()
    assert (settings.api_url, settings.server_port) == ("http://dev/api", 4301)


def test_unreadable_files_are_configuration_errors(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text("= nope")
    with pytest.raises(ConfigurationError, match="Cannot read"):
        load_profiles(path)
    path.write_text('profiles = "flat"')
    with pytest.raises(ConfigurationError, match="tables expected"):
        load_profiles(path)
