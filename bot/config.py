"""Settings from the environment: one typed model, validated before anything starts.

The variable names are the contract in DESIGN.md; `.env.example` and the README's
Configuration section list every one. Values are parsed and checked here (a port that is not
a number, a webhook secret Telegram would refuse, a URL that is not a URL); whether a
configuration makes sense *for a process type* (`web` with a polling-only Telegram setup,
a Socket Mode token given to `clock`) is decided in `bot.verdict`.

`Settings(...)` takes values only (tests and benchmarks build it directly, and nothing leaks
in from the shell); `Settings.from_env()` reads the environment through pydantic-settings'
own `EnvSettingsSource`, over any mapping, so `hipcoach check` and the tests can judge an
environment without touching `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.storage.db import normalize_database_url

__all__ = [
    "DEFAULT_PORT",
    "ConfigError",
    "Settings",
    "detect_container",
    "env_names",
]

DEFAULT_PORT = 8080
# Telegram's rule for X-Telegram-Bot-Api-Secret-Token (setWebhook's secret_token).
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


class ConfigError(Exception):
    """The environment cannot be read into Settings; `problems` are (variable, message)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))
        self.problems = problems


def _default_sqlite_url() -> str:
    return f"sqlite+aiosqlite:///{Path.cwd() / 'hipcoach.db'}"


def _secret(alias: str) -> Any:
    # repr=False: a token never shows up in a repr, a traceback or a log line.
    return Field(default=None, validation_alias=alias, repr=False)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        env_ignore_empty=True,  # compose's `${VAR:-}` hands over empty strings for unset
        str_strip_whitespace=True,
    )

    # repr=False: the URL holds the database password.
    database_url: str = Field(
        default_factory=_default_sqlite_url, validation_alias="DATABASE_URL", repr=False
    )

    telegram_bot_token: str | None = _secret("TELEGRAM_BOT_TOKEN")
    telegram_api_url: str | None = Field(default=None, validation_alias="TELEGRAM_API_URL")
    telegram_file_url: str | None = Field(default=None, validation_alias="TELEGRAM_FILE_URL")
    # Some operators put a secret path in it.
    telegram_webhook_url: str | None = _secret("TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: str | None = _secret("TELEGRAM_WEBHOOK_SECRET")

    slack_bot_token: str | None = _secret("SLACK_BOT_TOKEN")
    slack_signing_secret: str | None = _secret("SLACK_SIGNING_SECRET")
    slack_app_token: str | None = _secret("SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(default=None, validation_alias="SLACK_API_URL")
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: str | None = _secret("SLACK_CLIENT_SECRET")

    # None: not set. `web` then listens on DEFAULT_PORT; `run` (polling / Socket Mode only)
    # and `clock` serve /healthz and /metrics only when PORT is set.
    port: int | None = Field(default=None, ge=1, le=65535, validation_alias="PORT")
    # None: 0.0.0.0 inside a container, 127.0.0.1 elsewhere (see `bind_host`).
    host: str | None = Field(default=None, validation_alias="HOST")
    metrics: bool = Field(default=True, validation_alias="HIPCOACH_METRICS")

    files_dir: Path = Field(default=Path("hipcoach-files"), validation_alias="HIPCOACH_FILES_DIR")
    console_user: str = Field(default="local", validation_alias="HIPCOACH_CONSOLE_USER")
    # Where the console chat writes its log lines (None: hipcoach.log in files_dir), so
    # they never land between the chat's messages on the terminal.
    log_file: Path | None = Field(default=None, validation_alias="HIPCOACH_LOG_FILE")

    @property
    def console_log_file(self) -> Path:
        return self.log_file or self.files_dir / "hipcoach.log"

    # Read by the scheduler itself (scheduler.core.SchedulerConfig); checked here so a typo
    # stops the process instead of silently falling back to the default.
    tick_seconds: float | None = Field(default=None, gt=0, validation_alias="HIPCOACH_TICK_SECONDS")
    dispatch_seconds: float | None = Field(
        default=None, gt=0, validation_alias="HIPCOACH_DISPATCH_SECONDS"
    )
    sending_lease_seconds: float | None = Field(
        default=None, gt=0, validation_alias="HIPCOACH_SENDING_LEASE_SECONDS"
    )

    # Where we run, found by `from_env` (not a variable: see `detect_container`).
    _container: str | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Constructor arguments only; the environment comes in through `from_env`.
        return (init_settings,)

    # --- value checks -------------------------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, values: Any) -> Any:
        # "VAR= " in an env file means "not set", like an empty value.
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(normalize_database_url(value))
        except (ArgumentError, ValueError) as error:
            raise ValueError(
                "not a database URL (e.g. postgresql://user:password@host:5432/name "
                "or sqlite:///./hipcoach.db)"
            ) from error
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise ValueError("only PostgreSQL and SQLite are supported")
        return url.render_as_string(hide_password=False)

    @field_validator(
        "telegram_api_url", "telegram_file_url", "slack_api_url", "telegram_webhook_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str | None) -> str | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value):
            raise ValueError(
                "Telegram accepts 1-256 characters: letters, digits, _ and - "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.fullmatch(value):
                raise ValueError("an address to listen on, e.g. 0.0.0.0, 127.0.0.1 or ::") from None
        return value

    # --- derived ------------------------------------------------------------------------------

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def slack_oauth(self) -> bool:
        """Slack OAuth distribution: installations per workspace instead of one bot token."""
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token or self.slack_oauth)

    @property
    def container(self) -> str | None:
        """What showed that we run in a container (e.g. "/.dockerenv"), or None."""
        return self._container

    @property
    def bind_host(self) -> str:
        if self.host:
            return self.host
        return "0.0.0.0" if self._container else "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return self.port or DEFAULT_PORT

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, root: Path = Path("/")) -> Settings:
        """Settings from `env` (default: the process environment); raises ConfigError
        naming each variable that cannot be used."""
        env = os.environ if env is None else env
        try:
            settings = cls(**_MappingEnvSource(cls, env)())
        except ValidationError as error:
            raise ConfigError(_problems(error)) from None
        settings._container = detect_container(env, root)
        return settings


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def env_names() -> dict[str, str]:
    """Variable name -> field name, for every variable Settings reads."""
    names: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, str), name
        names[alias] = name
    return names


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "environment"
        message = item["msg"].removeprefix("Value error, ")
        problems.append((name, message))
    return problems


# Signs of a container, checked in order. Files: Docker and Podman write these into every
# container. Variables: systemd-nspawn, LXC and Podman set `container`; Kubernetes sets the
# service host in every pod; Heroku-style platforms (the Procfile's home) set DYNO.
_CONTAINER_FILES = (".dockerenv", "run/.containerenv")
_CONTAINER_VARS = ("container", "KUBERNETES_SERVICE_HOST", "DYNO")


def detect_container(env: Mapping[str, str], root: Path = Path("/")) -> str | None:
    """What shows that this process runs in a container, or None on a plain machine."""
    for relative in _CONTAINER_FILES:
        if (root / relative).exists():
            return f"/{relative}"
    for name in _CONTAINER_VARS:
        if env.get(name, "").strip():
            return f"${name}"
    return None
