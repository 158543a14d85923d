"""Benchmark: 50 voters casting 议星 ballots at once against a running server.

    python bench/ballots.py [--voters 50] [--db sqlite|postgresql] [--postgres-url URL] [--threads 16]

Creates a fresh database (a SQLite file, or a throwaway PostgreSQL database created through
--postgres-url and dropped afterwards), migrates it, seeds a tenant on the notice sample's rules with
one branch in 议星 and a voting meeting with one single-use code per voter (issued through the
platform's own service, so only hashes are stored), then starts the real app in a **separate
process** (this script with `--serve`: werkzeug's threaded server, as `fivestar demo` runs it; gunicorn
is not a dependency) on a free port.

Each voter is a thread acting like a phone's browser, with its own cookie: it opens the voting page
(CSRF token in an anonymous session), posts its code (the ballot form comes back), then — all voters
released together by a barrier — posts its ballot. The casting POST (the conditional UPDATE of the
code, the ballot INSERT, the commit, the redirect) is timed, request to response. It prints the
count, the min/p50/p95/p99/max latency in milliseconds, checks that every voter got the thank-you
redirect and that the database holds exactly one ballot per voter, and prints `p99: X ms` on its last
line (goal ≤ 300 ms, bench/README.md "Goals"). A measurement, not a test: the suite runs it with `--voters 5`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from _common import POSTGRES_ADMIN_URL, database

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tenants" / "notice-illustrative.toml"
SLUG = "bench-ballot"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
# All voters come from 127.0.0.1: lift the per-address limits for the measurement (a real meeting
# room behind one NAT stays well inside the defaults for 50 voters).
LIMITS = {"FIVESTAR_VOTE_LIMIT": "1000000 per minute", "FIVESTAR_VOTE_FAILED_LIMIT": "1000000 per minute"}


# The instance secret of the benchmark's server: codes are stored as hashes keyed with it, so the seed
# that issues them and the server that checks them must share it. A benchmark's, never production's.
SECRET_KEY = "fivestar-bench-secret-key-not-for-production-0000000000"  # noqa: S105 - a benchmark's


def _settings(url: str, data_dir: Path, secret_key: str) -> Any:
    from fivestar.config import load_settings

    return load_settings(env="test", database_url=url, broker_url="filesystem://", data_dir=data_dir,
                         secret_key=secret_key, base_url="http://127.0.0.1",
                         log_level="WARNING")


def seed(url: str, voters: int) -> list[str]:
    """The tenant, its branch in 议星, the meeting and its codes (committed). Returns the plain codes."""
    from sqlalchemy import select

    from fivestar import dbcli
    from fivestar.branch_rounds import ballot_codes, ballot_meeting, core
    from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import OrgKind
    from fivestar.orgs.models import Organisation
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant, current_rules
    from fivestar.timekeeping import clock

    dbcli.upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            tenant = create_tenant(session, slug=SLUG, name="议星基准工委", rules_toml=RULES.read_text("utf-8"))
            session.flush()
            with tenant_context(tenant.id):
                root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
                assert root is not None
                branch = Organisation(tenant_id=tenant.id, parent_id=root.id, kind=OrgKind.BRANCH,
                                      name="第一党支部", code="B01")
                session.add(branch)
                session.flush()
                branch.path = f"{root.path}{branch.id}/"
                version = current_rules(session, tenant)
                assert version is not None
                now = clock.now()
                branch_round = BranchRound(
                    tenant_id=tenant.id, year=now.year - 1, rules_version_id=version.id,
                    state=BranchRoundState.OPEN, opened_at=now, opened_by="bench",
                    self_report_due_at=now + dt.timedelta(days=30), committee_due_at=now + dt.timedelta(days=60),
                )
                session.add(branch_round)
                session.flush()
                rating = BranchRating(tenant_id=tenant.id, round_id=branch_round.id, branch_id=branch.id,
                                      step=RatingStep.DELIBERATE)
                session.add(rating)
                session.flush()
                ctx = ballot_meeting.context_for(session, core.load_rating(session, rating.id))
                groups = {"members_count": voters - voters // 3, "public_count": voters // 3}
                today = clock.today_in(tenant.timezone).isoformat()
                ballot_meeting.save_meeting(session, ctx, {"meeting_date": today, "place": "会议室",
                                                   **{k: str(v) for k, v in groups.items()}}, 0)
                ctx = ballot_meeting.context_for(session, ctx.rating)
                assert ctx.meeting is not None
                issued = ballot_codes.issue_slips(session, ctx, ctx.meeting.version, secret_key=SECRET_KEY)
            session.commit()
            return [slip.code for slip in issued.slips]
    finally:
        engine.dispose()


def count_ballots(url: str) -> int:
    """Ballots cast so far: they wait in the ballot box until the meeting closes."""
    from sqlalchemy import func, select

    from fivestar.branch_rounds.models import BallotBoxEntry
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.tenancy import cross_tenant

    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session, cross_tenant("bench: count the ballots"):
            return int(session.scalar(select(func.count()).select_from(BallotBoxEntry)) or 0)
    finally:
        engine.dispose()


# --- the server process ------------------------------------------------------------------------------


def serve(url: str, data_dir: Path, port_file: Path, workers: int) -> None:
    """Run the app until terminated: `workers` forked processes (each werkzeug, threaded) accepting on
    one listening socket — the shape of `gunicorn -w N --threads …`, which is not a dependency."""
    import logging
    import signal
    import socket

    from werkzeug.serving import make_server

    secret_key = SECRET_KEY  # one for all workers (a session signed by one is valid in all) and the seed
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    children: list[int] = []
    for _worker in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own app, engine and connections, made after the fork
            from fivestar.web.app import create_app

            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access line per request
            app = create_app(_settings(url, data_dir, secret_key), **LIMITS)
            server = make_server("127.0.0.1", port, app, threaded=True, fd=listener.fileno())
            signal.signal(signal.SIGTERM, lambda *_args: os._exit(0))
            server.serve_forever()
            os._exit(0)
        children.append(pid)

    def stop(*_args: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        for child in children:
            os.waitpid(child, 0)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    port_file.write_text(str(port))
    for child in children:
        os.waitpid(child, 0)


def start_server(url: str, data_dir: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port_file = data_dir / "port"
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--database-url", url, "--data-dir", str(data_dir),
         "--port-file", str(port_file), "--workers", str(workers)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            return process, int(port_file.read_text())
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise SystemExit("the server did not start within 60 s")


# --- the voters --------------------------------------------------------------------------------------


class Phone:
    """One voter's browser: a cookie, fresh connections, no redirects followed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, float]:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            elapsed = time.perf_counter() - started
            for name, value in response.getheaders():
                if name.lower() == "set-cookie" and value.startswith("fivestar_session="):
                    self.cookie = value.split(";", 1)[0]
            return response.status, text, elapsed
        finally:
            connection.close()


