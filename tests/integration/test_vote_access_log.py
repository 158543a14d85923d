"""gunicorn, run with the real ops/gunicorn.conf.py, writes no client address, user agent or code for
a vote — while the other paths keep the address (login throttling and incident work need it)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from fivestar.branch_rounds import ballot_codes
from fivestar.db import make_engine, make_sessionmaker
from tests.branch.ballot_support import BOX_SECRET, seed_meeting

REPO = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
AGENT = "VoterPhone/1.0 (unmistakable-agent)"
FORWARDED = "203.0.113.77"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(opener: urllib.request.OpenerDirector, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = None if data is None else urllib.parse.urlencode(data).encode()
    headers = {"User-Agent": AGENT, "X-Forwarded-For": FORWARDED}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - http on loopback
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.slow
def test_gunicorn_logs_a_vote_without_address_agent_or_code(
    fresh_database: Callable[[str], str], tmp_path: Path
) -> None:
    import http.cookiejar

    url = fresh_database("sqlite")
    engine = make_engine(url)
    try:
        _tenant_id, codes = seed_meeting(make_sessionmaker(engine), members=2, slug="gunicorn-vote")
    finally:
        engine.dispose()
    port = _free_port()
    access = tmp_path / "access.log"
    env = {
        **os.environ,
        "FIVESTAR_ENV": "development",
        "FIVESTAR_DATABASE_URL": url,
        "FIVESTAR_DATA_DIR": str(tmp_path / "data"),
        "FIVESTAR_SECRET_KEY": BOX_SECRET,  # the seed's codes are hashed with it
        "FIVESTAR_BROKER_URL": "filesystem://",
        "FIVESTAR_PROXY_HOPS": "1",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_ACCESS_LOG": str(access),
        "GUNICORN_ERROR_LOG": str(tmp_path / "error.log"),
        "PYTHONPATH": f"{REPO / 'platform'}{os.pathsep}{REPO}",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(REPO / "ops" / "gunicorn.conf.py"),
         "--bind", f"127.0.0.1:{port}", "fivestar.wsgi:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "error.log").read_text(errors="replace")[-2000:]
            time.sleep(0.3)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, page = _request(opener, f"{base}/t/gunicorn-vote/vote/")
        token = TOKEN.search(page)
        assert status == 200 and token is not None
        assert _request(opener, f"{base}/static/js/vote.js")[0] == 200  # the page's script, as a phone loads it
        status, page = _request(opener, f"{base}/t/gunicorn-vote/vote/",
                                {"csrf_token": token.group(1), "step": "check", "code": codes[0]})
        token = TOKEN.search(page)
        assert status == 200 and token is not None
        status, page = _request(opener, f"{base}/t/gunicorn-vote/vote/",
                                {"csrf_token": token.group(1), "step": "cast", "code": codes[0], "level": "4"})
        assert status == 200 and "测评票已提交" in page
        assert _request(opener, f"{base}/t/gunicorn-vote/login")[0] == 200
    finally:
        web.terminate()
        web.wait(timeout=30)
    lines = access.read_text(encoding="utf-8").splitlines()
    voting = [line for line in lines if "/vote" in line]
    others = [line for line in lines if "/login" in line]
    assert len(voting) == 5 and others, lines  # GET form, its script, check, cast (302), the thank-you page
    for line in voting:
        assert line.startswith("- [") and AGENT not in line and FORWARDED not in line and "127.0.0.1" not in line
        for form in (codes[0], ballot_codes.format_code(codes[0]), codes[0].lower()):
            assert form not in line
    assert all(line.startswith(f"{FORWARDED} [") and AGENT in line for line in others), others
