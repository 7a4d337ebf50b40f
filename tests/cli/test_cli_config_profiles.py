"""``flowplane config`` and ``flowplane profile`` as subprocesses: profiles.toml after each command, and rejected changes leave it untouched."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from cli_harness import free_port, ok, ok_json, one_line_error

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read(home: Path) -> dict[str, Any]:
    return tomllib.loads((home / "profiles.toml").read_text())


def test_config_set_view_unset(flowplane_home: Path) -> None:
    assert not (flowplane_home / "profiles.toml").exists()
    out = ok("config", "set", "FLOWPLANE_API_URL=http://127.0.0.1:4200/api", "logging_level=DEBUG")
    assert "Set FLOWPLANE_API_URL='http://127.0.0.1:4200/api'." in out
    assert "Updated profile 'default'." in out
    assert read(flowplane_home) == {
        "active": "default",
        "profiles": {
            "default": {
                "FLOWPLANE_API_URL": "http://127.0.0.1:4200/api",
                "FLOWPLANE_LOGGING_LEVEL": "DEBUG",
            }
        },
    }

    view = ok("config", "view").splitlines()
    assert view[0] == "FLOWPLANE_PROFILE='default'"
    assert "FLOWPLANE_API_URL='http://127.0.0.1:4200/api' (from profile)" in view
    assert "FLOWPLANE_LOGGING_LEVEL='DEBUG' (from profile)" in view
    assert not any("SERVER_PORT" in line for line in view)
    assert "FLOWPLANE_SERVER_PORT='4200' (from default)" in ok("config", "view", "--show-defaults")
    as_json = ok_json("config", "view")
    assert as_json["settings"]["FLOWPLANE_API_URL"] == {
        "value": "http://127.0.0.1:4200/api",
        "source": "profile",
    }

    env_view = ok("config", "view", FLOWPLANE_LOGGING_LEVEL="warning")
    assert "FLOWPLANE_LOGGING_LEVEL='WARNING' (from env)" in env_view

    assert "Unset FLOWPLANE_API_URL." in ok("config", "unset", "api_url")
    assert read(flowplane_home)["profiles"]["default"] == {"FLOWPLANE_LOGGING_LEVEL": "DEBUG"}


def test_rejected_config_changes_leave_the_file_unchanged(flowplane_home: Path) -> None:
    ok("config", "set", "FLOWPLANE_SERVER_PORT=4300")
    before = (flowplane_home / "profiles.toml").read_bytes()

    unknown = one_line_error(
        "config", "set", "FLOWPLANE_API_URL=http://x/api", "FLOWPLANE_API_ULR=http://y"
    )
    assert "Unknown setting 'FLOWPLANE_API_ULR'" in unknown and "FLOWPLANE_API_URL" in unknown
    assert "Invalid value 'many' for FLOWPLANE_SERVER_PORT" in one_line_error(
        "config", "set", "FLOWPLANE_SERVER_PORT=many"
    )
    assert "Expected KEY=VALUE" in one_line_error("config", "set", "FLOWPLANE_API_URL")
    assert "Unknown setting 'NOPE'" in one_line_error("config", "unset", "NOPE")
    assert "is not set in profile 'default'" in one_line_error(
        "config", "unset", "FLOWPLANE_API_URL"
    )
    assert "Unknown setting 'FLOWPLANE_HOME'" in one_line_error(
        "config", "set", "FLOWPLANE_HOME=/tmp"
    )
    assert (flowplane_home / "profiles.toml").read_bytes() == before


def test_secrets_are_masked_unless_asked(flowplane_home: Path) -> None:
    ok("config", "set", "FLOWPLANE_API_KEY=s3cret")
    assert read(flowplane_home)["profiles"]["default"]["FLOWPLANE_API_KEY"] == "s3cret"
    assert "FLOWPLANE_API_KEY='********' (from profile)" in ok("config", "view")
    assert "s3cret" not in ok("config", "view") and "s3cret" not in ok("profile", "inspect")
    assert "FLOWPLANE_API_KEY='s3cret' (from profile)" in ok("config", "view", "--show-secrets")


def test_profile_lifecycle(flowplane_home: Path) -> None:
    assert ok("profile", "ls").splitlines() == ["* default"]
    assert ok_json("profile", "ls") == {"active": "default", "profiles": ["default"]}

    ok("profile", "create", "dev")
    assert read(flowplane_home) == {"active": "default", "profiles": {"default": {}, "dev": {}}}

    assert ok("profile", "use", "dev").strip() == "Now using profile 'dev'."
    assert read(flowplane_home)["active"] == "dev"
    ok("config", "set", "FLOWPLANE_API_URL=http://dev:4200/api")
    assert read(flowplane_home)["profiles"] == {
        "default": {},
        "dev": {"FLOWPLANE_API_URL": "http://dev:4200/api"},
    }
    assert ok("profile", "ls").splitlines() == ["  default", "* dev"]
    assert ok("profile", "inspect").strip() == "FLOWPLANE_API_URL='http://dev:4200/api'"
    assert ok_json("profile", "inspect", "dev") == {
        "name": "dev",
        "settings": {"FLOWPLANE_API_URL": "http://dev:4200/api"},
    }
    assert ok("profile", "inspect", "default").strip() == "Profile 'default' is empty."

    ok("profile", "create", "staging", "--from", "dev")
    assert read(flowplane_home)["profiles"]["staging"] == {
        "FLOWPLANE_API_URL": "http://dev:4200/api"
    }

    before = (flowplane_home / "profiles.toml").read_bytes()
    assert "already exists" in one_line_error("profile", "create", "dev")
    assert "Profile 'nope' not found" in one_line_error("profile", "use", "nope")
    assert "is active" in one_line_error("profile", "delete", "dev")
    assert "Profile 'nope' not found" in one_line_error("profile", "inspect", "nope")
    assert "Profile 'nope' not found" in one_line_error("profile", "create", "x", "--from", "nope")
    assert (flowplane_home / "profiles.toml").read_bytes() == before

    ok("profile", "use", "default")
    assert ok("profile", "delete", "dev").strip() == "Deleted profile 'dev'."
    assert read(flowplane_home) == {
        "active": "default",
        "profiles": {"default": {}, "staging": {"FLOWPLANE_API_URL": "http://dev:4200/api"}},
    }


def test_the_active_profile_steers_commands(flowplane_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    ok("profile", "create", "remote")
    ok("profile", "use", "remote")
    ok("config", "set", f"FLOWPLANE_API_URL={url}")
    assert one_line_error("flow", "ls").startswith(
        f"Error: Cannot reach the flowplane API at {url}"
    )
    assert ok_json("flow", "ls", FLOWPLANE_PROFILE="default") == []  # back to embedded
    assert f"FLOWPLANE_API_URL={url!r}" not in ok("config", "view", FLOWPLANE_PROFILE="default")


def test_a_broken_profile_is_one_line_and_can_be_repaired(flowplane_home: Path) -> None:
    (flowplane_home / "profiles.toml").write_text(
        'active = "default"\n[profiles.default]\nFLOWPLANE_SERVER_PORT = "many"\n'
    )
    assert "FLOWPLANE_SERVER_PORT" in one_line_error("flow", "ls")
    ok("config", "unset", "FLOWPLANE_SERVER_PORT")
    assert ok_json("flow", "ls") == []
    (flowplane_home / "profiles.toml").write_text("this is not toml = = =")
    assert "Cannot read" in one_line_error("profile", "ls")
