"""Settings, read once from `FIVESTAR_`-prefixed environment variables.

Every setting is validated when the process starts, so a typo in a URL or a production instance
without a secret key stops the process with one clear message instead of failing on the first
request. The embedded default (no variables at all) is a SQLite file and a file-system broker in
the data folder, which is what `fivestar demo` runs on.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fivestar.timekeeping import DEFAULT_TIMEZONE, clock
from fivestar.timekeeping.holidays import load_arrangements

Environment = Literal["development", "production", "test"]


class ConfigError(Exception):
    """The environment does not describe a runnable instance; the message says what to fix."""


class Settings(BaseSettings):
    """All of Fivestar's configuration. Field `x` is read from `FIVESTAR_X`."""

    model_config = SettingsConfigDict(env_prefix="FIVESTAR_", extra="ignore", frozen=True)

    env: Environment = "development"
    data_dir: Path = Field(default_factory=lambda: Path("fivestar-data"))
    database_url: str = ""
    # PostgreSQL in production: the owner of the tables, used only by `fivestar db upgrade`
    # (fivestar.dbroles). FIVESTAR_DATABASE_URL is then the application role, which owns nothing
    # and cannot rewrite the audit trail. Empty: migrations use FIVESTAR_DATABASE_URL.
    migration_database_url: str = ""
    # The role `fivestar db upgrade` grants the application's privileges to; empty: the user of
    # FIVESTAR_DATABASE_URL when FIVESTAR_MIGRATION_DATABASE_URL names another one.
    database_app_role: str = Field(default="", max_length=63, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$|^$")
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
    # Days a generated report's file is kept for download before the sweep deletes it
    # (fivestar.reports.jobs): reports hold personal data, so not forever.
    report_keep_days: int = Field(default=7, ge=1, le=365)
    # A report being generated writes a heartbeat every 2,000 rows (seconds apart). One whose
    # heartbeat is older than this lost its worker: the tick's sweep gives it to another worker (or
    # fails it after its attempts). The fault tests, which kill workers, set a few seconds.
    report_stuck_seconds: int = Field(default=300, ge=5, le=3600)
    default_locale: Literal["zh", "en"] = "zh"
    default_timezone: str = DEFAULT_TIMEZONE
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # The production topology (ops/README.md). Beat's platform-wide tick: due times are rows, so a
    # shorter tick only makes them happen sooner after their instant (tests use 1–2 s).
    tick_seconds: float = Field(default=60.0, ge=1, le=3600)
    # How long a claimed row (an outbox message being sent, a due item being performed) may stay
    # claimed before a sweep decides its worker died and gives it back (counting an attempt).
    # Every effect is idempotent, so a shorter value only risks a harmless second run.
    claim_timeout_seconds: int = Field(default=600, ge=2, le=86400)
    # Redis only: how long an unacknowledged message waits before the broker redelivers it
    # (a worker that died while holding it). Long waits are rows, never countdowns (CONTRIBUTING.md "Workers").
    broker_visibility_timeout: int = Field(default=3600, ge=5, le=86400)
    # Prepended to every Redis key the broker and RedBeat write, so several instances (or test
    # runs) can share one Redis without taking each other's messages or beat lock.
    redis_key_prefix: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    # Seconds RedBeat's lock outlives its holder: a standby beat takes over at most this long
    # after the beat holding it died (the holder renews it on every loop).
    beat_lock_timeout: int = Field(default=150, ge=10, le=3600)
    # Reverse proxies in front of gunicorn that append to X-Forwarded-For (and set -Proto): the web
    # app then sees the client's address (login throttling, ballots) instead of the proxy's.
    proxy_hops: int = Field(default=0, ge=0, le=5)
    # The demo's fast calendar: a clock offset kept in the database that anyone logged in can move
    # forward (never in production).
    demo_clock: bool = False
    # Hosts group-robot webhooks may be sent to (comma-separated): the SSRF guard of
    # fivestar.notify.url_policy. Plain http is allowed only to 127.0.0.1, and only when listed here.
    webhook_hosts: str = "qyapi.weixin.qq.com,oapi.dingtalk.com"
    # Hosts reports may be sent to upward (fivestar.exports: HTTPS endpoints and SFTP servers of
    # superior committees), comma-separated; empty allows none (e-mail needs no entry). The same
    # SSRF guard as webhook_hosts: plain http only to a listed 127.0.0.1.
    export_hosts: str = ""
    # A TOML file of the State Council's holiday arrangements for years `chinese_calendar` does not
    # know yet (fivestar.timekeeping.holidays). Checked when the process starts; empty: none.
    holidays_file: Path | None = None

    @field_validator("database_url", "migration_database_url")
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

    @field_validator("holidays_file", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("holidays_file")
    @classmethod
    def _readable_holidays(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_arrangements(value)  # HolidayFileError (a ValueError) says what is wrong
        return value

    def install_holidays(self) -> None:
        """Make the file's arrangements the clock's (every process calls this once it has settings)."""
        clock.set_arrangements(load_arrangements(self.holidays_file) if self.holidays_file is not None else {})

    @field_validator("webhook_hosts", "export_hosts")
    @classmethod
    def _plain_host_names(cls, value: str) -> str:
        hosts = [part.strip().lower() for part in value.split(",") if part.strip()]
        for host in hosts:
            plain = all(char.isascii() and (char.isalnum() or char in ".-") for char in host)
            if not plain or host.startswith((".", "-")):
                raise ValueError(f"{host!r} is not a plain host name (no scheme, port, path or wildcard)")
        return ",".join(hosts)

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
    # Values worth computing once are `cached_property`s: the cache lives in the instance's
    # `__dict__`, which pydantic's `model_copy` copies as it is, so `model_copy` below drops it.

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` applied whose derived values are computed again from its own fields
        (a copy with another data folder or host list must not answer with the original's)."""
        copied = super().model_copy(update=update, deep=deep)
        for name in _DERIVED:
            copied.__dict__.pop(name, None)
        return copied

    @cached_property
    def resolved_data_dir(self) -> Path:
        path = self.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'fivestar.sqlite3'}"

    @property
    def resolved_migration_url(self) -> str:
        """Where `fivestar db upgrade` connects: the owner's URL, else the application's."""
        return self.migration_database_url or self.resolved_database_url

    @property
    def resolved_app_role(self) -> str | None:
        """The role the migrations grant the application's privileges to (None: no grants)."""
        if self.database_app_role:
            return self.database_app_role
        if not self.migration_database_url or not self.database_url.startswith("postgresql"):
            return None
        from sqlalchemy.engine import make_url

        app_user = make_url(self.database_url).username
        owner = make_url(self.migration_database_url).username
        return app_user if app_user and app_user != owner else None

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
    def webhook_host_set(self) -> frozenset[str]:
        """The lower-case host names of `webhook_hosts` (cheap: computed on every use)."""
        return frozenset(host for host in self.webhook_hosts.split(",") if host)

    @property
    def export_host_set(self) -> frozenset[str]:
        """The lower-case host names of `export_hosts` (cheap: computed on every use)."""
        return frozenset(host for host in self.export_hosts.split(",") if host)

    @property
    def is_production(self) -> bool:
        return self.env == "production"


# The cached derived values, forgotten by a copy (`Settings.model_copy`).
_DERIVED = frozenset(name for name, value in vars(Settings).items() if isinstance(value, cached_property))


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
