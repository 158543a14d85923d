"""The `fivestar demo` / `fivestar serve` commands and the runner's small helpers (no processes started)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from fivestar.cli import main
from fivestar.demo.runner import Demo, _connect_host, _width, child_commands, port_problem
from fivestar.demo.seed import DEMO_PASSWORD, DISTRICTS, USERNAMES, demo_logins


def test_commands_are_registered() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output and "serve" in result.output
    demo_help = CliRunner().invoke(main, ["demo", "--help"])
    assert demo_help.exit_code == 0
    for option in ("--port", "--data", "--host"):
        assert option in demo_help.output


def test_port_problem_names_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = port_problem("127.0.0.1", port)
    assert problem is not None and str(port) in problem and "already in use" in problem
    assert port_problem("127.0.0.1", port) is None  # free again once the listener is gone


def test_children_are_the_real_processes(tmp_path: Path) -> None:
    demo = Demo(data_dir=tmp_path, host="0.0.0.0", port=5123)  # noqa: S104 - not bound here
    commands = dict(child_commands(demo))
    assert commands["web"][-4:] == ["--host", "0.0.0.0", "--port", "5123"]  # noqa: S104
    assert commands["worker"][1:6] == ["-m", "celery", "-A", "workers", "worker"]
    assert "default,reports" in commands["worker"]
    assert commands["beat"][1:6] == ["-m", "celery", "-A", "workers", "beat"]
    assert str(tmp_path / "celerybeat-schedule") in commands["beat"]
    assert demo.address == "http://127.0.0.1:5123"
    assert _connect_host("::") == "[::1]"


def test_logins_cover_every_role_of_every_district() -> None:
    logins = demo_logins()
    assert len(logins) == len(DISTRICTS) * len(USERNAMES)
    assert {(login.slug, login.role) for login in logins} == {(d.slug, role) for d in DISTRICTS for role in USERNAMES}
    assert all(login.password == DEMO_PASSWORD for login in logins)
    assert _width("支部书记") == 8 and _width("admin") == 5


def test_wsgi_module_exposes_the_app(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    env["FIVESTAR_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "from fivestar.wsgi import app; print(app.name, 'core.healthz' in app.view_functions)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["fivestar", "True"]
