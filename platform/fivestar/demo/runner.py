"""`fivestar demo`: the whole platform from one command, with nothing else to install.

The supervisor migrates and seeds a SQLite database in the data folder, then starts the real
processes of a deployment as children — the web app, a Celery worker and Celery beat — on the
file-system broker in the same folder, with a local SMTP catcher for outgoing mail. It prints where
to go and how to log in, and on Ctrl-C (or SIGTERM) stops every child: terminate, wait, then kill.
Nothing of the data folder is removed, so the next run continues where this one stopped.

Children run in their own process group, so the terminal's Ctrl-C reaches only the supervisor,
which stops them in order (web first, worker last so it can finish the task in hand).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from fivestar import dbcli
from fivestar.config import ConfigError, Settings, load_settings
from fivestar.db import make_engine, make_sessionmaker
from fivestar.demo.mailcatcher import MailCatcher
from fivestar.demo.seed import DEMO_PASSWORD, OPERATOR_USERNAME, SeedReport, seed_demo

STARTUP_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
POLL_SECONDS = 0.25


class DemoError(Exception):
    """The demo cannot start; the message says why (printed without a traceback)."""


@dataclass
class Child:
    name: str
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Demo:
    """Everything one run started, so it can all be stopped."""

    data_dir: Path
    host: str
    port: int
    children: list[Child] = field(default_factory=list)
    mail: MailCatcher | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        return f"http://{_connect_host(self.host)}:{self.port}"


# --- helpers ------------------------------------------------------------------------------------


def _connect_host(host: str) -> str:
    """Where to reach a server bound to `host` (a wildcard bind is reached on loopback)."""
    if host in ("0.0.0.0", "", "*"):  # noqa: S104 - recognising a wildcard, not binding one
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def port_problem(host: str, port: int) -> str | None:
    """Why the web server could not listen on host:port, or None if it can.

    Binds with SO_REUSEADDR like the server will, so a port only in TIME_WAIT counts as free
    but one another program listens on does not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"端口 {port} 已被占用 (port {port} on {host} is already in use); 请用 --port 换一个端口"
            return f"无法监听 {host}:{port} (cannot listen on {host}:{port}): {exc.strerror or exc}"
    return None


def _resolve_data_dir(data_dir: Path | None) -> Path:
    chosen = data_dir or Path(os.environ.get("FIVESTAR_DATA_DIR") or "fivestar-data")
    path = chosen.expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback address
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


# --- the run ------------------------------------------------------------------------------------


