"""议星 pages through the Flask test client: the secretary's meeting page (setup, slips PDF, closing,
tallies, results, opinion) and the voter's page without login — with roles, tenants, CSRF, the rate
limit and the privacy headers."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds import ballot_codes
from fivestar.branch_rounds.models import Ballot, BallotBoxEntry, BallotCode, MeetingState, RatingStep
from tests.branch.ballot_support import as_tenant, cast, close, codes_of, issue, meeting_of, setup_meeting
from tests.conftest import TEST_SECRET_KEY

CODE_ON_SLIP = re.compile(r"\b([2-9A-HJKMNP-Z]{5})-([2-9A-HJKMNP-Z]{5})\b")


def _url(world: dict[str, Any], suffix: str = "", key: str = "rating_one") -> str:
    return f"/t/{world['tenant'].slug}/branch-rating/deliberation/{world[key].id}{suffix}"


def _vote(world: dict[str, Any], suffix: str = "") -> str:
    return f"/t/{world['tenant'].slug}/vote/{suffix}"


def _text(response: Any) -> str:
    return str(response.get_data(as_text=True))


SETUP = {"meeting_date": "2026-01-20", "place": "三楼会议室", "members_count": "3", "public_count": "2",
         "deputies_count": "1", "version": "0"}


def test_secretary_sets_up_issues_slips_and_gets_a_pdf_of_shuffled_codes(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    login(deliberating["tenant"], deliberating["secretary"])
    page = client.get(_url(deliberating))
    assert page.status_code == 200 and "议星：会议与无记名测评" in _text(page) and "四星" in _text(page)
    saved = client.post(_url(deliberating, "/setup"), data=SETUP)
    assert saved.status_code == 302
    meeting = meeting_of(session, deliberating)
    page = client.get(_url(deliberating))
    assert "生成测评票（PDF）并开始测评" in _text(page)

    slips = client.post(_url(deliberating, "/slips"), data={"version": str(meeting.version)})
    assert slips.status_code == 200 and slips.mimetype == "application/pdf"
    assert "no-store" in slips.headers["Cache-Control"]
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(slips.data)).pages)
    codes = ["".join(m) for m in CODE_ON_SLIP.findall(text)]
    assert len(codes) == 6 and len(set(codes)) == 6
    assert text.count("身份：党员") == 3 and text.count("身份：群众代表") == 2 and text.count("身份：两代表一委员") == 1
    assert "扫码或打开网址，输入测评码" in text and f"/t/{deliberating['tenant'].slug}/vote/" in text
    with as_tenant(deliberating):
        stored = set(session.scalars(select(BallotCode.code_hash)))
    assert stored == {ballot_codes.code_hash(c, TEST_SECRET_KEY) for c in codes}
    assert meeting_of(session, deliberating).state is MeetingState.VOTING

    again = client.post(_url(deliberating, "/slips"), data={"version": str(meeting_of(session, deliberating).version)})
    assert again.status_code == 409 and "测评已开始" in _text(again)
    page = client.get(_url(deliberating))
    assert "已投出电子测评票 0 张（发放 6 张）" in _text(page) and "测评结束后才显示结果" in _text(page)


def test_the_slips_qr_code_is_drawn_module_by_module() -> None:
    import segno

    from fivestar.branch_rounds.ballot_slips import draw_qr

    class Recorder:
        def __init__(self) -> None:
            self.cells: set[tuple[int, int]] = set()

        def set_fill_color(self, *_args: Any) -> None:
            pass

        def rect(self, x: float, y: float, w: float, h: float, style: str) -> None:
            assert style == "F" and h == pytest.approx(1.0)
            for col in range(round(x), round(x + w)):
                self.cells.add((round(y), col))

    data = "http://fivestar.test/t/x/vote/#ABCDE23456"
    qr = segno.make(data, error="m", micro=False)
    size = qr.symbol_size(scale=1, border=0)[0]
    recorder = Recorder()
    draw_qr(recorder, data, x=0, y=0, size=size)  # type: ignore[arg-type]
    expected = {(r, c) for r, row in enumerate(qr.matrix_iter(scale=1, border=0)) for c, dark in enumerate(row)
                if dark}
    assert recorder.cells == expected


def test_setup_shows_the_public_representatives_warning_and_keeps_input_on_errors(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    from tests.branch.ballot_support import use_rules

    use_rules(session, deliberating, "zoucheng-public-weighted")
    login(deliberating["tenant"], deliberating["secretary"])
    page = client.get(_url(deliberating))
    assert "至少 1 名群众代表" in _text(page)
    saved = client.post(_url(deliberating, "/setup"), data={**SETUP, "public_count": "0"}, follow_redirects=True)
    assert "群众代表 0 人，少于本支部党员人数 3 的 20%（至少应有 1 人）" in _text(saved)
    bad = client.post(_url(deliberating, "/setup"),
                      data={**SETUP, "place": "", "members_count": "abc", "version": "1"})
    assert bad.status_code == 400
    body = _text(bad)
    assert "请填写会议地点" in body and "参会党员人数" in body and 'value="abc"' in body


def test_setup_warns_at_once_when_a_group_is_below_the_minimum_of_ballots(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    login(deliberating["tenant"], deliberating["secretary"])
    assert "每类参会人员至少 5 张有效票" in _text(client.get(_url(deliberating)))
    saved = client.post(_url(deliberating, "/setup"),
                        data={**SETUP, "members_count": "8", "public_count": "3", "deputies_count": "0"},
                        follow_redirects=True)
    body = _text(saved)
    assert saved.status_code == 200 and "已保存议星会议安排" in body
    warning = "群众代表 3 人，少于规则要求的最低票数 5 张：该群体的测评结果将不予显示，也不计入加权结果"
    assert body.count(warning) == 1  # on the page while the numbers stay so (not flashed a second time)
    assert "党员 8 人，少于" not in body


def test_two_secretaries_editing_the_meeting_at_once_one_gets_409(
    client: FlaskClient, app: Flask, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    version = str(meeting_of(session, deliberating).version)
    other = app.test_client()
    login(deliberating["tenant"], deliberating["secretary"])
    response = other.post(f"/t/{deliberating['tenant'].slug}/login",
                          data={"username": deliberating["branch_committee"].username,
                                "password": "correct-horse-battery"})
    assert response.status_code == 302
    first = client.post(_url(deliberating, "/setup"), data={**SETUP, "place": "第一会议室", "version": version})
    second = other.post(_url(deliberating, "/setup"), data={**SETUP, "place": "第二会议室", "version": version})
    assert first.status_code == 302 and second.status_code == 409
    assert "他人修改" in _text(second) and 'value="第二会议室"' in _text(second)
    assert meeting_of(session, deliberating).place == "第一会议室"


@pytest.mark.parametrize("who", ["member", "direct_secretary", "org_staff"])
def test_wrong_role_or_other_branch_gets_404(
    client: FlaskClient, login: Any, deliberating: dict[str, Any], who: str
) -> None:
    login(deliberating["tenant"], deliberating[who])
    expected_get = 200 if who == "org_staff" else 404  # the 机关党委 above reads, it does not run the meeting
    assert client.get(_url(deliberating)).status_code == expected_get
    assert client.post(_url(deliberating, "/setup"), data=SETUP).status_code == (403 if who == "org_staff" else 404)


def test_inspector_reads_without_forms_and_cannot_post(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    login(deliberating["tenant"], deliberating["inspector"])
    page = client.get(_url(deliberating))
    assert page.status_code == 200 and "保存会议安排" not in _text(page) and "三楼会议室" in _text(page)
    version = str(meeting_of(session, deliberating).version)
    assert client.post(_url(deliberating, "/slips"), data={"version": version}).status_code == 403
    assert meeting_of(session, deliberating).state is MeetingState.SETUP


def test_other_tenant_gets_404(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any], create_tenant: Any,
    create_account: Any,
) -> None:
    from fivestar.enums import Role

    other = create_tenant(slug="other-district", name="另一个工委")
    admin = create_account(other, roles=[(Role.TENANT_ADMIN, None)], username="other-admin")
    login(other, admin)
    url = f"/t/{other.slug}/branch-rating/deliberation/{deliberating['rating_one'].id}"
    assert client.get(url).status_code == 404
    assert client.post(url + "/setup", data=SETUP).status_code == 404
    # and a code of district A is worth nothing on B's voting page
    setup_meeting(session, deliberating)
    code = codes_of(issue(session, deliberating), "members")[0]
    response = client.post(f"/t/{other.slug}/vote/", data={"step": "check", "code": code})
    assert response.status_code == 400 and "测评码无效" in _text(response)


# --- the voter's page --------------------------------------------------------------------------------


def test_voter_casts_with_a_code_once_without_login(
    client: FlaskClient, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    code = codes_of(issue(session, deliberating), "public")[0]
    form = client.get(_vote(deliberating))
    assert form.status_code == 200 and 'name="code"' in _text(form) and "js/vote.js" in _text(form)
    assert form.headers["Cache-Control"] == "no-store" and form.headers["Referrer-Policy"] == "no-referrer"
    shown = client.post(_vote(deliberating), data={"step": "check", "code": ballot_codes.format_code(code).lower()})
    body = _text(shown)
    assert shown.status_code == 200 and "您的身份：群众代表" in body and "预算科党支部议星测评" in body
    assert body.count('type="radio"') == 6 and f'value="{code}"' in body
    assert shown.headers["Cache-Control"] == "no-store" and shown.headers["Referrer-Policy"] == "no-referrer"
    done = client.post(_vote(deliberating), data={"step": "cast", "code": code, "level": "5"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/vote/done")
    assert code not in done.headers["Location"]
    thanks = client.get(done.headers["Location"])
    assert "测评票已提交" in _text(thanks) and code not in _text(thanks)
    with as_tenant(deliberating):
        assert session.scalar(select(func.count()).select_from(BallotBoxEntry)) == 1
    again = client.post(_vote(deliberating), data={"step": "cast", "code": code, "level": "1"})
    assert again.status_code == 409 and "已经使用过" in _text(again) and code not in _text(again)
    checked = client.post(_vote(deliberating), data={"step": "check", "code": code})
    assert checked.status_code == 409
    close(session, deliberating)
    with as_tenant(deliberating):
        assert session.scalars(select(Ballot.level)).all() == [5]


def test_voter_errors_are_clear_4xx_never_500(
    client: FlaskClient, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    codes = codes_of(issue(session, deliberating), "members")
    unknown = client.post(_vote(deliberating), data={"step": "check", "code": "XYZWV-98765"})
    assert unknown.status_code == 400 and "测评码无效" in _text(unknown) and "XYZWV" not in _text(unknown)
    missing = client.post(_vote(deliberating), data={"step": "cast", "code": codes[0]})
    assert missing.status_code == 400 and "请选择一项" in _text(missing) and f'value="{codes[0]}"' in _text(missing)
    wrong = client.post(_vote(deliberating), data={"step": "cast", "code": codes[0], "level": "7"})
    assert wrong.status_code == 400
    with as_tenant(deliberating):
        assert not session.scalars(select(BallotCode).where(BallotCode.used.is_(True))).all()
    close(session, deliberating)
    after = client.post(_vote(deliberating), data={"step": "cast", "code": codes[1], "level": "3"})
    assert after.status_code == 409 and "本次测评已结束" in _text(after)


def test_guessing_codes_is_rate_limited_per_address(
    client: FlaskClient, app: Flask, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating)
    codes = codes_of(issue(session, deliberating), "members")
    app.config["FIVESTAR_VOTE_FAILED_LIMIT"] = "3 per minute"
    try:
        # successful casts do not count against the guessing limit
        for code in codes[:3]:
            cast_response = client.post(_vote(deliberating), data={"step": "cast", "code": code, "level": "4"})
            assert cast_response.status_code == 302
        statuses = [client.post(_vote(deliberating), data={"step": "check", "code": f"ABCDE2345{d}"}).status_code
                    for d in "6789"]
    finally:
        app.config.pop("FIVESTAR_VOTE_FAILED_LIMIT")
    assert statuses == [400, 400, 400, 429]


def test_voting_page_needs_csrf_even_without_login(
    client: FlaskClient, session: Session, deliberating: dict[str, Any], csrf_enabled: None
) -> None:
    setup_meeting(session, deliberating)
    code = codes_of(issue(session, deliberating), "members")[0]
    refused = client.post(_vote(deliberating), data={"step": "cast", "code": code, "level": "5"})
    assert refused.status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', _text(client.get(_vote(deliberating))))
    assert token is not None
    shown = client.post(_vote(deliberating), data={"step": "check", "code": code, "csrf_token": token.group(1)})
    token = re.search(r'name="csrf_token" value="([^"]+)"', _text(shown))
    assert token is not None
    done = client.post(_vote(deliberating), data={"step": "cast", "code": code, "level": "5",
                                                  "csrf_token": token.group(1)})
    assert done.status_code == 302


def test_indicators_ballot_page(client: FlaskClient, session: Session, deliberating: dict[str, Any]) -> None:
    from tests.branch.ballot_support import ctx_of, use_rules

    use_rules(session, deliberating, "shizhi-110")
    setup_meeting(session, deliberating, members=1, public=0, deputies=0)
    code = codes_of(issue(session, deliberating), "members")[0]
    items = ctx_of(session, deliberating).items
    shown = _text(client.post(_vote(deliberating), data={"step": "check", "code": code}))
    assert shown.count('type="radio"') == 4 * len(items) and "较好" in shown and items[0].label in shown
    answers = {f"item.{item.key}": "3" for item in items}
    done = client.post(_vote(deliberating), data={"step": "cast", "code": code, **answers})
    assert done.status_code == 302


# --- closing, tallies, results and the opinion on the page -------------------------------------------


def test_closing_tallies_results_and_opinion_on_the_page(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    setup_meeting(session, deliberating, members=6, public=3, deputies=0)
    codes = issue(session, deliberating)
    for code in codes_of(codes, "members")[:5]:
        cast(session, deliberating, code, level=4)
    cast(session, deliberating, codes_of(codes, "public")[0], level=2)
    login(deliberating["tenant"], deliberating["secretary"])
    version = str(meeting_of(session, deliberating).version)
    tallies = client.post(_url(deliberating, "/tallies"), data={"version": version, "tally.public._.3": "1"})
    assert tallies.status_code == 302
    stale = client.post(_url(deliberating, "/close"), data={"version": version})
    assert stale.status_code == 409
    closed = client.post(_url(deliberating, "/close"), data={"version": str(meeting_of(session, deliberating).version)},
                         follow_redirects=True)
    body = _text(closed)
    assert "测评已结束，共收到电子测评票 6 张" in body
    assert "票数不足，不显示" in body  # public: 1 electronic + 1 paper < 5
    assert "4.00" in body and "群众代表" in body and "（票数不足）" in body
    assert client.post(_url(deliberating, "/close"), data={"version": str(meeting_of(session, deliberating).version)}
                       ).status_code == 409

    rating = deliberating["rating_one"]
    bad = client.post(_url(deliberating, "/opinion"),
                      data={"rating_version": str(rating.version), "opinion_level": "", "opinion_statement": "说明",
                            "action": "submit"})
    assert bad.status_code == 400 and "请选择建议星级" in _text(bad) and "说明" in _text(bad)
    done = client.post(_url(deliberating, "/opinion"),
                       data={"rating_version": str(rating.version), "opinion_level": "4",
                             "opinion_statement": "同意申报四星", "action": "submit"}, follow_redirects=True)
    assert done.status_code == 200 and "已上报支部意见" in _text(done) and "机关党委/党总支审核" in _text(done)
    session.refresh(rating)
    assert rating.step is RatingStep.ORG_REVIEW and rating.opinion_statement == "同意申报四星"
    late = client.post(_url(deliberating, "/tallies"), data={"version": str(meeting_of(session, deliberating).version),
                                                             "tally.public._.3": "2"})
    assert late.status_code == 409


def test_page_query_count_does_not_grow_with_ballots(
    client: FlaskClient, login: Any, session: Session, deliberating: dict[str, Any]
) -> None:
    from tests.support import count_queries

    login(deliberating["tenant"], deliberating["secretary"])

    def queries() -> int:
        with count_queries(session.get_bind().engine, only=("SELECT",)) as statements:
            assert client.get(_url(deliberating)).status_code == 200
        return len(statements)

    setup_meeting(session, deliberating, members=20, public=0, deputies=0)
    codes = codes_of(issue(session, deliberating), "members")
    close(session, deliberating)
    few = queries()
    session.execute(
        Ballot.__table__.insert(),
        [{"id": f"{n:032x}", "tenant_id": deliberating["tenant"].id, "meeting_id": meeting_of(session, deliberating).id,
          "group": "members", "level": n % 6, "ratings": None} for n in range(len(codes))],
    )
    assert queries() == few
