"""`fivestar demo` end to end: one command starts web, worker and beat; Ctrl-C stops them all.

The demo runs as a subprocess, as a user would start it, on the embedded defaults (SQLite and the
file-system broker in a temporary data folder).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fivestar.demo.seed import DEMO_PASSWORD, DISTRICTS, OPERATOR_USERNAME, ROLE_TITLES, USERNAMES

pytestmark = pytest.mark.timeout(120)

BANNER_TIMEOUT = 75.0
STOP_TIMEOUT = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone: it has exited, only its parent hasn't reaped it)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class RunningDemo:
    process: subprocess.Popen[str]
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        match = re.search(r"web pid (\d+)\s+worker pid (\d+)\s+beat pid (\d+)", self.output)
        assert match, self.output
        return {"web": int(match[1]), "worker": int(match[2]), "beat": int(match[3])}

    def address(self) -> str:
        match = re.search(r"address:\s+(http://\S+?)/?$", self.output, re.MULTILINE)
        assert match, self.output
        return match[1]

    def stop(self, signum: int = signal.SIGINT) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=STOP_TIMEOUT)


def _demo_command() -> list[str]:
    script = Path(sys.executable).parent / "fivestar"
    return [str(script)] if script.exists() else [sys.executable, "-m", "fivestar"]


def _clean_env() -> dict[str, str]:
    """The user's environment without any FIVESTAR_* setting: the demo runs on its embedded defaults."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(data_dir: Path, port: int, cwd: Path) -> RunningDemo:
    process = subprocess.Popen(
        [*_demo_command(), "demo", "--port", str(port), "--data", str(data_dir)],
        cwd=cwd,
        env=_clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
    )
    demo = RunningDemo(process, data_dir)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            demo.lines.append(line.rstrip("\n"))
            if "Ctrl-C" in line:
                demo.ready.set()
        demo.ready.set()

    demo.reader = threading.Thread(target=read, daemon=True)
    demo.reader.start()
    return demo


@pytest.fixture
def run_demo(tmp_path: Path) -> Iterator[Any]:
    """Start demos; whatever happens, nothing they started outlives the test."""
    started: list[RunningDemo] = []

    def start(data_dir: Path, port: int | None = None) -> RunningDemo:
        demo = _start(data_dir, port or _free_port(), tmp_path)
        started.append(demo)
        if not demo.ready.wait(BANNER_TIMEOUT) or demo.process.poll() is not None:
            pytest.fail(f"demo did not start:\n{demo.output}\n{_logs(data_dir)}")
        return demo

    yield start
    for demo in started:
        pids: list[int] = []
        with contextlib.suppress(AssertionError):
            pids = list(demo.pids().values())
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait(timeout=10)
        if demo.reader is not None:
            demo.reader.join(timeout=10)
        if demo.process.stdout is not None:
            demo.process.stdout.close()
        for pid in pids:
            if _alive(pid) and ("celery" in _cmdline(pid) or "fivestar" in _cmdline(pid)):
                os.kill(pid, signal.SIGKILL)


def _logs(data_dir: Path) -> str:
    parts = []
    for log in sorted((data_dir / "logs").glob("*.log")):
        parts.append(f"--- {log.name} ---\n{log.read_text(encoding='utf-8', errors='replace')[-2000:]}")
    return "\n".join(parts)


def _counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "fivestar.sqlite3") as db:
        return {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
            for table in ("tenants", "organisations", "members", "accounts", "role_grants", "operators", "audit_events")
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', page
    )
    assert match, "the page carries a CSRF token"
    return match[1]


