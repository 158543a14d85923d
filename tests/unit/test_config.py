"""Settings come from FIVESTAR_ variables and are validated with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fivestar.config import ConfigError, load_settings


def test_defaults_are_the_embedded_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FIVESTAR_DATABASE_URL", "FIVESTAR_BROKER_URL", "FIVESTAR_SECRET_KEY", "FIVESTAR_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FIVESTAR_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'fivestar.sqlite3'}"
    assert settings.resolved_broker_url == "filesystem://"
    assert len(settings.resolved_secret_key) >= 32
    # The generated key survives a restart, so logins do too.
    assert load_settings().resolved_secret_key == settings.resolved_secret_key


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVESTAR_DATABASE_URL", "postgresql://u@db/fivestar")
    monkeypatch.setenv("FIVESTAR_BROKER_URL", "redis://cache:6379/0")
    monkeypatch.setenv("FIVESTAR_MAIL_SERVER", "smtp.example.gov.cn")
    monkeypatch.setenv("FIVESTAR_MAIL_PORT", "587")
    settings = load_settings()
    assert settings.database_url == "postgresql://u@db/fivestar"
    assert settings.broker_url == "redis://cache:6379/0"
    assert (settings.mail_server, settings.mail_port) == ("smtp.example.gov.cn", 587)


def test_production_without_secret_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIVESTAR_ENV", "production")
    monkeypatch.setenv("FIVESTAR_DATABASE_URL", "postgresql://u@db/fivestar")
    monkeypatch.delenv("FIVESTAR_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "FIVESTAR_SECRET_KEY" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("FIVESTAR_DATABASE_URL", "mysql://x", "FIVESTAR_DATABASE_URL"),
        ("FIVESTAR_MAIL_PORT", "seventy", "FIVESTAR_MAIL_PORT"),
        ("FIVESTAR_DEFAULT_TIMEZONE", "Mars/Olympus", "FIVESTAR_DEFAULT_TIMEZONE"),
        ("FIVESTAR_ENV", "staging", "FIVESTAR_ENV"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, mentions: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert mentions in str(caught.value)


def test_cli_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fivestar", "db", "upgrade"],
        env={"FIVESTAR_ENV": "production", "FIVESTAR_DATABASE_URL": "postgresql://u@db/x", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "FIVESTAR_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_copy_with_other_webhook_hosts_sees_its_own_list(tmp_path: Path) -> None:
    # Tests copy the settings with another host list (`model_copy(update=...)`); the copy must
    # answer with its own list even after the original has been asked (it once kept the original's).
    settings = load_settings(env="test", data_dir=tmp_path, webhook_hosts="qyapi.weixin.qq.com")
    assert settings.webhook_host_set == frozenset({"qyapi.weixin.qq.com"})
    copied = settings.model_copy(update={"webhook_hosts": "127.0.0.1,oapi.dingtalk.com"})
    assert copied.webhook_host_set == frozenset({"127.0.0.1", "oapi.dingtalk.com"})
    assert settings.webhook_host_set == frozenset({"qyapi.weixin.qq.com"})


def test_a_copy_computes_its_derived_values_again(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    settings = load_settings(env="test", data_dir=first, secret_key="")
    assert settings.resolved_data_dir == first and settings.resolved_database_url.endswith("first/fivestar.sqlite3")
    key = settings.resolved_secret_key
    copied = settings.model_copy(update={"data_dir": second, "secret_key": "a-copy-has-its-own-secret-key"})
    assert copied.resolved_data_dir == second
    assert copied.resolved_database_url == f"sqlite:///{second / 'fivestar.sqlite3'}"
    assert copied.resolved_secret_key == "a-copy-has-its-own-secret-key"
    assert settings.resolved_secret_key == key and settings.resolved_data_dir == first
