"""``flowplane profile``: list, create, switch, inspect and delete named sets of settings."""

from __future__ import annotations

import os
from typing import Optional

import typer

from flowplane.cli._api import confirm_or_exit, one_line_errors, output_option, wants_json
from flowplane.cli.config import MASK, active_profile_name, profiles_path
from flowplane.cli.output import print_json

app = typer.Typer(
    help="Manage profiles (named sets of settings in profiles.toml).", no_args_is_help=True
)

SECRET_KEYS = ("FLOWPLANE_API_KEY", "FLOWPLANE_SERVER_API_AUTH_STRING", "FLOWPLANE_API_AUTH_STRING")


@app.command("ls")
def ls(output: Optional[str] = output_option()) -> None:
    """List profiles; the active one is marked with '*'."""
    from flowplane.profiles import load_profiles

    as_json = wants_json(output)
    with one_line_errors():
        profiles = load_profiles(profiles_path())
    active = active_profile_name(profiles)
    if as_json:
        print_json({"active": active, "profiles": profiles.names})
        return
    for name in profiles.names:
        typer.echo(f"* {name}" if name == active else f"  {name}")


@app.command()
def create(
    name: str = typer.Argument(..., help="The new profile's name."),
    from_profile: Optional[str] = typer.Option(
        None, "--from", help="Copy the settings of this profile."
    ),
) -> None:
    """Create a profile (empty, or a copy of another)."""
    from flowplane.profiles import load_profiles, save_profiles

    path = profiles_path()
    with one_line_errors():
        profiles = load_profiles(path).create(name, from_profile=from_profile)
        save_profiles(profiles, path)
    typer.echo(f"Created profile {name!r}. Switch to it with `flowplane profile use {name}`.")


@app.command()
def use(name: str = typer.Argument(..., help="The profile to make active.")) -> None:
    """Make a profile the active one."""
    from flowplane.profiles import load_profiles, save_profiles

    path = profiles_path()
    with one_line_errors():
        profiles = load_profiles(path).use(name)
        save_profiles(profiles, path)
    typer.echo(f"Now using profile {name!r}.")
    override = os.environ.get("FLOWPLANE_PROFILE")
    if override and override != name:
        typer.secho(
            f"Note: FLOWPLANE_PROFILE={override!r} is set in the environment and takes precedence.",
            err=True,
            fg=typer.colors.YELLOW,
        )


@app.command()
def delete(
    name: str = typer.Argument(..., help="The profile to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a profile (not the active one)."""
    from flowplane.profiles import load_profiles, save_profiles

    path = profiles_path()
    with one_line_errors():
        profiles = load_profiles(path).delete(name)
        confirm_or_exit(f"Delete profile {name!r}?", yes)
        save_profiles(profiles, path)
    typer.echo(f"Deleted profile {name!r}.")


@app.command()
def inspect(
    name: Optional[str] = typer.Argument(
        None, help="The profile to show (default: the active one)."
    ),
    show_secrets: bool = typer.Option(
        False, "--show-secrets", help="Show secret values instead of masking them."
    ),
    output: Optional[str] = output_option(),
) -> None:
    """Show the settings a profile stores."""
    from flowplane.profiles import load_profiles

    as_json = wants_json(output)
    with one_line_errors():
        profiles = load_profiles(profiles_path())
        name = name or active_profile_name(profiles)
        values = profiles.get(name)
    if not show_secrets:
        values = {k: (MASK if k in SECRET_KEYS else v) for k, v in values.items()}
    if as_json:
        print_json({"name": name, "settings": values})
        return
    if not values:
        typer.echo(f"Profile {name!r} is empty.")
        return
    for key, value in values.items():
        typer.echo(f"{key}={value!r}")
