"""Real worker and beat processes on PostgreSQL + Redis, for tests that start, watch and kill them.

`open_cluster(...)` gives a `Cluster`: a fresh database, a key prefix of its own on the shared Redis
(every key kombu and RedBeat write starts with it, and all of them are deleted at the end), an SMTP
server on loopback, and `start_worker` / `start_beat`, which run `celery -A workers …` exactly as
ops/Procfile does, each in a process group of its own so that a test can SIGKILL one pool process
(`Process.kill_pool_process`) or the whole worker at once (`Process.kill_all`), as the kernel's OOM
killer or a lost container would. Nothing is eager: tasks go through Redis to another process.

The SMTP server (`CatchingSmtp`) keeps each message as an `.eml` file, like the demo's MailCatcher,
and can hold one message's `250` back after storing it (`hold`, `release`): a worker killed in that
window has handed the message over without learning it, which is the one way SMTP can deliver twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from fivestar.config import Settings, load_settings
from fivestar.db import make_engine, make_sessionmaker
from fivestar.demo.mailcatcher import free_port
from tests.support import service_unavailable

REDIS_URL = os.environ.get("FIVESTAR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
READY_TIMEOUT = 45.0
#: kombu's Redis transport: the hash of messages delivered but not yet acknowledged.
UNACKED_KEY = "unacked"


# --- Redis -------------------------------------------------------------------------------------------------


def redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def redis_reachable() -> bool:
    import redis

    client = redis_client()
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def delete_keys(prefix: str) -> None:
    client = redis_client()
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --- processes -----------------------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (a prefork worker's pool processes), from /proc."""
    found: set[int] = set()
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(part) for part in children.read_text().split())
        except (OSError, ValueError):
            continue  # the thread ended while we looked
    return sorted(found)


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@dataclass
class Process:
    """One `celery` process (a worker's main process, or beat), its log and its ready file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready_file: Path
    node: str = ""  # a worker's node name (for `celery inspect`)
    concurrency: int = 0  # a worker's pool processes (0 for beat)

    @property
    def pid(self) -> int:
        return int(self.popen.pid)

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def ready(self) -> bool:
        return self.ready_file.exists()

    def pool(self) -> list[int]:
        """The worker's pool processes (prefork children) right now."""
        return child_pids(self.pid)

    def kill_pool_process(self) -> int:
        """SIGKILL the worker's only pool process (the worker runs with --concurrency 1); returns its pid."""
        pool = self.pool()
        assert len(pool) == 1, f"{self.name}: expected one pool process, found {pool}"
        os.kill(pool[0], signal.SIGKILL)
        return pool[0]

    def kill_all(self) -> list[int]:
        """SIGKILL the main process and every pool process at once (the process group); returns their pids."""
        pids = [self.pid, *self.pool()]
        os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        return pids

    def stop(self, timeout: float = 15) -> None:
        """Warm shutdown (SIGTERM to the main process), then SIGKILL for whatever is left of the group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # pool processes a killed main process left behind
        if self.popen.poll() is None:
            self.popen.wait(timeout=5)


# --- SMTP ----------------------------------------------------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.I | re.M)


class _StoreThenAnswer:
    """aiosmtpd handler: store the message (atomically), then answer 250 — after `delay` seconds, and for
    message number `hold_at` only once the test calls `release()` (or `hold_for` seconds passed)."""

    def __init__(self, folder: Path, delay: float) -> None:
        self.folder = folder
        self.delay = delay
        self.count = 0
        self.arrivals: list[float] = []  # time.monotonic() of each stored message
        self.hold_at = 0
        self.hold_for = 0.0
        self.held = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.count += 1
            number = self.count
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        name = f"{number:06d}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(content)
        os.replace(partial, self.folder / name)
        self.arrivals.append(time.monotonic())
        if number == self.hold_at:
            self.held.set()
            until = time.monotonic() + self.hold_for
            while not self.released.is_set() and time.monotonic() < until:
                await asyncio.sleep(0.01)
        elif self.delay:
            await asyncio.sleep(self.delay)
        return "250 Message accepted for delivery"


class CatchingSmtp:
    """An SMTP server on loopback keeping every message in `folder`; `delay` slows each answer, and
    `hold(n)` keeps the sender of the n-th message waiting for its 250 until `release()`."""

    def __init__(self, folder: Path, *, delay: float = 0.0) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self._handler = _StoreThenAnswer(folder, delay)
        self._controller = Controller(self._handler, hostname=self.host, port=self.port, ready_timeout=10)
        self._running = False

    def start(self) -> CatchingSmtp:
        self._controller.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self._running = False
            self._handler.released.set()
            self._controller.stop()

    def hold(self, number: int, *, at_most: float = 60.0) -> None:
        """Store the `number`-th message but answer it only after `release()` (at most `at_most` s)."""
        self._handler.hold_at, self._handler.hold_for = number, at_most

    def is_held(self) -> bool:
        return self._handler.held.is_set()

    def release(self) -> None:
        self._handler.released.set()

    def seconds_per_message(self) -> float:
        """The pace so far: from the first message stored to the last."""
        arrivals = self._handler.arrivals
        if len(arrivals) < 2:
            return 0.0
        return (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)

    def messages(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def count(self) -> int:
        return len(self.messages())

    def message_id(self, path: Path) -> str:
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        return match[1].decode("ascii", "replace") if match else f"(none: {path.name})"

    def message_ids(self) -> Counter[str]:
        """How many times each Message-ID arrived."""
        return Counter(self.message_id(path) for path in self.messages())


# --- the cluster -----------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A fresh database, a Redis key prefix, an SMTP server, and the processes a test starts."""

    tmp: Path
    env: dict[str, str]
    settings: Settings  # the same settings as the processes, for the test's own enqueueing
    engine: Engine
    mail: CatchingSmtp
    prefix: str
    processes: list[Process] = field(default_factory=list)
    helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)  # `celery inspect` and the like

    @property
    def maker(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    def _start(self, name: str, command: list[str], ready_variable: str, extra_env: dict[str, str] | None) -> Process:
        log = self.tmp / f"{name}.log"
        ready_file = self.tmp / f"{name}.ready"
        ready_file.unlink(missing_ok=True)
        env = {**self.env, ready_variable: str(ready_file), **(extra_env or {})}
        with log.open("ab") as out:
            # A session (and process group) of its own: kill_all reaches its pool processes and nothing else.
            popen = subprocess.Popen(command, cwd=self.tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        process = Process(name, popen, log, ready_file)
        self.processes.append(process)
        return process

    def start_worker(self, name: str, queues: Sequence[str], *, concurrency: int = 1, wait: bool = True,
                     extra_env: dict[str, str] | None = None) -> Process:
        """`celery -A workers worker --queues … --concurrency N` (the prefork pool, as in production)."""
        node = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        process = self._start(name, [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "--queues", ",".join(queues),
            "--hostname", node, "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ], "FIVESTAR_WORKER_READY_FILE", extra_env)
        process.node = node.replace("%h", os.uname().nodename)
        process.concurrency = concurrency
        if wait:
            self.wait_ready(process)
        return process

    def start_beat(self, name: str = "beat", *, wait: bool = True) -> Process:
        """`celery -A workers beat` (RedBeat with Redis): ready once it holds the lock."""
        process = self._start(name, [sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"],
                              "FIVESTAR_BEAT_READY_FILE", None)
        if wait:
            self.wait_ready(process)
        return process

    def wait_ready(self, *processes: Process) -> None:
        """Wait until each process is ready (a worker consuming with its whole pool, a beat holding the
        lock); fails at once with the logs if one exits."""
        for process in processes:
            self.wait_for(lambda p=process: p.ready() and len(p.pool()) >= p.concurrency,
                          f"{process.name} to be ready", READY_TIMEOUT, watch=processes)

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}, exit {p.popen.poll()}) ---\n{p.text()[-tail:]}"
                         for p in self.processes)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float, *, poll: float = 0.1,
                 watch: Sequence[Process] = ()) -> float:
        """Wait until `condition()`; returns the seconds it took. Fails with every log on a timeout, or at
        once when a watched process exits."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if condition():
                return time.monotonic() - started
            for process in watch:
                if not process.alive():
                    pytest.fail(f"{process.name} exited while waiting for {what}\n{self.logs()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"not within {timeout:.1f} s: {what}\n{self.logs()}")
            time.sleep(poll)

    def queue_length(self, queue: str) -> int:
        client = redis_client()
        try:
            return int(client.llen(f"{self.prefix}{queue}"))
        finally:
            client.close()

    def unacked(self) -> int:
        client = redis_client()
        try:
            return int(client.hlen(f"{self.prefix}{UNACKED_KEY}"))
        finally:
            client.close()

    def enqueue(self, task: str, *args: Any, queue: str = "default") -> None:
        from fivestar.broker import enqueue

        enqueue(self.settings, task, *args, queue=queue)

    def worker_conf(self, worker: Process) -> Callable[[], dict[str, Any]]:
        """Ask the running worker for its own configuration over the broker (`celery inspect conf`), in
        the background; call the result to get the answer."""
        out = self.tmp / f"{worker.name}.conf.json"
        with out.open("wb") as answer:
            asking = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "workers", "inspect", "conf", "--destination", worker.node,
                 "--timeout", "10", "--json"],
                cwd=self.tmp, env=self.env, stdout=answer, stderr=subprocess.STDOUT)
        self.helpers.append(asking)

        def answer() -> dict[str, Any]:
            code = asking.wait(timeout=60)
            text = out.read_text(encoding="utf-8", errors="replace")
            assert code == 0, text
            replies = json.loads(text.strip().splitlines()[-1])
            conf = replies[worker.node]
            assert isinstance(conf, dict)
            return conf

        return answer

    def stop_all(self) -> None:
        for helper in self.helpers:
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait(timeout=5)
        for process in self.processes:
            if process.alive():
                process.popen.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()


@contextmanager
def open_cluster(
    tmp: Path,
    fresh_database: Callable[[str], str],
    *,
    tick_seconds: float,
    claim_timeout: int,
    visibility_timeout: int,
    lock_timeout: int = 10,
    env: dict[str, str] | None = None,
    pythonpath: Sequence[Path] = (),
) -> Iterator[Cluster]:
    """A cluster whose processes read these settings (FIVESTAR_*) plus `env`; `pythonpath` is put first
    on the processes' PYTHONPATH (a `sitecustomize.py` there runs in every one of them)."""
    if not redis_reachable():
        service_unavailable("Redis")
    database_url = fresh_database("postgresql")  # fails (CI) or skips by itself without PostgreSQL
    prefix = f"fivestar-faults-{uuid.uuid4().hex[:10]}:"
    mail = CatchingSmtp(tmp / "mail").start()
    values = {
        "env": "test",
        "database_url": database_url,
        "broker_url": REDIS_URL,
        "redis_key_prefix": prefix,
        "data_dir": str(tmp / "data"),
        "mail_server": mail.host,
        "mail_port": str(mail.port),
        "tick_seconds": str(tick_seconds),
        "claim_timeout_seconds": str(claim_timeout),
        "broker_visibility_timeout": str(visibility_timeout),
        "beat_lock_timeout": str(lock_timeout),
        "base_url": "http://127.0.0.1:5000",
    }
    process_env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    process_env.update({f"FIVESTAR_{key.upper()}": value for key, value in values.items()})
    process_env["PYTHONUNBUFFERED"] = "1"
    if pythonpath:
        process_env["PYTHONPATH"] = os.pathsep.join(
            [str(path) for path in pythonpath] + [p for p in [os.environ.get("PYTHONPATH", "")] if p])
    process_env.update(env or {})
    settings = load_settings(**values)
    cluster = Cluster(tmp, process_env, settings, make_engine(database_url), mail, prefix)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        mail.stop()
        cluster.engine.dispose()
        delete_keys(prefix)


# --- one solo worker on either embedded or production parts --------------------------------------------------

#: The two shapes a solo worker runs in: the embedded default (SQLite and kombu's file-system transport)
#: and production's (PostgreSQL and Redis).
SOLO_BACKENDS = ["filesystem-sqlite", "redis-postgresql"]


@dataclass
class SoloWorker:
    """A `celery worker --pool solo` on both queues, started for one test, with its settings and log."""

    settings: Settings
    engine: Engine
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def wait_for(condition: Callable[[], bool], what: str, worker: SoloWorker, timeout: float = 60.0, *,
             every: Callable[[], None] | None = None) -> None:
    """Poll `condition` (calling `every` between polls) until it holds; fail with the worker's log when
    the time is up or the worker has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            code = worker.process.returncode
            pytest.fail(f"worker exited with {code} waiting for {what}:\n{worker.log_text()[-3000:]}")
        if every is not None:
            every()
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n--- worker log ---\n{worker.log_text()[-4000:]}")


@contextmanager
def solo_worker(backend: str, tmp_path: Path, fresh_database: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
                *, name: str, **settings: str) -> Iterator[SoloWorker]:
    """A fresh database and a solo worker on it, for `backend` (one of SOLO_BACKENDS); `settings` are more
    Fivestar settings by field name (`export_hosts="127.0.0.1"`), given to the worker as FIVESTAR_* and
    to the test as `worker.settings`. On Redis every key starts with a prefix of its own, deleted at the end."""
    prefix = ""
    if backend == "redis-postgresql":
        if not redis_reachable():
            service_unavailable("Redis")
        database_url, broker_url = fresh_database("postgresql"), REDIS_URL
        prefix = f"fivestar-{name}-test-{uuid.uuid4().hex[:10]}:"
    else:
        database_url, broker_url = fresh_database("sqlite"), "filesystem://"
    monkeypatch.chdir(tmp_path)  # kombu's file-system transport keeps a relative control folder
    data_dir = tmp_path / "data"
    loaded = load_settings(env="test", database_url=database_url, broker_url=broker_url, data_dir=data_dir,
                           redis_key_prefix=prefix, **settings)
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
    ready = tmp_path / "worker.ready"
    env.update(
        PYTHONUNBUFFERED="1",
        FIVESTAR_ENV="test",
        FIVESTAR_DATABASE_URL=database_url,
        FIVESTAR_BROKER_URL=broker_url,
        FIVESTAR_DATA_DIR=str(data_dir),
        FIVESTAR_REDIS_KEY_PREFIX=prefix,
        FIVESTAR_WORKER_READY_FILE=str(ready),
        **{f"FIVESTAR_{key.upper()}": value for key, value in settings.items()},
    )
    log = tmp_path / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool", "solo", "--queues", "default,reports",
        "--hostname", f"{name}-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--loglevel", "INFO",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    worker = SoloWorker(loaded, make_engine(database_url), process, log)
    try:
        wait_for(ready.exists, "the worker to be ready", worker, 60.0)
        yield worker
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        worker.engine.dispose()
        if prefix:
            delete_keys(prefix)
