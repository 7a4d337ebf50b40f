"""Profiles: named sets of settings kept in ``$FLOWPLANE_HOME/profiles.toml``, changed as values and saved whole.

The file holds ``active = "name"`` and one ``[profiles.<name>]`` table per profile
of ``FLOWPLANE_...`` keys. :class:`Profiles` is an immutable value: every change
returns a new one after validating it (an unknown key, a bad value or a missing
profile raises :class:`~flowplane.exceptions.ConfigurationError`), so a rejected
change never reaches the file. :func:`load_profiles` and :func:`save_profiles`
are the only functions that touch the disk; saving writes a temporary file and
renames it over the old one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from flowplane.exceptions import ConfigurationError
from flowplane.settings import (
    DEFAULT_PROFILE,
    SETTING_NAMES,
    Settings,
    env_name,
    field_name,
    read_profiles_file,
)


def canonical_key(key: str) -> str:
    """``api_url`` or ``flowplane_api_url`` -> ``FLOWPLANE_API_URL``; unknown keys raise.

    Raises:
        ConfigurationError: ``key`` names no setting a profile may hold.
    """
    try:
        return env_name(field_name(key.strip()))
    except KeyError:
        hint = _closest(key)
        suggestion = f" Did you mean {hint}?" if hint else ""
        raise ConfigurationError(
            f"Unknown setting {key!r}.{suggestion} See `flowplane config view --show-defaults` for every setting."
        ) from None


def validate_value(key: str, value: Any) -> str:
    """Check ``value`` against the setting's type; return it as the string to store.

    Raises:
        ConfigurationError: the value does not fit the setting.
    """
    from pydantic import TypeAdapter, ValidationError

    name = field_name(key)
    annotation: Any = Settings.model_fields[name].annotation
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        raise ConfigurationError(
            f"Invalid value {value!r} for {env_name(name)}: {reason}"
        ) from None
    return str(value)


def _closest(key: str) -> str | None:
    import difflib

    wanted = key.upper()
    if not wanted.startswith("FLOWPLANE_"):
        wanted = "FLOWPLANE_" + wanted
    matches = difflib.get_close_matches(wanted, [env_name(n) for n in SETTING_NAMES], n=1)
    return matches[0] if matches else None


@dataclass(frozen=True)
class Profiles:
    """The contents of ``profiles.toml``: which profile is active and what each one sets."""

    active: str = DEFAULT_PROFILE
    profiles: Mapping[str, Mapping[str, str]] = field(
        default_factory=lambda: MappingProxyType({DEFAULT_PROFILE: MappingProxyType({})})
    )

    # --- reading ---

    @property
    def names(self) -> list[str]:
        return sorted(self.profiles)

    def get(self, name: str) -> dict[str, str]:
        """The settings of profile ``name``.

        Raises:
            ConfigurationError: no such profile.
        """
        self._require(name)
        return dict(self.profiles[name])

    # --- changing (each returns a new value) ---

    def create(self, name: str, from_profile: str | None = None) -> Profiles:
        """A new profile ``name``, empty or copied from ``from_profile``."""
        name = name.strip()
        if not name or any(c in name for c in "[]\"'.\n"):
            raise ConfigurationError(f"Invalid profile name {name!r}.")
        if name in self.profiles:
            raise ConfigurationError(f"Profile {name!r} already exists.")
        values = self.get(from_profile) if from_profile else {}
        return self._with(name, values)

    def use(self, name: str) -> Profiles:
        """Make ``name`` the active profile."""
        self._require(name)
        return replace(self, active=name)

    def delete(self, name: str) -> Profiles:
        """Remove profile ``name``; the active profile cannot be deleted."""
        self._require(name)
        if name == self.active:
            raise ConfigurationError(
                f"Profile {name!r} is active; switch to another with `flowplane profile use` first."
            )
        remaining = {k: v for k, v in self.profiles.items() if k != name}
        return replace(self, profiles=_freeze(remaining))

    def set_values(self, updates: Mapping[str, Any], profile: str | None = None) -> Profiles:
        """Set keys in ``profile`` (default: the active one); keys and values are validated first."""
        name = profile or self.active
        if name != self.active:
            self._require(name)
        values = dict(self.profiles.get(name, {}))  # an active profile without a table yet
        checked = {canonical_key(k): v for k, v in updates.items()}
        for key, value in checked.items():
            values[key] = validate_value(key, value)
        return self._with(name, values)

    def unset_values(self, keys: Iterable[str], profile: str | None = None) -> Profiles:
        """Remove keys from ``profile`` (default: the active one); each must be set there."""
        name = profile or self.active
        values = self.get(name)
        for key in [canonical_key(k) for k in keys]:
            if key not in values:
                raise ConfigurationError(f"{key} is not set in profile {name!r}.")
            del values[key]
        return self._with(name, values)

    # --- pieces ---

    def _require(self, name: str) -> None:
        if name not in self.profiles:
            known = ", ".join(self.names) or "none"
            raise ConfigurationError(f"Profile {name!r} not found (profiles: {known}).")

    def _with(self, name: str, values: Mapping[str, str]) -> Profiles:
        profiles = {k: dict(v) for k, v in self.profiles.items()}
        profiles[name] = dict(values)
        return replace(self, profiles=_freeze(profiles))

    def to_toml_data(self) -> dict[str, Any]:
        return {"active": self.active, "profiles": {k: dict(v) for k, v in self.profiles.items()}}


def _freeze(profiles: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in profiles.items()})


def load_profiles(path: Path) -> Profiles:
    """Read ``path``; a missing file is a lone, empty, active ``default`` profile.

    Raises:
        ConfigurationError: the file is not valid TOML or not shaped like a profiles file.
    """
    try:
        data = read_profiles_file(path)
    except Exception as exc:  # tomllib.TOMLDecodeError and OS errors alike
        raise ConfigurationError(f"Cannot read {path}: {exc}") from exc
    raw = data.get("profiles", {})
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigurationError(f"{path}: [profiles.<name>] tables expected")
    profiles = {name: {str(k): str(v) for k, v in values.items()} for name, values in raw.items()}
    active = str(data.get("active") or DEFAULT_PROFILE)
    if not profiles:
        profiles = {DEFAULT_PROFILE: {}}
    return Profiles(active=active, profiles=_freeze(profiles))


def save_profiles(profiles: Profiles, path: Path) -> None:
    """Write ``profiles`` to ``path`` atomically (temp file, then rename)."""
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    content = tomli_w.dumps(profiles.to_toml_data())
    fd, tmp = tempfile.mkstemp(prefix=".profiles-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
