"""The repository layout that every tool relies on (CONTRIBUTING.md "Layout")."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_platform_is_a_source_root_not_a_package() -> None:
    # A package named `platform` would shadow the standard library (uuid, SQLAlchemy and Celery crash).
    assert not (REPO / "platform" / "__init__.py").exists()
    assert (REPO / "platform" / "fivestar" / "__init__.py").is_file()


def test_stdlib_platform_is_not_shadowed_from_the_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import platform, uuid; print(platform.python_version())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == platform_version()


def platform_version() -> str:
    import platform

    return platform.python_version()


def test_top_level_folders_exist() -> None:
    for name in ("platform", "workers", "tenants", "templates", "tests", "ops", "bench"):
        assert (REPO / name).is_dir(), name
    for name in ("pyproject.toml", "README.md"):
        assert (REPO / name).is_file(), name


def test_templates_found_from_checkout() -> None:
    from fivestar.paths import templates_dir

    assert templates_dir() == REPO / "templates"


@pytest.mark.slow
def test_wheel_carries_templates_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("fivestar-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "fivestar/_templates/base.html" in names
    assert "fivestar/_tenants/notice-illustrative.toml" in names
    assert any(name.startswith("fivestar/documents/fonts/") and name.endswith(".ttf") for name in names)
    assert "workers/__init__.py" in names
    assert any(name.startswith("fivestar/static/css/") for name in names)
    assert any(name.startswith("fivestar/migrations/versions/0001") for name in names)
    assert not any(name.startswith("platform/") for name in names)
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    # Outside the checkout the bundled copy is used.
    result = subprocess.run(
        [sys.executable, "-c", "from fivestar.paths import templates_dir; print(templates_dir())"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == str(unpacked / "fivestar" / "_templates")
