"""Settings: one typed object read from ``FORMFLOW_*`` environment variables.

There is no module-level instance: the composition root (the CLI, the web
app factory) calls :func:`load_settings` once and passes the object on.
Outside development, insecure defaults are refused rather than used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "FORMFLOW_"

# Signs development sessions only. Refused in production, where
# FORMFLOW_SECRET_KEY must be set to a long random value.
DEVELOPMENT_SECRET_KEY = "formflow-development-only-insecure-secret-key"
MIN_SECRET_KEY_LENGTH = 32

Environment = Literal["development", "production"]
# embedded: the web server runs a jobs worker thread; off: `formflow worker` runs them.
WorkerMode = Literal["embedded", "off"]


class SettingsError(ValueError):
    """The environment does not describe a usable configuration."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid Formflow settings:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class Settings(BaseSettings):
    """Formflow's configuration. Every field is read from ``FORMFLOW_<NAME>``.

    Build it with :func:`load_settings`; ``Settings(field=value)`` takes
    values only from its arguments (handy in tests), never from the process
    environment.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Where Formflow keeps its files (the default SQLite database, uploads).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; default: a SQLite file <data_dir>/formflow.db.",
    )
    environment: Environment = Field(
        default="development", description="'development' or 'production'."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET_KEY),
        description="Signs sessions and tokens; required (32+ characters) in production.",
    )
    statement_timeout_ms: int = Field(
        default=15000, ge=0, description="PostgreSQL statement timeout; 0 means none."
    )
    max_page_size: int = Field(default=500, gt=0, description="Largest page a list may return.")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest request body accepted."
    )
    worker: WorkerMode = Field(
        default="embedded",
        description="'embedded': `formflow serve` runs the jobs worker in a thread; "
        "'off': jobs run only where `formflow worker` runs.",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="How often an idle jobs worker looks for jobs."
    )
    worker_batch_size: int = Field(
        default=10, ge=1, le=1000, description="Jobs a worker claims at a time."
    )
    script_tasks: bool = Field(
        default=False,
        description="Publish BPMN script tasks (and pre/post scripts): assignments in the "
        "sandboxed expression language. Off: files with scripts are refused.",
    )
    worker_lease_seconds: float = Field(
        default=300,
        ge=1,
        le=86400,
        description="How long a claimed job is a worker's; then another worker may take it over.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the caller passes: load_settings() reads the environment
        # it is given, so no setting leaks in from the process environment.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _defaults_from_data_dir(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        data_dir = Path(str(data.get("data_dir") or "data")).expanduser().resolve()
        data["data_dir"] = data_dir
        if not data.get("database_url"):
            data["database_url"] = f"sqlite:///{data_dir / 'formflow.db'}"
        return data

    @field_validator("environment", "worker", mode="before")
    @classmethod
    def _lower_environment(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        try:
            sa.make_url(value)
        except sa.exc.ArgumentError:
            raise ValueError(
                "not a database URL; use e.g. sqlite:////var/lib/formflow/formflow.db or "
                "postgresql+psycopg://user:password@host:5432/formflow"
            ) from None
        return value

    @model_validator(mode="after")
    def _refuse_insecure_defaults(self) -> Settings:
        if self.environment == "development":
            return self
        key = self.secret_key.get_secret_value()
        if "secret_key" not in self.model_fields_set or key == DEVELOPMENT_SECRET_KEY:
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEY must be set when {ENV_PREFIX}ENVIRONMENT="
                f"{self.environment}: the development default is not secret. Generate one "
                "with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEY is too short ({len(key)} characters); "
                f"use at least {MIN_SECRET_KEY_LENGTH} random characters in {self.environment}"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return sa.make_url(self.database_url).get_backend_name() == "sqlite"

    def with_database_url(self, url: str) -> Settings:
        """A copy pointing at another database (a command-line override)."""
        values = {name: getattr(self, name) for name in self.model_fields_set}
        return Settings.model_validate({**values, "database_url": url})


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {
            (name if self.case_sensitive else name.lower()): value
            for name, value in self._env.items()
            if not (self.env_ignore_empty and value == "")
        }


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (default: the process environment).

    Only ``env`` is consulted: passing a mapping makes the result independent
    of the process environment (tests, embedding). Raises
    :class:`SettingsError` naming each bad variable.
    """
    source = _MappingEnvSource(Settings, os.environ if env is None else env)
    try:
        return Settings.model_validate(source())
    except ValidationError as exc:
        raise SettingsError([_describe(e) for e in exc.errors()]) from None


def _describe(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = error.get("loc") or ()
    if not loc:
        return message
    return f"{ENV_PREFIX}{str(loc[0]).upper()}: {message}"