def vote(port: int, code: str, level: int, start: threading.Barrier, together: threading.Barrier | None,
         out: list[tuple[int, float]]) -> None:
    phone = Phone(port)
    path = f"/t/{SLUG}/vote/"
    start.wait(timeout=120)
    status, page, _t = phone.request("GET", path)
    token = TOKEN.search(page)
    if status != 200 or token is None:
        raise RuntimeError(f"voting page: {status}")
    status, page, _t = phone.request("POST", path, {"csrf_token": token.group(1), "step": "check", "code": code})
    token = TOKEN.search(page)
    if status != 200 or token is None:
        raise RuntimeError(f"ballot form: {status}")
    if together is not None:
        together.wait(timeout=120)
    status, _page, elapsed = phone.request(
        "POST", path, {"csrf_token": token.group(1), "step": "cast", "code": code, "level": str(level)}
    )
    out.append((status, elapsed))


def warm_up(port: int, rounds: int = 20) -> None:
    """Untimed: a few requests so every worker has loaded its templates, rules and connections."""
    for _round in range(rounds):
        phone = Phone(port)
        status, page, _t = phone.request("GET", f"/t/{SLUG}/vote/")
        token = TOKEN.search(page)
        if status == 200 and token is not None:
            phone.request("POST", f"/t/{SLUG}/vote/", {"csrf_token": token.group(1), "step": "check",
                                                       "code": "XYZWV98765"})


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def run(kind: str, voters: int, postgres_url: str, workers: int, together: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="fivestar-ballots-") as folder, \
            database(kind, Path(folder), postgres_url) as url:
        codes = seed(url, voters)
        process, port = start_server(url, Path(folder), workers)
        warm_up(port)
        try:
            results: list[tuple[int, float]] = []
            errors: list[BaseException] = []
            start = threading.Barrier(voters)
            at_once = threading.Barrier(voters) if together else None

            def voter(index: int) -> None:
                try:
                    vote(port, codes[index], index % 6, start, at_once, results)
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)
                    start.abort()
                    if at_once is not None:
                        at_once.abort()

            threads = [threading.Thread(target=voter, args=(i,)) for i in range(voters)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if errors:
            print(f"{len(errors)} voters failed: {errors[0]!r}", file=sys.stderr)
            return 1
        statuses = sorted({status for status, _e in results})
        stored = count_ballots(url)
        latencies = [elapsed * 1000 for _s, elapsed in results]
        mode = "every ballot submitted at the same instant" if together else "all voters start at once"
        print(f"database: {kind}, voters: {voters} ({mode}), server: {workers} werkzeug threaded worker process(es)")
        print(f"ballots cast: {len(results)}, statuses: {statuses}, ballots stored: {stored}")
        if statuses != [302] or stored != voters:
            print("not every voter's ballot was stored exactly once", file=sys.stderr)
            return 1
        print(f"count: {len(latencies)}")
        print(f"min: {min(latencies):.1f} ms")
        print(f"p50: {percentile(latencies, 0.50):.1f} ms")
        print(f"p95: {percentile(latencies, 0.95):.1f} ms")
        print(f"max: {max(latencies):.1f} ms")
        print(f"p99: {percentile(latencies, 0.99):.1f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--voters", type=int, default=50)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2: one per core)")
    parser.add_argument("--together", action="store_true",
                        help="hold every voter until all have their ballot form, then submit all at once")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.voters < 1:
        parser.error("--voters must be at least 1")
    if args.serve:
        serve(args.database_url, Path(args.data_dir), Path(args.port_file), args.workers)
        return 0
    return run(args.db, args.voters, args.postgres_url, max(1, args.workers), args.together)


if __name__ == "__main__":
    raise SystemExit(main())
