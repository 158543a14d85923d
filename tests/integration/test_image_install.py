"""What the container image runs, without a container: the project's wheel installed into an empty
environment, away from the source tree, started through ops/entrypoint.sh.

No Docker engine runs where the suite runs (CI included), so `docker build -f ops/Dockerfile .` is
not exercised here. What this test does is everything the Dockerfile's second stage relies on
besides Docker itself:

- the wheel (`pip wheel --no-deps`, as the first stage builds it) carries every file the running
  processes need: migrations, templates, static files, fonts, the `workers` package;
- installed with `--no-deps` into a virtual environment of its own, it runs from there and not from
  the checkout: the dependencies are the suite's own, reached through a `.pth` line (the stand-in
  for the image's `/wheels/deps`), which adds their folder but does not load the checkout's
  editable install;
- the entry point's `migrate` migrates an empty PostgreSQL database, `fivestar tenant create` takes a
  rule set from the image's /app/tenants, `web` serves the district's login page and its static
  files through gunicorn with ops/gunicorn.conf.py, `worker default` becomes ready on Redis, and
  both stop cleanly on SIGTERM — the entry point exec's each process, so the signal reaches it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import inspect

from fivestar.db import make_engine
from fivestar.demo.mailcatcher import free_port
from tests.support import application_role, service_unavailable
from tests.worker_support import REDIS_URL, delete_keys, redis_reachable

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

_WHERE = """
import json, fivestar, workers
from fivestar.paths import templates_dir
print(json.dumps({"fivestar": fivestar.__file__, "workers": workers.__file__, "templates": str(templates_dir())}))
"""


def _install(tmp_path: Path) -> Path:
    """The wheel in a fresh virtual environment; returns the environment's folder."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("fivestar-*.whl")
    venv = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip())
    # The dependencies: this interpreter's site-packages, as plain path entries (a .pth line adds a
    # folder to sys.path; the .pth files inside it, the checkout's editable install among them, are
    # not run).
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "zz_image_dependencies.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    # gunicorn and celery as the image has them: commands of the same environment.
    for command in ("gunicorn", "celery"):
        script = venv / "bin" / command
        script.write_text(f'#!/bin/sh\nexec "{venv}/bin/python" -m {command} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    entrypoint = venv / "bin" / "fivestar-entrypoint"
    shutil.copy(REPO / "ops" / "entrypoint.sh", entrypoint)
    entrypoint.chmod(0o755)
    return venv


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _wait_for(condition: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}\n{logs()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("a process did not stop within 30 s of SIGTERM")


@pytest.mark.slow
def test_the_installed_wheel_migrates_serves_and_works_through_the_entry_point(
    tmp_path: Path, fresh_database: Callable[[str, bool], str]
) -> None:
    if not redis_reachable():
        service_unavailable("Redis")
    database_url = fresh_database("postgresql", False)  # empty: the entry point migrates it
    # Production's two roles: the owner migrates (and grants), the processes use a role owning nothing.
    roles = ExitStack()
    _role, app_url = roles.enter_context(application_role(database_url))
    try:
        _run_installed(tmp_path, database_url, app_url)
    finally:
        roles.close()


def _run_installed(tmp_path: Path, database_url: str, app_url: str) -> None:
    venv = _install(tmp_path)
    app_dir = tmp_path / "app"  # the image's /app: no source tree, the gunicorn configuration and the rule sets
    (app_dir / "tenants").mkdir(parents=True)
    shutil.copy(REPO / "ops" / "gunicorn.conf.py", app_dir / "gunicorn.conf.py")
    for rules in (REPO / "tenants").glob("*.toml"):
        shutil.copy(rules, app_dir / "tenants" / rules.name)
    port = free_port()
    prefix = f"fivestar-image-test-{uuid.uuid4().hex[:10]}:"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("FIVESTAR_", "GUNICORN_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        PYTHONUNBUFFERED="1",
        FIVESTAR_ENV="production",
        FIVESTAR_SECRET_KEY=secrets.token_urlsafe(40),
        FIVESTAR_DATABASE_URL=app_url,
        FIVESTAR_MIGRATION_DATABASE_URL=database_url,
        FIVESTAR_BROKER_URL=REDIS_URL,
        FIVESTAR_REDIS_KEY_PREFIX=prefix,
        FIVESTAR_DATA_DIR=str(tmp_path / "data"),
        FIVESTAR_BASE_URL=f"http://127.0.0.1:{port}",
        GUNICORN_CONFIG=str(app_dir / "gunicorn.conf.py"),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )

    def run(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["fivestar-entrypoint", *command], cwd=app_dir, env=env, capture_output=True,
                              text=True, timeout=180, check=False)

    # Any other command runs as given, inside the installed environment: the code is the wheel's.
    where = run("python", "-c", _WHERE)
    assert where.returncode == 0, where.stderr
    found = json.loads(where.stdout.strip().splitlines()[-1])
    installed = str(venv)
    assert all(path.startswith(installed) for path in found.values()), found
    assert found["templates"].endswith("fivestar/_templates")

    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    engine = make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "tenants", "member_rounds", "report_jobs", "due_items"} <= tables
    # A district, as ops/README.md creates the first one (`docker compose exec web fivestar tenant create …`).
    created = run("fivestar", "tenant", "create", "dongcheng", "--name", "东城区直机关工委",
                  "--rules", "tenants/notice-illustrative.toml")
    assert created.returncode == 0, created.stderr

    logs = tmp_path / "logs"
    logs.mkdir()
    ready = tmp_path / "worker.ready"
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command, extra in (
            ("web", ["web"], {}),
            ("worker", ["worker", "default", "--pool", "solo", "--without-gossip", "--without-mingle"],
             {"FIVESTAR_WORKER_READY_FILE": str(ready)}),
        ):
            with (logs / f"{name}.log").open("wb") as out:
                processes[name] = subprocess.Popen(["fivestar-entrypoint", *command], cwd=app_dir,
                                                   env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT)

        def log_text() -> str:
            return "\n".join(f"--- {path.name}\n{path.read_text('utf-8', 'replace')}" for path in logs.iterdir())

        base = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _get(f"{base}/healthz")[0] == 200, "gunicorn's /healthz", log_text)
        status, page = _get(f"{base}/t/dongcheng/login")
        assert status == 200, page[:500]
        html = page.decode("utf-8")
        assert "东城区直机关工委" in html
        stylesheet = re.search(r'href="(/static/[^"]+\.css)[^"]*"', html)
        assert stylesheet is not None, html[:2000]
        assert _get(base + stylesheet.group(1))[0] == 200
        _wait_for(ready.exists, "the worker to be ready", log_text)

        # The entry point exec's: the process started is gunicorn or celery itself, not a shell.
        for name, process in processes.items():
            command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
            assert not command_line[0].endswith(b"sh"), (name, command_line)
        codes = {name: _stop(process) for name, process in processes.items()}
        assert codes == {"web": 0, "worker": 0}, log_text()
        assert "Traceback" not in log_text()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        delete_keys(prefix)
