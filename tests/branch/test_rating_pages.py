"""The branch's own rating pages as people see them: found from the home page, the dashboard's
step, deadlines and next step, the 荐星 form with the engine's view, refusals that keep the input,
who may read and who may write, and the phone-friendly markup."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fivestar.branch_rounds import recommend
from fivestar.branch_rounds.models import AnswerKind, BranchRoundState, RatingStep
from fivestar.kernel.rounds import seeding
from fivestar.rules import evaluate_branch
from fivestar.tenancy import tenant_context
from tests.branch.recommend_support import (
    engine_input,
    full_form,
    load,
    public_district,
    rules_of,
    save,
    text,
    url,
)


def _home(client: FlaskClient, world: dict[str, Any]) -> str:
    return text(client.get(f"/t/{world['tenant'].slug}/"))


def _as(client: FlaskClient, login: Any, world: dict[str, Any], who: str) -> None:
    client.delete_cookie("fivestar_session")
    login(world["tenant"], world[who])


# --- home and dashboard ----------------------------------------------------------------------------


def test_the_branch_finds_its_rating_from_the_home_page(
    client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    for who, shown in (("secretary", True), ("branch_committee", True), ("member", False), ("admin", False),
                       ("inspector", False), ("direct_secretary", True)):
        _as(client, login, opened, who)
        home = _home(client, opened)
        assert ('id="branch-ratings"' in home) is shown, who
        if shown:
            section = home.split('id="branch-ratings"')[1].split("</section>")[0]
            key = "rating_direct" if who == "direct_secretary" else "rating_one"
            links = re.findall(r'href="([^"]+)"', section)
            assert links == [url(opened, key=key)], who
            assert "2025 年度党支部星级评定" in section and "荐星" in section
            assert client.get(links[0]).status_code == 200


def test_a_finalised_round_leaves_the_home_page(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    with tenant_context(opened["tenant"].id):
        with seeding():
            opened["round"].state = BranchRoundState.FINALISED
        session.flush()
    login(opened["tenant"], opened["secretary"])
    assert 'id="branch-ratings"' not in _home(client, opened)


def test_the_dashboard_shows_the_step_deadlines_and_what_is_next(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    with tenant_context(opened["tenant"].id):
        opened["rating_one"].previous_level = 3
        session.flush()
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened)))
    assert "当前环节：荐星" in page
    assert "2026-01-31 23:59" in page and "2026-03-31 23:59" in page  # end of the day in Beijing, not UTC
    assert "区财政局机关党委" in page and "上年星级" in page and "三星" in page
    assert "于 1月31日 前提交荐星" in page
    assert "评分标准已打分 0 / 13 项" in page and "一票否决事项已回答 0 / 3 项" in page
    # the step's button, disabled with the workflow's reason
    assert re.search(r'<button type="submit" class="button" disabled aria-describedby="why-submit_recommendation">'
                     r"提交荐星</button>", page)
    assert "暂不能提交荐星：还有 13 项评分标准未打分" in page
    assert "机关党委/党总支审核" in page  # the branch has a middle level
    assert client.get(url(opened, key="rating_direct")).status_code == 404  # another branch: not found
    _as(client, login, opened, "direct_secretary")
    direct = text(client.get(url(opened, key="rating_direct")))
    assert "直属工委" in direct and "机关党委/党总支审核" not in direct


def test_submitting_from_the_dashboard(
    app: Any, session: Session, client: FlaskClient, login: Any, opened: dict[str, Any]
) -> None:
    save(session, opened, full_form(rules_of(session, opened)))
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened)))
    assert re.search(r'<button type="submit" class="button primary">提交荐星</button>', page)
    version = load(session, opened).version
    stale = client.post(url(opened, "/step"), data={"transition": "submit_recommendation", "version": version - 1})
    assert stale.status_code == 409 and "已被他人修改" in text(stale)
    response = client.post(url(opened, "/step"), data={"transition": "submit_recommendation", "version": version})
    assert response.status_code == 302
    rating = load(session, opened)
    assert rating.step is RatingStep.DELIBERATE and rating.proposed_level == 5
    page = text(client.get(url(opened)))
    assert "当前环节：议星" in page and "建议 五星" in page and "提交荐星</button>" not in page
    if "tenant.branch_rating_deliberation.meeting" in app.view_functions:  # the 议星 part, once it is installed
        assert f'href="/t/{opened["tenant"].slug}/branch-rating/deliberation/{rating.id}"' in page


def test_the_dashboard_after_a_return_and_after_the_decision(
    session: Session, client: FlaskClient, login: Any, opened: dict[str, Any], frozen_now: Any
) -> None:
    with tenant_context(opened["tenant"].id):
        rating = opened["rating_one"]
        rating.returned_at = frozen_now.at
        rating.return_reason = "请补充三会一课记录"
        session.flush()
    login(opened["tenant"], opened["secretary"])
    assert "退回原因：请补充三会一课记录" in text(client.get(url(opened)))
    assert "退回原因：请补充三会一课记录" in text(client.get(url(opened, "/recommend")))
    with tenant_context(opened["tenant"].id):
        with seeding():
            rating.step = RatingStep.DECIDED
        rating.decided_level = 4
        rating.decision_reason = "群众评价一般"
        session.flush()
    page = text(client.get(url(opened)))
    assert '<strong class="rating-decided">四星</strong>' in page and "群众评价一般" in page
    assert "退回原因" not in page and "工委已定星，待工委统一公布。" in page


# --- 荐星 ------------------------------------------------------------------------------------------------


def test_the_form_lists_every_criterion_veto_and_the_statement(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    login(opened["tenant"], opened["secretary"])
    page = text(client.get(url(opened, "/recommend")))
    for indicator in rules.branch.indicators:
        assert indicator.label in page
        for criterion in indicator.criteria:
            name = recommend.score_name(indicator.key, criterion.key)
            assert re.search(rf'name="{re.escape(name)}" min="0" max="{recommend.plain(criterion.points)}" step="0.01"',
                             page)
            assert f'name="{recommend.note_name(indicator.key, criterion.key)}"' in page
    assert "按议星会无记名测评满意率折算" in page  # a criterion's guide
    for veto in rules.branch.vetoes:
        assert veto.label in page and f'name="veto.{veto.key}" value="yes"' in page
    assert 'name="statement"' in page and 'name="version" value="1"' in page
    assert "金星 18 分以上" in page and "五星：综合得分 90 分以上" in page
    assert 'src="/static/js/recommend.js"' in page and "data-preview-url=" in page
    assert 'name="public_rate"' not in page  # these rules do not weigh public satisfaction


def test_saving_shows_the_engines_view(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules, short="21", vetoes={"major_incident": True})
    login(opened["tenant"], opened["secretary"])
    response = client.post(url(opened, "/recommend"), data={**form, "version": "1", "action": "save"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/recommend")
    page = text(client.get(url(opened, "/recommend")))
    rating = load(session, opened)
    expected = evaluate_branch(rules, engine_input(rules, form, rating))
    assert expected.level == 2 and expected.score_level == 3
    assert f'<strong class="engine-level-label">{expected.label}</strong>' in page
    assert "综合得分 79" in page
    assert '<span class="medal medal-none">无</span>' in page and '<span class="medal medal-gold">金星</span>' in page
    assert "一票否决：发生造成恶劣影响的重大事件" in page
    assert 'value="yes" checked' in page and "情况属实，详见附件" in page
    assert rating.version == 2 and 'name="version" value="2"' in page


def test_wrong_input_is_refused_with_everything_typed_kept(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules)
    first = rules.branch.indicators[0]
    cases = {
        recommend.score_name(first.key, first.criteria[0].key): ("9", "须在 0 到 6 之间"),
        recommend.score_name(first.key, first.criteria[1].key): ("-0.5", "须在 0 到 7 之间"),
        recommend.score_name(first.key, first.criteria[2].key): ("3.333", "最多保留两位小数"),
        recommend.score_name("membership", "education"): ("七分", "须为数字"),
    }
    for name, (value, _message) in cases.items():
        form[name] = value
    form[recommend.STATEMENT] = "我们认真填写的荐星说明 <b>不丢</b>"
    login(opened["tenant"], opened["branch_committee"])
    response = client.post(url(opened, "/recommend"), data={**form, "version": "1", "action": "save"})
    page = text(response)
    assert response.status_code == 400
    for name, (value, message) in cases.items():
        assert f'name="{name}"' in page and f'value="{value}"' in page and message in page
    assert "我们认真填写的荐星说明 &lt;b&gt;不丢&lt;/b&gt;" in page
    assert page.count('role="alert"') == len(cases)
    rating = load(session, opened)
    assert rating.version == 1 and rating.statement is None


def test_an_incomplete_submission_keeps_the_input_and_saves_nothing(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules)
    del form[recommend.answer_name(AnswerKind.VETO, "falsification")]
    login(opened["tenant"], opened["secretary"])
    response = client.post(url(opened, "/recommend"), data={**form, "version": "1", "action": "submit"})
    page = text(response)
    assert response.status_code == 400
    assert "还有 1 项一票否决事项未回答（未提交，也未保存；您填写的内容仍在下面）" in page
    assert "本支部全年工作扎实" in page and 'value="6"' in page
    rating = load(session, opened)
    assert rating.step is RatingStep.RECOMMEND and rating.version == 1 and rating.statement is None


def test_a_complete_submission_stores_the_engines_level(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    rules = rules_of(session, opened)
    form = full_form(rules, short="8.5")
    login(opened["tenant"], opened["secretary"])
    response = client.post(url(opened, "/recommend"), data={**form, "version": "1", "action": "submit"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url(opened))
    rating = load(session, opened)
    expected = evaluate_branch(rules, engine_input(rules, form, rating))
    assert (rating.step, rating.proposed_level, rating.proposed_total) == (
        RatingStep.DELIBERATE, expected.level, expected.weighted_total)
    page = text(client.get(url(opened, "/recommend")))
    assert "荐星已提交，当前处于“议星”环节，不能再修改" in page and "<form method=\"post\" class=\"stack" not in page
    assert "本支部全年工作扎实" in page  # shown read-only
    again = client.post(url(opened, "/recommend"), data={**form, "version": str(rating.version), "action": "save"})
    assert again.status_code == 409


def test_submitting_after_the_deadline(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    frozen_now.move(opened["round"].self_report_due_at + dt.timedelta(seconds=1))
    login(opened["tenant"], opened["secretary"])
    response = client.post(
        url(opened, "/recommend"), data={**full_form(rules_of(session, opened)), "version": "1", "action": "submit"}
    )
    assert response.status_code == 409 and "自评上报已于 1月31日 截止" in text(response)
    assert load(session, opened).step is RatingStep.RECOMMEND


def test_two_people_saving_at_once(client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    login(opened["tenant"], opened["secretary"])
    first = full_form(rules, statement="书记写的说明")
    second = full_form(rules, short=3, statement="支委写的说明")
    assert client.post(url(opened, "/recommend"), data={**first, "version": "1", "action": "save"}).status_code == 302
    _as(client, login, opened, "branch_committee")
    response = client.post(url(opened, "/recommend"), data={**second, "version": "1", "action": "save"})
    page = text(response)
    assert response.status_code == 409 and "已被他人修改" in page
    assert "当前已保存的荐星" in page and "书记写的说明" in page  # what is stored now …
    assert ">支委写的说明</textarea>" in page and 'name="version" value="2"' in page  # … and what was typed
    assert load(session, opened).statement == "书记写的说明"
    # saving again is deliberate and now wins
    assert client.post(url(opened, "/recommend"), data={**second, "version": "2", "action": "save"}).status_code == 302
    assert load(session, opened).statement == "支委写的说明"


def test_the_live_preview(client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]) -> None:
    rules = rules_of(session, opened)
    login(opened["tenant"], opened["secretary"])
    response = client.post(url(opened, "/recommend/preview"), data=full_form(rules, short=15),
                           headers={"Accept": "application/json"})
    data = response.get_json()
    assert response.status_code == 200 and data["ok"] is True and data["label"] == "四星" and data["total"] == "85"
    assert load(session, opened).version == 1
    _as(client, login, opened, "inspector")
    assert client.post(url(opened, "/recommend/preview"), data={}).status_code == 403


def test_the_public_rate_field(
    client: FlaskClient, login: Any, session: Session, frozen_now: Any,
    create_tenant: Any, create_org: Any, create_member: Any, create_account: Any,
) -> None:
    world = public_district(session, create_tenant, create_org, create_member, create_account)
    login(world["tenant"], world["secretary"])
    page = text(client.get(url(world, "/recommend")))
    assert 'name="public_rate" min="0" max="100"' in page and "占综合得分的 30%" in page
    assert "获得市级及以上表彰" in page and 'name="fact.municipal_honour"' in page
    assert "填写群众满意度并保存后" in page
    form = full_form(rules_of(session, world), public_rate="59.99")
    assert client.post(url(world, "/recommend"), data={**form, "version": "1", "action": "save"}).status_code == 302
    page = text(client.get(url(world, "/recommend")))
    assert '<strong class="engine-level-label">二星</strong>' in page and "低于 60%" in page


# --- who may do what -------------------------------------------------------------------------------------


def test_who_may_read_and_who_may_write(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    form = {**full_form(rules_of(session, opened)), "action": "save"}
    expected = {
        "member": (404, 404),
        "direct_secretary": (404, 404),  # another branch's secretary
        "inspector": (200, 403),
        "committee": (200, 403),
        "org_staff": (200, 403),
        "secretary": (200, 302),
        "branch_committee": (200, 302),
        "admin": (200, 302),
    }
    for who, (read, write) in expected.items():
        _as(client, login, opened, who)
        assert client.get(url(opened)).status_code == read, who
        assert client.get(url(opened, "/recommend")).status_code == read, who
        version = str(load(session, opened).version)
        response = client.post(url(opened, "/recommend"), data={**form, "version": version})
        assert response.status_code == write, who
        assert client.post(url(opened, "/step"), data={"transition": "x", "version": version}).status_code in (
            (write,) if write != 302 else (400,)), who
    _as(client, login, opened, "inspector")
    page = text(client.get(url(opened, "/recommend")))
    assert "荐星由本支部书记和支委填写，您可以查看" in page and "提交荐星</button>" not in page


def test_another_district_is_not_found(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any], frozen_now: Any,
    create_tenant: Any, create_org: Any, create_member: Any, create_account: Any,
) -> None:
    other = public_district(session, create_tenant, create_org, create_member, create_account)
    login(opened["tenant"], opened["admin"])
    theirs = url(other).replace(other["tenant"].slug, opened["tenant"].slug)
    for path in ("", "/recommend", "/evidence"):
        assert client.get(theirs + path).status_code == 404
    for path in ("/recommend", "/recommend/preview", "/step", "/evidence"):
        assert client.post(theirs + path, data={"version": "1", "action": "save"}).status_code == 404
    assert load(session, other).version == 1


def test_csrf_is_required(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any], csrf_enabled: Any
) -> None:
    page = text(client.get(f"/t/{opened['tenant'].slug}/login"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    login_response = client.post(
        f"/t/{opened['tenant'].slug}/login",
        data={"username": opened["secretary"].username, "password": "correct-horse-battery",
              "csrf_token": token.group(1)},
    )
    assert login_response.status_code == 302
    response = client.post(url(opened, "/recommend"), data={"version": "1", "action": "save", "statement": "x"})
    assert response.status_code == 400 and load(session, opened).version == 1
    page = text(client.get(url(opened, "/recommend")))
    assert page.count('name="csrf_token"') >= 2  # the form and the language switch


def test_pages_keep_to_the_phone_friendly_markup(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any]
) -> None:
    save(session, opened, full_form(rules_of(session, opened)))
    login(opened["tenant"], opened["secretary"])
    for path in ("", "/recommend", "/evidence"):
        page = text(client.get(url(opened, path)))
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert " style=" not in page and "<script>" not in page  # the CSP forbids inline styles and scripts
        for table in re.findall(r"<table[^>]*>.*?</table>", page, flags=re.S):
            assert 'class="table responsive' in table
            cells = re.findall(r"<td( [^>]*)?>", table)
            assert all(cell and "data-label=" in cell for cell in cells), path
        assert client.get(url(opened, path) + "?lang=en").status_code == 200  # the English side renders too
    _as(client, login, opened, "inspector")
    page = text(client.get(url(opened, "/recommend")))
    assert 'class="table responsive"' in page


def test_the_pages_run_a_fixed_number_of_queries(
    app: Any, client: FlaskClient, login: Any, session: Session, opened: dict[str, Any], engine: Any
) -> None:
    """More evidence files or answers do not mean more queries (no N+1 on the 荐星 page)."""
    from tests.support import count_queries

    login(opened["tenant"], opened["secretary"])
    counts = []
    rules = rules_of(session, opened)
    for form in ({recommend.STATEMENT: "只写了说明"}, full_form(rules, vetoes={"major_incident": True})):
        save(session, opened, form)
        pages = []
        for path in ("/recommend", "", "/evidence"):
            with count_queries(engine, only=("SELECT",)) as statements:
                assert client.get(url(opened, path)).status_code == 200
            pages.append(len(statements))
        counts.append(pages)
    assert counts[0] == counts[1], counts
    assert max(counts[0]) <= 17, counts  # 6 of them are the login's, for every page

