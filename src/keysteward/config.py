"""Settings, resolved as command-line flag over environment over config file.

Every setting has an environment variable ``KEYSTEWARD_<NAME>`` and a key of
the same name (lower case) in ``$KEYSTEWARD_HOME/config.toml``.
"""

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from keysteward.errors import ConfigError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
CONFIG_FILE_NAME = "config.toml"


def default_home() -> Path:
    """Return the store folder named by ``KEYSTEWARD_HOME``, or ``~/.keysteward``."""
    return Path(os.environ.get("KEYSTEWARD_HOME") or Path.home() / ".keysteward")


class Settings(BaseSettings):
    """keysteward's settings; see the README's configuration section."""

    model_config = SettingsConfigDict(env_prefix="KEYSTEWARD_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; unset means SQLite in home.",
    )
    log_level: str = "WARNING"
    cookie_secure: bool = Field(
        default=True,
        description="Mark dashboard cookies Secure; turn off only for "
        "http://127.0.0.1 in development.",
    )
    sqlite_synchronous: str = Field(
        default="FULL",
        description="SQLite commit durability: FULL syncs each commit to disk; "
        "NORMAL (WAL mode) survives a crash of keysteward but may lose the last "
        "commits on a power loss or an operating system crash.",
    )
    config_file: Path | None = None

    @field_validator("sqlite_synchronous")
    @classmethod
    def _check_sqlite_synchronous(cls, value: str) -> str:
        if value.upper() not in ("FULL", "NORMAL"):
            raise ValueError("must be FULL or NORMAL")
        return value.upper()

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        allowed = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        if value.upper() not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
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
        toml_path = _config_file_path(init_settings())
        toml_settings = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, toml_settings)

    @property
    def resolved_database_url(self) -> str:
        """Return the store URL: the configured one, or SQLite inside home."""
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{self.home / 'keysteward.db'}"

    @property
    def backend(self) -> str:
        return make_url(self.resolved_database_url).get_backend_name()


def _config_file_path(init_values: dict[str, Any]) -> Path:
    explicit = init_values.get("config_file") or os.environ.get(
        "KEYSTEWARD_CONFIG_FILE"
    )
    if explicit:
        return Path(explicit)
    home = init_values.get("home") or default_home()
    return Path(home) / CONFIG_FILE_NAME


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, with ``overrides`` (command-line flags) taking priority.

    Raises ConfigError naming the setting when a value is invalid.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        path = _config_file_path(given)
        raise ConfigError(
            f"invalid settings file {path}: {exc}; fix the TOML syntax or point "
            "KEYSTEWARD_CONFIG_FILE at another file"
        ) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "settings"
        raise ConfigError(
            f"invalid setting KEYSTEWARD_{name.upper()}: {error['msg']}"
        ) from None
    validate_database_url(settings.resolved_database_url)
    return settings


def validate_database_url(url: str) -> None:
    """Raise ConfigError unless ``url`` names a supported SQLAlchemy backend."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "invalid KEYSTEWARD_DATABASE_URL: not a database URL; expected "
            "postgresql+psycopg://USER@HOST:PORT/DATABASE or sqlite:///PATH"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"invalid KEYSTEWARD_DATABASE_URL: backend {backend!r} is not supported; "
            "use postgresql+psycopg://... or sqlite:///..."
        )
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise ConfigError(
            f"invalid KEYSTEWARD_DATABASE_URL: driver {parsed.get_driver_name()!r} is "
            "not installed; write the URL as postgresql+psycopg://..."
        )


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