def prepare(data_dir: Path, host: str, port: int) -> tuple[Settings, SeedReport]:
    """Point the settings at the data folder, migrate and seed. Runs in the supervisor."""
    os.environ["FIVESTAR_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("FIVESTAR_BASE_URL", f"http://{_connect_host(host)}:{port}")
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise DemoError(str(exc)) from None
    if settings.is_production:
        raise DemoError("fivestar demo 不能在生产环境运行 (FIVESTAR_ENV=production refuses demo data)")
    settings.resolved_secret_key  # noqa: B018 - create the shared key file once, before the children race for it
    settings.broker_folder  # noqa: B018 - likewise the broker folders

    dbcli.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            report = seed_demo(session)
            session.commit()
    finally:
        engine.dispose()
    return settings, report


def child_commands(demo: Demo) -> list[tuple[str, list[str]]]:
    python = sys.executable
    return [
        ("web", [python, "-m", "fivestar", "serve", "--host", demo.host, "--port", str(demo.port)]),
        (
            "worker",
            [
                python, "-m", "celery", "-A", "workers", "worker",
                "--pool", "solo", "--queues", "default,reports", "--hostname", "demo-worker@%h",
                # Gossip, mingle and heartbeats only matter between several workers; on a polled
                # file-system broker they are extra disk traffic.
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
        ),
        (
            "beat",
            [
                python, "-m", "celery", "-A", "workers", "beat",
                "--schedule", str(demo.data_dir / "celerybeat-schedule"), "--loglevel", "INFO",
            ],
        ),
    ]


def _child_env(demo: Demo, settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["FIVESTAR_DATA_DIR"] = str(demo.data_dir)
    env["FIVESTAR_DEMO_CLOCK"] = "1"  # a fast calendar: walk a whole round in one sitting
    if demo.mail is not None:
        env["FIVESTAR_MAIL_SERVER"] = demo.mail.host
        env["FIVESTAR_MAIL_PORT"] = str(demo.mail.port)
        env["FIVESTAR_MAIL_USE_TLS"] = "0"
        env["FIVESTAR_MAIL_USE_SSL"] = "0"
        env.pop("FIVESTAR_MAIL_USERNAME", None)
        env.pop("FIVESTAR_MAIL_PASSWORD", None)
    run = demo.data_dir / "run"
    env["FIVESTAR_WORKER_READY_FILE"] = str(run / "worker.ready")
    env["FIVESTAR_BEAT_READY_FILE"] = str(run / "beat.ready")
    return env


def start_children(demo: Demo, settings: Settings) -> None:
    logs = demo.data_dir / "logs"
    logs.mkdir(exist_ok=True)
    run = demo.data_dir / "run"
    run.mkdir(exist_ok=True)
    for stale in run.glob("*.ready"):
        stale.unlink()
    env = _child_env(demo, settings)
    for name, command in child_commands(demo):
        child = Child(name, command, logs / f"{name}.log")
        child.log_file = child.log_path.open("ab")
        child.log_file.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        child.log_file.flush()
        child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command,
            cwd=demo.data_dir,  # stray files (kombu's relative folders) land in the data folder
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        demo.children.append(child)


def wait_until_ready(demo: Demo, timeout: float = STARTUP_TIMEOUT) -> None:
    """Until /healthz answers 200 and worker and beat say they are running; a dead child fails."""
    deadline = time.monotonic() + timeout
    health = f"{demo.address}/healthz"
    run = demo.data_dir / "run"
    pending = {"web", "worker", "beat"}
    while pending:
        dead = [child for child in demo.children if not child.alive()]
        if dead:
            raise DemoError(_died_message(dead[0]))
        if demo.stop_requested.is_set():
            return
        if "web" in pending and _healthy(health):
            pending.discard("web")
        for name in ("worker", "beat"):
            if name in pending and (run / f"{name}.ready").exists():
                pending.discard(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(sorted(pending))
            raise DemoError(f"启动超时 (not ready after {timeout:.0f} s: {waiting}); see {demo.data_dir / 'logs'}")
        demo.stop_requested.wait(POLL_SECONDS)


def _died_message(child: Child) -> str:
    code = child.process.returncode if child.process else None
    tail = child.log_tail()
    return (
        f"进程 {child.name} 意外退出 (the {child.name} process exited unexpectedly, code {code}); "
        f"log: {child.log_path}" + (f"\n---\n{tail}" if tail else "")
    )


def stop_children(demo: Demo, timeout: float = STOP_TIMEOUT) -> None:
    """Terminate every child (web first, worker last), wait up to `timeout` in all, then kill."""
    order = sorted(demo.children, key=lambda child: ("web", "beat", "worker").index(child.name))
    for child in order:
        if child.alive():
            assert child.process is not None
            child.process.terminate()
    deadline = time.monotonic() + timeout
    for child in order:
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(timeout=5)
        if child.log_file is not None:
            child.log_file.close()
            child.log_file = None
    if demo.mail is not None:
        demo.mail.stop()


def print_banner(demo: Demo, report: SeedReport, echo: Callable[[str], Any] = click.echo) -> None:
    address = demo.address
    echo("")
    echo("五星争创 Fivestar demo — 演示环境 (DEMO ONLY: every login shares the password below)")
    echo(f"  地址 address:      {address}/")
    if demo.mail is not None:
        echo(f"  邮件 mail folder:  {demo.mail.folder}  (SMTP {demo.mail.host}:{demo.mail.port})")
    echo(f"  数据 data folder:  {demo.data_dir}  (logs in {demo.data_dir / 'logs'})")
    created = ", ".join(report.created) or "-"
    existing = ", ".join(report.existing) or "-"
    echo(f"  演示数据 demo data: created {created}; already there {existing}")
    echo("  进程 processes:    " + "  ".join(f"{child.name} pid {child.pid}" for child in demo.children))
    echo("")
    rows = [("district", "角色", "role", "username", "password", "login")]
    for login in report.logins:
        url = f"{address}/t/{login.slug}/login"
        rows.append((login.slug, login.role_zh, login.role_en, login.username, login.password, url))
    operator_url = f"{address}/ops/login"
    rows.append(("(platform)", "平台运营方", "hosting operator", OPERATOR_USERNAME, DEMO_PASSWORD, operator_url))
    widths = [max(_width(row[index]) for row in rows) for index in range(len(rows[0]))]
    for row in rows:
        echo("  " + "  ".join(_pad(cell, width) for cell, width in zip(row, widths, strict=True)).rstrip())
    echo("")
    echo(f"  演示密码 demo password: {DEMO_PASSWORD}   (演示专用，请勿用于真实数据 / demo only)")
    echo("  按 Ctrl-C 停止 (press Ctrl-C to stop)")
    echo("")


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(char) > 0x2E80 else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def supervise(demo: Demo) -> int:
    """Watch the children until a stop is requested (0) or one of them dies (1)."""
    while not demo.stop_requested.is_set():
        dead = [child for child in demo.children if not child.alive()]
        if dead:
            click.echo(_died_message(dead[0]), err=True)
            return 1
        demo.stop_requested.wait(POLL_SECONDS * 2)
    return 0


def run_demo(*, port: int, host: str, data_dir: Path | None, mail: bool = True) -> int:
    """The `fivestar demo` command. Returns the process exit code."""
    data = _resolve_data_dir(data_dir)
    problem = port_problem(host, port)
    if problem:
        click.echo(problem, err=True)
        return 1
    demo = Demo(data_dir=data, host=host, port=port)

    def _request_stop(signum: int, _frame: FrameType | None) -> None:
        if demo.stop_requested.is_set():
            return
        demo.stop_requested.set()
        click.echo(f"\n收到 {signal.Signals(signum).name}，正在停止… (stopping)", err=True)

    click.echo(f"准备数据 (preparing {data}) …")
    try:
        settings, report = prepare(data, host, port)
    except DemoError as exc:
        click.echo(str(exc), err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("\n已中断 (interrupted before start)", err=True)
        return 130
    previous = _install_handlers(_request_stop)
    code = 0
    try:
        if mail and "FIVESTAR_MAIL_SERVER" not in os.environ:
            demo.mail = MailCatcher(data / "mail").start()
        start_children(demo, settings)
        wait_until_ready(demo)
        if not demo.stop_requested.is_set():
            print_banner(demo, report)
            code = supervise(demo)
    except DemoError as exc:
        click.echo(str(exc), err=True)
        code = 1
    finally:
        stop_children(demo)
        _restore_handlers(previous)
    click.echo("已停止 (stopped); 数据保留在 (data kept in) " + str(data))
    return code


_SIGNALS: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM)


def _install_handlers(handler: Callable[[int, FrameType | None], None]) -> dict[signal.Signals, Any]:
    return {signum: signal.signal(signum, handler) for signum in _SIGNALS}


def _restore_handlers(previous: dict[signal.Signals, Any]) -> None:
    for signum, old in previous.items():
        signal.signal(signum, old)