class Browser:
    """A cookie-keeping HTTP client on the standard library that does not follow redirects."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect()
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.address + path, timeout=10) as response:
            return str(response.read().decode("utf-8"))

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        """POST a form (with the CSRF token of the page at `path`); (status, Location)."""
        url = self.address + path
        form = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(url, data=form, headers={"Referer": url}, method="POST")  # noqa: S310
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, ""
        except urllib.error.HTTPError as exc:  # a 302 arrives here because redirects are not followed
            return exc.code, exc.headers.get("Location", "")

    def login(self, slug: str, username: str, password: str) -> tuple[int, str]:
        """Log in through the real form: GET it for the CSRF token and cookie, POST it back."""
        path = f"/t/{slug}/login"
        token = _csrf_token(self.get(path))
        return self.post(path, {"csrf_token": token, "username": username, "password": password})


def test_demo_starts_everything_and_ctrl_c_stops_it(run_demo: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    demo = run_demo(data_dir)
    address = demo.address()
    with urllib.request.urlopen(f"{address}/healthz", timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200

    # Every role of both districts, and the operator, is printed with the demo password.
    for district in DISTRICTS:
        for role, username in USERNAMES.items():
            pattern = rf"^\s*{district.slug}\s+{ROLE_TITLES[role][0]}\s.*\s{username}\s+{DEMO_PASSWORD}\s"
            row = re.search(pattern, demo.output, re.MULTILINE)
            assert row, f"{district.slug} {role} missing from:\n{demo.output}"
    assert re.search(rf"\s{OPERATOR_USERNAME}\s+{DEMO_PASSWORD}\s+{re.escape(address)}/ops/login", demo.output)

    # The real login form, CSRF on: the right password redirects into the district, a wrong one does not.
    status, location = Browser(address).login("demo-east", "secretary", DEMO_PASSWORD)
    assert status == 302 and "/login" not in location, (status, location)
    status, _ = Browser(address).login("demo-east", "secretary", "wrong-password-123")
    assert status == 200

    pids = demo.pids()
    assert all(_alive(pid) for pid in pids.values())
    assert "celery" in _cmdline(pids["worker"]) and " worker" in _cmdline(pids["worker"])
    assert "celery" in _cmdline(pids["beat"]) and " beat" in _cmdline(pids["beat"])
    assert int((data_dir / "run" / "worker.ready").read_text()) == pids["worker"]

    # The web app enqueues the outbox delivery after the administrator asks for a reset link; the
    # demo's worker consumes it and the e-mail lands in the demo's mail folder.
    admin = Browser(address)
    assert admin.login("demo-west", "admin", DEMO_PASSWORD)[0] == 302
    account_id = _account_id(data_dir, "demo-west", "inspector")
    token = _csrf_token(admin.get(f"/t/demo-west/accounts/{account_id}"))
    status, _ = admin.post(
        f"/t/demo-west/accounts/{account_id}/reset", {"csrf_token": token, "method": "link", "reason": "demo test"}
    )
    assert status == 302
    _wait_for_mail(data_dir, 1)

    # A task sent by name from another process reaches the same worker through the same folders.
    _send_outbox_mail(data_dir, tmp_path)
    _wait_for_mail(data_dir, 2)

    assert demo.stop(signal.SIGINT) == 0
    assert not [name for name, pid in pids.items() if _alive(pid)]
    assert "stopped" in demo.output
    assert (data_dir / "fivestar.sqlite3").is_file()  # nothing of the data is removed


def _account_id(data_dir: Path, slug: str, username: str) -> int:
    with sqlite3.connect(data_dir / "fivestar.sqlite3") as db:
        row = db.execute(
            "SELECT a.id FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = ? AND a.username = ?",
            (slug, username),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for_mail(data_dir: Path, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(list((data_dir / "mail").glob("*.eml"))) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} e-mails in {data_dir / 'mail'}\n{_logs(data_dir)}")
        time.sleep(0.2)


def _send_outbox_mail(data_dir: Path, cwd: Path) -> None:
    """Queue one e-mail in the demo's database and send the delivery task by name, from a separate process."""
    script = """
import sys
from fivestar.broker import enqueue
from fivestar.config import load_settings
from fivestar.db import make_engine, make_sessionmaker
import fivestar.models
from fivestar.outbox.models import Channel, OutboxMessage
from fivestar.tenancy import tenant_context
settings = load_settings()
maker = make_sessionmaker(make_engine(settings.resolved_database_url))
with maker() as session, tenant_context(1):
    session.add(OutboxMessage(tenant_id=1, channel=Channel.EMAIL, recipient="demo@example.org",
                              subject="演示邮件", body_text="hello", dedupe_key="test-demo-mail"))
    session.commit()
enqueue(settings, "fivestar.deliver_outbox")
"""
    env = _clean_env() | {"FIVESTAR_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_second_run_adds_nothing_and_a_dead_child_stops_the_demo(
    run_demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fivestar.demo.runner import prepare

    data_dir = tmp_path / "data"
    for name in [key for key in os.environ if key.startswith("FIVESTAR_")]:
        monkeypatch.delenv(name)
    # prepare() sets these for its children; monkeypatch puts the test process back afterwards.
    monkeypatch.setenv("FIVESTAR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FIVESTAR_BASE_URL", "http://127.0.0.1:1")
    prepare(data_dir, "127.0.0.1", _free_port())  # a first run's migrate + seed, in-process
    before = _counts(data_dir)
    assert before["members"] == 600 and before["tenants"] == 2

    demo = run_demo(data_dir)
    assert "already there demo-east, demo-west, operator:operator" in demo.output
    assert _counts(data_dir) == before

    # A child that dies takes the demo down with a message and a non-zero exit, and nothing is left.
    pids = demo.pids()
    os.kill(pids["beat"], signal.SIGKILL)
    code = demo.process.wait(timeout=STOP_TIMEOUT + 5)
    assert code != 0
    assert "beat" in demo.output and "unexpectedly" in demo.output
    assert not [name for name, pid in pids.items() if _alive(pid)]


def test_a_taken_port_is_refused_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*_demo_command(), "demo", "--port", str(port), "--data", str(tmp_path / "data")],
            cwd=tmp_path,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "already in use" in result.stderr
    assert not (tmp_path / "data" / "fivestar.sqlite3").exists()  # refused before touching anything
