"""Fixtures for tests of `fivestar …` commands.

Commands open their own connections and commit, so they run against a migrated database of their
own (one per test module and backend) instead of the rolled-back test session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine


@pytest.fixture(scope="module")
def cli_url(backend: str, fresh_database: Callable[[str], str]) -> str:
    return fresh_database(backend)


@pytest.fixture(scope="module")
def cli_engine(cli_url: str) -> Iterator[Engine]:
    from fivestar.db import make_engine

    engine = make_engine(cli_url)
    yield engine
    engine.dispose()


@pytest.fixture
def run(cli_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    """Invoke `fivestar ARGS…` with the settings pointing at this module's database."""
    from fivestar.cli import main

    monkeypatch.setenv("FIVESTAR_DATABASE_URL", cli_url)
    monkeypatch.setenv("FIVESTAR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIVESTAR_ENV", "test")
    monkeypatch.setenv("FIVESTAR_BASE_URL", "https://fivestar.example.gov.cn")
    monkeypatch.setattr("fivestar.tenants.cli.getpass.getuser", lambda: "tester")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke
