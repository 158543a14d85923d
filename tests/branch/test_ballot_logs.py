"""Nothing logs a ballot code: a whole voting session is run with every logger at DEBUG — through the
test client, and against a live werkzeug server whose access log is captured — and no code (plain,
formatted or lower-case) appears in any log record, audit event, redirect, flash message or
session cookie."""

from __future__ import annotations

import http.cookiejar
import json
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import ballot_codes
from fivestar.tenancy import cross_tenant
from fivestar.web.access_log import VoteBlindRequestHandler
from tests.branch.ballot_support import as_tenant, meeting_of, seed_meeting, setup_meeting
from tests.conftest import TEST_SECRET_KEY

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours its access lines on a terminal


def _forms_of(code: str) -> list[str]:
    return [code, code.lower(), ballot_codes.format_code(code), ballot_codes.format_code(code).lower()]


def _assert_absent(codes: Iterable[str], *texts: str) -> None:
    haystack = "\n".join(texts)
    for code in codes:
        for form in _forms_of(code):
            assert form not in haystack, f"a ballot code appears in the output ({form[:2]}…)"


def _session_data(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie("fivestar_session")
    if cookie is None:
        return ""
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    return json.dumps(serializer.loads(cookie.value), ensure_ascii=False, default=str)


def test_a_whole_voting_session_logs_no_code(
    app: Flask, client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    setup_meeting(session, deliberating, members=4, public=2, deputies=0)
    login(deliberating["tenant"], deliberating["secretary"])
    base = f"/t/{deliberating['tenant'].slug}"
    meeting = meeting_of(session, deliberating)
    slips = client.post(f"{base}/branch-rating/deliberation/{deliberating['rating_one'].id}/slips",
                        data={"version": str(meeting.version)})
    assert slips.status_code == 200
    from io import BytesIO

    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(BytesIO(slips.data)).pages)
    codes = [a + b for a, b in re.findall(r"([2-9A-HJKMNP-Z]{5})-([2-9A-HJKMNP-Z]{5})", text)]
    assert len(codes) == 6

    voter = app.test_client()
    outputs: list[str] = []
    for index, code in enumerate(codes):
        typed = ballot_codes.format_code(code).lower() if index % 2 else code
        shown = voter.post(f"{base}/vote/", data={"step": "check", "code": typed})
        assert shown.status_code == 200
        cast = voter.post(f"{base}/vote/", data={"step": "cast", "code": code, "level": str(index % 6)})
        assert cast.status_code == 302
        again = voter.post(f"{base}/vote/", data={"step": "cast", "code": code, "level": "5"})
        assert again.status_code == 409
        outputs += [cast.headers.get("Location", ""), str(dict(cast.headers)), again.get_data(as_text=True)]
    bad = voter.post(f"{base}/vote/", data={"step": "check", "code": "XYZWV-98765"})
    assert bad.status_code == 400
    meeting = meeting_of(session, deliberating)
    closed = client.post(f"{base}/branch-rating/deliberation/{deliberating['rating_one'].id}/close",
                         data={"version": str(meeting.version)}, follow_redirects=True)
    assert closed.status_code == 200 and "测评已结束" in closed.get_data(as_text=True)
    with as_tenant(deliberating):
        events = session.scalars(select(AuditEvent)).all()
    audit_dump = json.dumps([[e.action, e.object_id, e.before, e.after, e.reason] for e in events], ensure_ascii=False)
    assert "ballot_meeting.close" in audit_dump
    assert caplog.records, "the capture works"
    _assert_absent(codes, caplog.text, audit_dump, *outputs, closed.get_data(as_text=True),
                   _session_data(app, voter), _session_data(app, client))
    _assert_absent(["XYZWV98765"], caplog.text, bad.get_data(as_text=True))


class LiveServer:
    """The real app on a free port (werkzeug, threaded), on its own fresh database."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=VoteBlindRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


def _vote_over_http(base_url: str, slug: str, code: str, level: int) -> tuple[int, str]:
    """A voter's browser: open the slip's link (the fragment stays in the browser), then post twice."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def post(data: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(f"{base_url}/t/{slug}/vote/", data=body)  # noqa: S310 - http on loopback
        try:
            with opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    with opener.open(f"{base_url}/t/{slug}/vote/#{code}", timeout=30) as response:
        page = response.read().decode()
    with opener.open(f"{base_url}/static/js/vote.js", timeout=30) as script:  # as the browser loads it
        assert script.status == 200 and script.read()  # read to the end: the server then closes the file
    token = TOKEN.search(page)
    assert token is not None
    status, page = post({"csrf_token": token.group(1), "step": "check", "code": code})
    if status != 200:
        return status, page
    token = TOKEN.search(page)
    assert token is not None
    return post({"csrf_token": token.group(1), "step": "cast", "code": code, "level": str(level)})


def test_a_live_server_access_log_carries_no_code(
    fresh_database: Callable[[str], str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fivestar.config import load_settings
    from fivestar.db import make_sessionmaker
    from fivestar.web.app import create_app

    url = fresh_database("sqlite")
    settings = load_settings(env="test", database_url=url, broker_url="filesystem://", data_dir=tmp_path,
                             secret_key=TEST_SECRET_KEY, base_url="http://127.0.0.1")
    app = create_app(settings)
    _tenant_id, codes = seed_meeting(make_sessionmaker(app.extensions["fivestar.engine"]), members=4,
                                     slug="live-ballot")
    caplog.set_level(logging.DEBUG)
    with LiveServer(app) as live:
        results = [_vote_over_http(live.url, "live-ballot", code, level)
                   for code, level in zip(codes, (5, 4, 4, 3), strict=True)]
        replay = _vote_over_http(live.url, "live-ballot", codes[0], 1)
        with urllib.request.urlopen(f"{live.url}/healthz", timeout=30) as health:  # noqa: S310 - loopback
            assert health.status == 200
    assert replay[0] == 409 and "已经使用过" in replay[1]
    assert [status for status, _page in results] == [200, 200, 200, 200]  # redirected to the thank-you page
    assert all("测评票已提交" in page for _status, page in results)
    access = [ANSI.sub("", r.getMessage()) for r in caplog.records if r.name == "werkzeug"]
    assert sum('"POST /t/live-ballot/vote/ HTTP/1.1" 302' in line for line in access) == 4, access[:5]
    assert sum('"GET /t/live-ballot/vote/ HTTP/1.1" 200' in line for line in access) == 5
    # the voting path's lines carry no client address (other paths keep it)
    voting = [line for line in access if "/t/live-ballot/vote" in line or "/static/" in line]
    assert any("/static/js/vote.js" in line for line in voting), access[:8]  # the page's script, right after it
    assert voting and all(line.startswith("- - - [") and "127.0.0.1" not in line for line in voting), voting[:3]
    others = [line for line in access if line not in voting and '"' in line]
    assert others and all(line.startswith("127.0.0.1 ") for line in others), others[:3]
    with app.app_context(), make_sessionmaker(app.extensions["fivestar.engine"])() as s, cross_tenant("test: audit"):
        audit_dump = json.dumps([[e.action, e.before, e.after] for e in s.scalars(select(AuditEvent))],
                                ensure_ascii=False)
    _assert_absent(codes, caplog.text, "\n".join(access), audit_dump)
    app.extensions["fivestar.engine"].dispose()
