"""``flowplane config``: view the settings in force and set or unset them in the active profile."""

from __future__ import annotations

import os
from typing import Any, List, Optional

import typer

from flowplane.cli._api import one_line_errors, output_option, wants_json
from flowplane.cli.output import fail, print_json

app = typer.Typer(
    help="View and change settings (stored in the active profile).", no_args_is_help=True
)

MASK = "********"


def profiles_path() -> Any:
    from flowplane.settings import default_home

    return default_home() / "profiles.toml"


def active_profile_name(profiles: Any) -> str:
    """``FLOWPLANE_PROFILE`` if set (it wins, as for the settings), else the file's active one."""
    return os.environ.get("FLOWPLANE_PROFILE") or profiles.active


@app.command()
def view(
    show_defaults: bool = typer.Option(
        False, "--show-defaults", help="Also show settings left at their defaults."
    ),
    show_secrets: bool = typer.Option(
        False, "--show-secrets", help="Show secret values instead of masking them."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """Show the settings in force and where each comes from (env, profile or default)."""
    from pydantic import SecretStr

    from flowplane.profiles import load_profiles
    from flowplane.settings import SETTING_NAMES, Settings, env_name

    as_json = wants_json(output)
    with one_line_errors():
        profiles = load_profiles(profiles_path())
        name = active_profile_name(profiles)
        stored = dict(profiles.profiles.get(name, {}))
        settings = Settings.load()
    rows: dict[str, dict[str, Any]] = {}
    for field in SETTING_NAMES:
        key = env_name(field)
        if key in os.environ:
            source = "env"
        elif key in stored:
            source = "profile"
        elif show_defaults:
            source = "default"
        else:
            continue
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value() if show_secrets else MASK
        rows[key] = {"value": value, "source": source}
    if as_json:
        print_json({"profile": name, "settings": rows})
        return
    typer.echo(f"FLOWPLANE_PROFILE={name!r}")
    for key, row in rows.items():
        shown = row["value"] if row["value"] is None else str(row["value"])
        typer.echo(f"{key}={shown!r} (from {row['source']})")


@app.command("set")
def set_(
    settings: List[str] = typer.Argument(
        ...,
        metavar="KEY=VALUE...",
        help="Settings to store, e.g. FLOWPLANE_API_URL=http://127.0.0.1:4200/api",
    ),
) -> None:
    """Store settings in the active profile (keys and values are checked first)."""
    from flowplane.profiles import load_profiles, save_profiles

    updates: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"Expected KEY=VALUE, got {item!r}.")
        updates[key.strip()] = value
    path = profiles_path()
    with one_line_errors():
        profiles = load_profiles(path)
        name = active_profile_name(profiles)
        changed = profiles.set_values(updates, profile=name)
        save_profiles(changed, path)
    from flowplane.profiles import canonical_key

    for key, value in updates.items():
        canonical = canonical_key(key)
        typer.echo(f"Set {canonical}={value!r}.")
        if canonical in os.environ:
            typer.secho(
                f"Note: {canonical} is also set in the environment, which takes precedence.",
                err=True,
                fg=typer.colors.YELLOW,
            )
    typer.echo(f"Updated profile {name!r}.")


@app.command()
def unset(
    keys: List[str] = typer.Argument(
        ..., metavar="KEY...", help="Settings to remove from the active profile."
    ),
) -> None:
    """Remove settings from the active profile (they fall back to env or defaults)."""
    from flowplane.profiles import canonical_key, load_profiles, save_profiles

    path = profiles_path()
    with one_line_errors():
        profiles = load_profiles(path)
        name = active_profile_name(profiles)
        changed = profiles.unset_values(keys, profile=name)
        save_profiles(changed, path)
        for key in keys:
            typer.echo(f"Unset {canonical_key(key)}.")
    typer.echo(f"Updated profile {name!r}.")
