"""Settings from FLOWPLANE_* environment variables, the active profile, and defaults.

Precedence, highest first: keyword arguments, environment variables, the active
profile in ``$FLOWPLANE_HOME/profiles.toml``, then the defaults below. Settings
are read at an entry point (``Settings.load()``) and passed down; nothing here
runs at import time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import toml as tomllib  # type: ignore[no-redef]

ENV_PREFIX = "FLOWPLANE_"
DEFAULT_PROFILE = "default"


def default_home() -> Path:
    """The home folder: ``$FLOWPLANE_HOME`` or ``~/.flowplane``."""
    return Path(os.environ.get("FLOWPLANE_HOME") or Path.home() / ".flowplane").expanduser()


class Settings(BaseSettings):
    """Every flowplane setting. Environment variable: ``FLOWPLANE_`` + the upper-cased name."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", validate_default=True)

    home: Path = Field(
        default_factory=default_home, description="Folder for the database, profiles and results."
    )
    profile: str | None = Field(
        default=None, description="Profile to use instead of the active one."
    )
    api_url: str | None = Field(
        default=None, description="Server API URL; unset means embedded mode."
    )
    api_key: SecretStr | None = Field(default=None, description="API key sent as a bearer token.")
    api_auth_string: SecretStr | None = Field(
        default=None, description="user:password the client sends as HTTP basic auth."
    )
    api_request_timeout: float = Field(
        default=60.0, description="Seconds before a request gives up."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///$FLOWPLANE_HOME/flowplane.db",
    )
    database_timeout: float = Field(
        default=10.0, description="Seconds a statement may wait for a lock."
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")
    logging_level: str = Field(default="INFO", description="Level of flowplane's own loggers.")
    server_host: str = Field(default="127.0.0.1", description="Address the server binds to.")
    server_port: int = Field(default=4200, description="Port the server binds to.")
    server_csrf_protection_enabled: bool = Field(
        default=False, description="Require CSRF tokens on state-changing requests."
    )
    server_csrf_token_expiration: float = Field(
        default=3600.0, description="CSRF token lifetime, seconds."
    )
    server_services_enabled: bool = Field(
        default=True, description="Run background services in the server."
    )
    server_services_pause_expirations_enabled: bool = Field(
        default=True, description="Fail paused flow runs whose pause timed out."
    )
    server_services_pause_expirations_loop_seconds: float = Field(
        default=5.0, gt=0, description="How often to look for expired pauses, seconds."
    )
    server_api_auth_string: SecretStr | None = Field(
        default=None, description="If set, clients must present it (basic auth or websocket token)."
    )
    # --- liveness: late runs, flow-run heartbeats, zombie reaper ---
    server_services_late_runs_enabled: bool = Field(
        default=True, description="Mark scheduled runs that did not start on time as Late."
    )
    server_services_late_runs_loop_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between passes of the late-runs service."
    )
    server_services_late_runs_after_seconds: float = Field(
        default=15.0, ge=0, description="Seconds past its scheduled start before a run is Late."
    )
    flows_heartbeat_frequency: float = Field(
        default=30.0,
        ge=0,
        description="Seconds between a running flow run's heartbeats; 0 turns them off.",
    )
    server_services_zombies_enabled: bool = Field(
        default=True, description="Mark running flow runs whose heartbeats stopped as Crashed."
    )
    server_services_zombies_loop_seconds: float = Field(
        default=5.0, gt=0, description="Seconds between passes of the zombie reaper."
    )
    server_services_zombies_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds without a heartbeat before a running flow run is Crashed "
        "(at least two of the run's own heartbeat intervals).",
    )
    server_services_pending_release_enabled: bool = Field(
        default=True,
        description="Give Pending runs of work pools with no live worker back to Scheduled.",
    )
    server_services_pending_release_loop_seconds: float = Field(
        default=10.0, gt=0, description="Seconds between passes of the pending-release service."
    )
    server_services_pending_release_after_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a run stays Pending past its scheduled time, with no live worker "
        "in its pool, before it is released to Scheduled.",
    )

    # --- scheduler: runs from deployment schedules (Prefect's scheduler settings) ---
    server_services_scheduler_enabled: bool = Field(
        default=True, description="Create Scheduled runs from deployments' schedules."
    )
    server_services_scheduler_loop_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between full passes over every deployment."
    )
    server_services_scheduler_recent_deployments_loop_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between passes over deployments created or changed recently.",
    )
    server_services_scheduler_deployment_batch_size: int = Field(
        default=100, gt=0, description="Deployments scheduled per transaction."
    )
    server_services_scheduler_max_runs: int = Field(
        default=100, ge=0, description="Most runs a schedule keeps ahead."
    )
    server_services_scheduler_min_runs: int = Field(
        default=3, ge=0, description="Fewest runs a schedule keeps ahead (within max time)."
    )
    server_services_scheduler_max_scheduled_time: float = Field(
        default=100 * 86400.0, gt=0, description="Seconds ahead runs are created at most."
    )
    server_services_scheduler_min_scheduled_time: float = Field(
        default=3600.0, ge=0, description="Seconds ahead runs are created at least."
    )
    server_services_scheduler_catch_up: Literal["skip", "run_missed"] = Field(
        default="skip",
        description="After downtime: skip missed times (Prefect) or create runs for them; "
        "a deployment label flowplane.scheduler.catch_up overrides it.",
    )
    server_services_scheduler_catch_up_max_runs: int = Field(
        default=10, ge=0, description="Most missed runs created per schedule when catching up."
    )

    results_persist_by_default: bool = Field(
        default=False, description="Persist every flow and task result unless told otherwise."
    )
    tasks_default_persist_result: bool | None = Field(
        default=None, description="Persist task results by default (overrides the flow's default)."
    )
    results_default_serializer: str = Field(
        default="pickle",
        description="Serializer for persisted results (pickle, json, compressed/...).",
    )
    results_local_storage_path: Path | None = Field(
        default=None, description="Folder for persisted results; default $FLOWPLANE_HOME/storage."
    )
    results_default_storage: str | None = Field(
        default=None,
        description="Default result storage: a folder or fsspec URL (s3://bucket/prefix).",
    )

    @field_validator("logging_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ProfileSource(settings_cls))

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read the settings now (environment and profile), with ``overrides`` on top."""
        return cls(**overrides)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to the SQLite file in the home folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'flowplane.db'}"

    @property
    def resolved_result_storage(self) -> str:
        """Where results go by default: the configured storage, else ``$FLOWPLANE_HOME/storage``."""
        if self.results_default_storage:
            return self.results_default_storage
        return str(self.results_local_storage_path or self.home / "storage")

    @property
    def profiles_path(self) -> Path:
        return self.home / "profiles.toml"


#: Names a profile may set (``FLOWPLANE_API_URL`` style keys map to these fields).
SETTING_NAMES: tuple[str, ...] = tuple(
    name for name in Settings.model_fields if name not in ("home", "profile")
)


def env_name(field: str) -> str:
    """``api_url`` -> ``FLOWPLANE_API_URL``."""
    return ENV_PREFIX + field.upper()


def field_name(key: str) -> str:
    """``FLOWPLANE_API_URL`` (or ``api_url``) -> ``api_url``; raises ``KeyError`` if unknown."""
    name = key.upper().removeprefix(ENV_PREFIX).lower()
    if name not in SETTING_NAMES:
        raise KeyError(key)
    return name


class _ProfileSource(PydanticBaseSettingsSource):
    """Values from the active profile of ``profiles.toml``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        home = default_home()
        path = home / "profiles.toml"
        if not path.exists():
            return {}
        data = read_profiles_file(path)
        name = os.environ.get(env_name("profile")) or data.get("active") or DEFAULT_PROFILE
        values = data.get("profiles", {}).get(name, {})
        out: dict[str, Any] = {}
        for key, value in values.items():
            try:
                out[field_name(key)] = value
            except KeyError:
                continue
        return out


def read_profiles_file(path: Path) -> dict[str, Any]:
    """Parse ``profiles.toml``; a missing file is an empty one."""
    if not path.exists():
        return {"active": DEFAULT_PROFILE, "profiles": {DEFAULT_PROFILE: {}}}
    with path.open("rb") as fh:
        return tomllib.load(fh)
