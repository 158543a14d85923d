"""Settings, read once from `FIVESTAR_`-prefixed environment variables.

Every setting is validated when the process starts, so a typo in a URL or a production instance
without a secret key stops the process with one clear message instead of failing on the first
request. The embedded default (no variables at all) is a SQLite file and a file-system broker in
the data folder, which is what `fivestar demo` runs on.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "production", "test"]


class ConfigError(Exception):
    """The environment does not describe a runnable instance; the message says what to fix."""


class Settings(BaseSettings):
    """All of Fivestar's configuration. Field `x` is read from `FIVESTAR_X`."""

    model_config = SettingsConfigDict(env_prefix="FIVESTAR_", extra="ignore", frozen=True)

    env: Environment = "development"
    data_dir: Path = Field(default_factory=lambda: Path("fivestar-data"))
    database_url: str = ""
    broker_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:5000"

    mail_server: str = "127.0.0.1"
    mail_port: int = Field(default=1025, ge=1, le=65535)
    mail_username: str = ""
    mail_password: str = ""
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_sender: str = "fivestar@localhost"
    mail_timeout_seconds: float = Field(default=10.0, gt=0)

    ratelimit_storage_url: str = "memory://"
    login_limit: str = "10 per minute"
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    invitation_days: int = Field(default=7, ge=1, le=60)
    max_upload_mb: int = Field(default=20, ge=1, le=500)
    default_locale: Literal["zh", "en"] = "zh"
    default_timezone: str = "Asia/Shanghai"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The demo's fast calendar: a clock offset kept in the database that anyone logged in can move
    # forward (never in production).
    demo_clock: bool = False

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("只支持 sqlite 与 postgresql (only sqlite:// and postgresql:// URLs are supported)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "filesystem://", "memory://", "sqla+")):
            raise ValueError("broker must be redis://, rediss://, filesystem:// or memory://")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production":
            if len(self.secret_key) < 32:
                raise ValueError(
                    "生产环境必须设置至少 32 个字符的 FIVESTAR_SECRET_KEY "
                    "(production refuses to start without FIVESTAR_SECRET_KEY of at least 32 characters)"
                )
            if self.demo_clock:
                raise ValueError("FIVESTAR_DEMO_CLOCK is for the demo only, never in production")
            if not self.database_url.startswith("postgresql"):
                raise ValueError("生产环境须使用 PostgreSQL (production needs a postgresql:// FIVESTAR_DATABASE_URL)")
        if self.mail_use_tls and self.mail_use_ssl:
            raise ValueError("FIVESTAR_MAIL_USE_TLS and FIVESTAR_MAIL_USE_SSL exclude each other")
        return self

    # Derived values -----------------------------------------------------------------------------

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'fivestar.sqlite3'}"

    @cached_property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @cached_property
    def broker_folder(self) -> Path:
        """Folder of the file-system broker used when no broker URL is configured."""
        folder = self.resolved_data_dir / "broker"
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return folder

    @cached_property
    def resolved_secret_key(self) -> str:
        """The configured key, or (outside production) one kept in the data folder across restarts."""
        if self.secret_key:
            return self.secret_key
        key_file = self.resolved_data_dir / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(48), encoding="utf-8")
            key_file.chmod(0o600)
        return key_file.read_text(encoding="utf-8").strip()

    @property
    def is_production(self) -> bool:
        return self.env == "production"


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings, turning validation errors into one readable `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["配置错误 (configuration error):"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            name = f"FIVESTAR_{where.upper()}" if where else "FIVESTAR_*"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"  {name}: {message}")
        raise ConfigError("\n".join(lines)) from None
