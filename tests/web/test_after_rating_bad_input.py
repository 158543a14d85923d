"""Bad input from outside against the after-the-rating pages (standing, improvement, overview, home).

An external prober's table: missing and empty fields, whitespace, 100 000 characters, non-numeric,
huge and negative numbers, impossible dates, levels and enum values out of range, unknown query
parameters, stale versions, a replayed confirmation, no CSRF token, bad uploads, GET on POST-only
routes, another district's ids and another branch's for a secretary. Every answer is a 4xx (or the page
ignoring an unknown parameter) with a message in Chinese, nothing is written by a refusal (rows and
audit events counted before and after), and nothing is logged as an unhandled error.

Found by these probes and fixed: a 20-digit id in any route's `<int:…>` (500: SQLite OverflowError,
PostgreSQL integer out of range), `?event=`/`event_id` of 20 digits or `²` on the adjustment form,
`?year=²` on the plans, `?round=²` on the follow-ups (500: `int('²')`), a NUL character in a text
field (500 on PostgreSQL, which cannot store it); dates of year 1, 1900 or 9999 saved as deadlines,
meetings and events; an empty progress saved as "no change" with an audit event.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from fivestar.improvement import services as plan_services
from fivestar.kernel.rounds import seeding  # noqa: F401 - keeps the workflows declared
from fivestar.standing.models import StandingEvent
from fivestar.tenancy import tenant_context
from tests.branch.conftest import district, frozen_now, published  # noqa: F401 - the branch fixtures
from tests.branch.improvement_support import fill_items, with_plans
from tests.branch.publication_support import ONE_TOTALS, Decided, build_round
from tests.branch.test_standing_pages import _history_rows

HUGE = "99999999999999999999"
LONG = "长" * 100_000
JS_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\nendobj\n%%EOF\n"
TABLES = (
    "audit_events",
    "level_adjustments",
    "level_history",
    "adjustment_files",
    "standing_events",
    "improvement_plans",
    "improvement_items",
    "acceptance_reviews",
    "acceptance_findings",
    "improvement_files",
)
QUESTIONS = ("carried_out", "problems_solved", "study", "service", "innovation", "satisfaction")
CHINESE = ("请", "不", "无", "已", "有误", "页面", "应", "最长")


def _counts(session: Session) -> dict[str, int]:
    return {table: int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()) for table in TABLES}  # noqa: S608


def _page(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _version(page: str) -> str:
    return page.split('name="version" type="hidden" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def world(
    session: Session,
    published: dict[str, Any],  # noqa: F811 - the branch fixture imported above
    frozen_now: Any,  # noqa: F811
    client: FlaskClient,
    login: Any,
) -> Any:
    """`published` with the 2024 levels in the history, both plans (`one`'s a draft with filled items,
    `direct`'s published), an open mid-year event on a member of `one`, and the administrator logged in."""
    built = with_plans(session, published)
    _history_rows(session, built)
    items = fill_items(session, built, built["plan_one"])
    fill_items(session, built, built["plan_direct"])
    with tenant_context(built["tenant"].id):
        plan_services.publish(session, built["plan_direct"], version=built["plan_direct"].version)
    session.commit()
    login(built["tenant"], built["admin"])
    base = f"/t/{built['tenant'].slug}"
    recorded = client.post(
        f"{base}/standing/members/{built['members'][2].id}/events/new",
        data={"kind": "sanction", "occurred_on": "2025-05-01", "note": "年中受到党内警告处分"},
    )
    assert recorded.status_code in (302, 303), _page(recorded)[:2000]
    with tenant_context(built["tenant"].id):
        event = session.scalar(select(StandingEvent))
    assert event is not None
    return {**built, "base": base, "item": items[0], "event": event, "rated_member": built["members"][2]}


def _adjust(**overrides: str) -> dict[str, str]:
    data = {
        "to_level": "2",
        "cause": "other",
        "veto_key": "",
        "reason": "年中巡察发现党建工作严重滑坡",
        "meeting_name": "工委2026年第3次会议",
        "meeting_date": "2025-03-01",
        "event_id": "",
    }
    data.update(overrides)
    return data


def _review(**overrides: str) -> dict[str, str]:
    data = {f"verdict_{key}": "met" for key in QUESTIONS} | {"outcome": "keep", "rectify_by": "", "summary": "好"}
    data.update(overrides)
    return data


# --- GET: ids and query parameters ------------------------------------------------------------------------------

# (path, expected statuses): `{one}`, `{member}`, `{plan}`, `{published}`, `{item}`, `{event}` are filled in.
GETS = [
    ("/", {200}),
    ("/standing/", {200}),
    ("/standing/branches/{one}/", {200}),
    ("/standing/members/{member}/", {200}),
    ("/standing/branches/{one}/adjust", {200}),
    ("/standing/members/{member}/adjust", {200}),
    ("/standing/branches/{one}/events/new", {200}),
    ("/standing/prompts/{event}", {200}),
    ("/improvement/", {200, 400}),
    ("/improvement/plans/{plan}", {200}),
    ("/improvement/plans/{plan}/publish", {200}),
    ("/improvement/plans/{plan}/items/{item}/edit", {200}),
    ("/improvement/plans/{published}/review", {200}),
    ("/improvement/public/", {200}),
    ("/improvement/public/plans/{published}", {200}),
    ("/overview/", {200}),
    ("/overview/advanced", {200}),
    ("/overview/advanced.xlsx", {200}),
    ("/overview/chart.xlsx", {404}),
    ("/overview/followups", {200}),
    ("/overview/followups/branches/{one}", {200}),
]
QUERIES = [
    "?round=abc",
    f"?round={HUGE}",
    "?round=²",
    "?round=-1",
    "?chart=../../x",
    "?year=-1",
    f"?year={HUGE}",
    "?year=²",
    "?year=0000",
    f"?event={HUGE}",
    "?event=²",
    "?event=abc",
    "?event=-1",
    f"?page={HUGE}",
    "?lang=xx",
]


def _fill(world: dict[str, Any], path: str) -> str:
    return world["base"] + path.format(
        one=world["one"].id,
        member=world["rated_member"].id,
        plan=world["plan_one"].id,
        published=world["plan_direct"].id,
        item=world["item"].id,
        event=world["event"].id,
    )


def test_unknown_and_malformed_query_parameters_never_fail(
    client: FlaskClient, world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    failures = []
    for path, allowed in GETS:
        for query in ["", *QUERIES]:
            response = client.get(_fill(world, path) + query)
            expected = allowed | {400, 404} if query else allowed
            if response.status_code not in expected:
                failures.append(f"{response.status_code} GET {path}{query}")
            elif response.status_code >= 400:
                assert any(word in _page(response) for word in CHINESE), (path, query, _page(response)[:500])
    assert failures == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_the_year_and_round_parameters_are_read_as_ascii_ids(client: FlaskClient, world: dict[str, Any]) -> None:
    base = world["base"]
    year = client.get(f"{base}/improvement/?year=²")  # was a 500: '²'.isdigit() but int('²') fails
    assert year.status_code == 400 and "年度应为四位数字" in _page(year)
    assert client.get(f"{base}/overview/followups?round=²").status_code == 200  # was 500; ignored now
    assert client.get(f"{base}/overview/followups?round={HUGE}").status_code == 200  # was 500
    adjust = f"{base}/standing/branches/{world['one'].id}/adjust"
    assert client.get(f"{adjust}?event=²").status_code == 200  # was 500
    assert client.get(f"{adjust}?event={HUGE}").status_code == 200  # was 500
    assert client.get(f"{adjust}?event=2147483647").status_code == 404  # an id, none such


HUGE_IDS = [
    ("GET", "/standing/branches/{id}/"),
    ("GET", "/standing/members/{id}/"),
    ("GET", "/standing/branches/{id}/adjust"),
    ("GET", "/standing/prompts/{id}"),
    ("GET", "/standing/files/{id}"),
    ("GET", "/improvement/plans/{id}"),
    ("GET", "/improvement/plans/{id}/review"),
    ("GET", "/improvement/files/{id}"),
    ("GET", "/improvement/public/plans/{id}"),
    ("GET", "/overview/followups/branches/{id}"),
    ("POST", "/standing/branches/{id}/adjust"),
    ("POST", "/standing/branches/{id}/adjust/confirm"),
    ("POST", "/standing/members/{id}/events/new"),
    ("POST", "/standing/prompts/{id}/dismiss"),
    ("POST", "/improvement/rounds/{id}/plans"),
    ("POST", "/improvement/plans/{id}/goal"),
    ("POST", "/improvement/plans/{id}/items"),
    ("POST", "/improvement/plans/{id}/publish"),
    ("POST", "/improvement/files/{id}/delete"),
]


@pytest.mark.parametrize("number", [HUGE, "2147483648", "0"])
def test_an_id_beyond_the_columns_range_is_a_404(
    client: FlaskClient, world: dict[str, Any], session: Session, number: str
) -> None:
    before = _counts(session)
    for method, path in HUGE_IDS:
        response = client.open(world["base"] + path.format(id=number), method=method, data={})
        # was a 500 for 20 digits; a POST whose URL has a GET twin may answer 405 (no rule matched the id)
        assert response.status_code in (404, 405), (method, path, response.status_code)
        assert "页面不存在" in _page(response) or "不支持此操作方式" in _page(response)
    assert _counts(session) == before


# --- POST: the forms' fields -------------------------------------------------------------------------------------

BAD_VALUES = ["", "   ", LONG, "abc", HUGE, "-1", "2026-02-30", "0000-01-01", "9999-12-31", "²", "7", "unknown"]


def _posts(world: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(path, a form refused for two reasons): each field is replaced in turn by every bad value, so the
    answer stays a refusal whichever one is changed."""
    one, member, plan, item = world["one"].id, world["rated_member"].id, world["plan_one"], world["item"]
    return [
        (f"/standing/branches/{one}/adjust", _adjust(version="1", to_level="9")),
        (f"/standing/branches/{one}/adjust/confirm", _adjust(version="1", to_level="9")),
        (f"/standing/members/{member}/adjust/confirm", _adjust(version="1", to_level="8")),
        (f"/standing/members/{member}/events/new", {"kind": "honour", "occurred_on": "2999-04-01", "note": ""}),
        (f"/standing/prompts/{world['event'].id}/dismiss", {"reason": "", "version": "999999"}),
        (f"/improvement/plans/{plan.id}/goal", {"goal": LONG, "version": "999"}),
        (f"/improvement/plans/{plan.id}/items", {"problem": "", "measure": "", "owner": "", "deadline": "x"}),
        (
            f"/improvement/plans/{plan.id}/items/{item.id}/edit",
            {"problem": "p", "measure": "m", "owner": LONG, "deadline": "2025-06-30", "status": "done", "version": "0"},
        ),
        (f"/improvement/plans/{plan.id}/items/{item.id}/status", {"status": "bogus", "version": str(item.version)}),
        (
            f"/improvement/plans/{world['plan_direct'].id}/review",
            _review(outcome="rectify", verdict_study="bogus", version="0"),
        ),
    ]


def test_bad_form_values_are_refused_in_chinese_and_write_nothing(
    client: FlaskClient, world: dict[str, Any], session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """Each base form is itself refused (a bad level, a stale version, a missing field), so whatever
    one field is changed to, the answer is a 4xx and no row or audit event appears."""
    caplog.set_level(logging.ERROR)
    before = _counts(session)
    failures = []
    for path, valid in _posts(world):
        for field in [*valid, "confirmed"]:
            for value in BAD_VALUES:
                response = client.post(_fill(world, path), data={**valid, field: value})
                if not 400 <= response.status_code < 500:
                    failures.append(f"{response.status_code} {path} {field}={value[:20]!r}")
                elif not any(word in _page(response) for word in CHINESE):
                    failures.append(f"no message {path} {field}={value[:20]!r}")
        empty = client.post(_fill(world, path), data={})
        assert 400 <= empty.status_code < 500, (path, empty.status_code)
    assert failures == []
    assert _counts(session) == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_nul_character_is_refused_before_it_reaches_the_database(
    client: FlaskClient, world: dict[str, Any], session: Session
) -> None:
    before = _counts(session)
    plan = world["plan_one"]
    for path, data in [
        (f"/improvement/plans/{plan.id}/items", {"problem": "a\x00b", "measure": "m", "owner": "o", "status": ""}),
        (f"/improvement/plans/{plan.id}/goal", {"goal": "\x00", "version": str(plan.version)}),
        (
            f"/standing/branches/{world['one'].id}/events/new",
            {"kind": "veto", "occurred_on": "2025-05-01", "note": "\x00"},
        ),
    ]:
        response = client.post(_fill(world, path), data=data)  # was a 500 on PostgreSQL (items)
        assert response.status_code == 400 and "控制字符" in _page(response), path
    assert client.get(world["base"] + "/improvement/?year=\x00").status_code == 400
    assert _counts(session) == before


def test_a_replayed_confirmation_records_once(client: FlaskClient, world: dict[str, Any], session: Session) -> None:
    base, one = world["base"], world["one"].id
    data = _adjust(version=_version(_page(client.get(f"{base}/standing/branches/{one}/adjust"))))
    first = client.post(f"{base}/standing/branches/{one}/adjust/confirm", data=data)
    assert first.status_code in (302, 303), _page(first)[:2000]
    after_first = _counts(session)
    again = client.post(f"{base}/standing/branches/{one}/adjust/confirm", data=data)
    assert again.status_code == 409 and "请" in _page(again)
    assert _counts(session) == after_first and after_first["level_adjustments"] == 1

    plan = world["plan_direct"]
    review = f"{base}/improvement/plans/{plan.id}/review"
    data = _review(version=str(plan.version), confirmed="1")
    assert client.post(review, data=data).status_code == 303
    recorded = _counts(session)
    replay = client.post(review, data=data)
    assert replay.status_code == 409 and _counts(session) == recorded

    draft = world["plan_one"]
    publish = f"{base}/improvement/plans/{draft.id}/publish"
    assert client.post(publish, data={"version": str(draft.version)}).status_code == 303
    once = _counts(session)
    assert client.post(publish, data={"version": str(draft.version)}).status_code == 409
    assert _counts(session) == once


def test_implausible_dates_are_refused_with_the_range(
    client: FlaskClient, world: dict[str, Any], session: Session
) -> None:
    """Dates that parse but cannot be meant (year 1, 1900, 9999) were saved as given."""
    base, one, plan = world["base"], world["one"].id, world["plan_one"]
    before = _counts(session)
    version = _version(_page(client.get(f"{base}/standing/branches/{one}/adjust")))
    for day in ("1900-01-01", "0001-01-01"):
        meeting = client.post(f"{base}/standing/branches/{one}/adjust", data=_adjust(version=version, meeting_date=day))
        assert meeting.status_code == 400 and "日期不能早于 2000-01-01" in _page(meeting)  # was the confirmation
        event = client.post(
            f"{base}/standing/members/{world['rated_member'].id}/events/new",
            data={"kind": "honour", "occurred_on": day, "note": "受到表彰"},
        )
        assert event.status_code == 400 and "日期不能早于" in _page(event)  # was recorded
    for day in ("0001-01-01", "9999-12-31"):
        item = client.post(
            f"{base}/improvement/plans/{plan.id}/items",
            data={"problem": "问题", "measure": "措施", "owner": "赵书记", "deadline": day, "status": "not_started"},
        )
        assert item.status_code == 400 and "完成时限应在 2000-01-01 至 2099-12-31 之间" in _page(item)  # was added
    direct = world["plan_direct"]
    review = client.post(
        f"{base}/improvement/plans/{direct.id}/review",
        data=_review(outcome="rectify", rectify_by="9999-12-31", version=str(direct.version), confirmed="1"),
    )
    assert review.status_code == 400 and "整改期限不能晚于 2099-12-31" in _page(review)  # was recorded
    assert _counts(session) == before


def test_an_empty_progress_is_refused_not_saved_as_no_change(
    client: FlaskClient, world: dict[str, Any], session: Session
) -> None:
    """On a published plan an empty status used to answer "已更新进度" with an audit event of no change."""
    plan = world["plan_direct"]
    with tenant_context(world["tenant"].id):
        item = plan_services.items_of(session, plan.id)[0]
    before = _counts(session)
    address = f"{world['base']}/improvement/plans/{plan.id}/items/{item.id}"
    status = client.post(f"{address}/status", data={"status": "", "version": str(item.version)})
    assert status.status_code == 400 and "请求有误" in _page(status)
    edit = client.post(f"{address}/edit", data={"status": "", "version": str(item.version)})
    assert edit.status_code == 400 and "请选择进度" in _page(edit)
    assert _counts(session) == before
    done = client.post(f"{address}/status", data={"status": "done", "version": str(item.version)})
    assert done.status_code == 303 and _counts(session)["audit_events"] == before["audit_events"] + 1


ROLES = ("committee", "org_staff", "secretary", "branch_committee", "member", "direct_secretary", "inspector")


def test_every_role_reads_or_is_refused_and_no_refused_form_writes(
    client: FlaskClient, world: dict[str, Any], session: Session, login: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Each role on each page: 200, 403 or 404, never a 5xx; the refused forms stay refused whoever sends them."""
    caplog.set_level(logging.ERROR)
    before = _counts(session)
    failures = []
    for role in ROLES:
        client.post(f"{world['base']}/logout")
        login(world["tenant"], world[role])
        for path, _allowed in GETS:
            if (status := client.get(_fill(world, path)).status_code) not in (200, 403, 404):
                failures.append(f"{role} {status} GET {path}")
        for path, data in _posts(world):
            if not 400 <= (status := client.post(_fill(world, path), data=data).status_code) < 500:
                failures.append(f"{role} {status} POST {path}")
    assert failures == []
    assert _counts(session) == before
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- CSRF, methods, uploads ---------------------------------------------------------------------------------------


def test_posts_without_a_csrf_token_are_refused(
    client: FlaskClient, world: dict[str, Any], session: Session, csrf_enabled: None
) -> None:
    before = _counts(session)
    for path, valid in _posts(world):
        response = client.post(_fill(world, path), data=valid)
        assert response.status_code == 400 and "表单已过期" in _page(response), path
    for path in ["/improvement/rounds/{one}/plans", "/improvement/plans/{plan}/publish"]:
        assert client.post(_fill(world, path), data={"version": "1"}).status_code == 400
    assert _counts(session) == before


POST_ONLY = [
    "/standing/branches/{one}/adjust/confirm",
    "/standing/members/{member}/adjust/confirm",
    "/standing/prompts/{event}/dismiss",
    "/improvement/rounds/{one}/plans",
    "/improvement/plans/{plan}/goal",
    "/improvement/plans/{plan}/items",
    "/improvement/plans/{plan}/items/{item}/status",
    "/improvement/plans/{plan}/items/{item}/remove",
    "/improvement/plans/{plan}/items/{item}/files",
    "/improvement/plans/{published}/review/files",
]


def test_get_on_a_post_only_route_is_a_405_in_chinese(client: FlaskClient, world: dict[str, Any]) -> None:
    for path in POST_ONLY:
        response = client.get(_fill(world, path))
        assert response.status_code == 405 and "不支持此操作方式" in _page(response), path


@pytest.mark.parametrize(
    ("name", "content"),
    [("空.pdf", b""), ("说明.pdf", b"MZ\x90\x00 not a pdf"), ("脚本.pdf", JS_PDF), ("x.exe", b"MZ\x90\x00")],
)
def test_bad_uploads_are_refused_and_store_nothing(
    client: FlaskClient, world: dict[str, Any], session: Session, name: str, content: bytes
) -> None:
    before = _counts(session)
    base, plan, item = world["base"], world["plan_one"], world["item"]
    addresses = [
        f"{base}/improvement/plans/{plan.id}/items/{item.id}/files",
        f"{base}/improvement/plans/{world['plan_direct'].id}/review/files",
    ]
    for address in addresses:
        response = client.post(address, data={"files": (io.BytesIO(content), name)}, content_type="multipart/form-data")
        assert 400 <= response.status_code < 500, (address, response.status_code)
        assert any(word in _page(response) for word in (*CHINESE, "文件")), address
    adjust = f"{base}/standing/branches/{world['one'].id}/adjust"
    version = _version(_page(client.get(adjust)))  # a valid adjustment: only the file is refused, after it
    confirm = client.post(
        f"{adjust}/confirm",
        data={**_adjust(version=version), "files": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )
    assert 400 <= confirm.status_code < 500
    assert _counts(session) == before


# --- other districts, other branches -----------------------------------------------------------------------------


def test_another_districts_ids_and_another_branchs_for_a_secretary_are_404(
    client: FlaskClient,
    world: dict[str, Any],
    session: Session,
    login: Any,
    create_tenant: Any,
    create_org: Any,
) -> None:
    other = create_tenant(slug="probe-other", name="另一个工委")
    branch = create_org(other, OrgKind.BRANCH, name="他区党支部", code="X01")
    other_round, _ratings = build_round(session, other, year=2024, decisions=[Decided(branch, 4, ONE_TOTALS)])
    with tenant_context(other.id):
        plan_services.create_plans_for_round(session, other_round)
        session.flush()
    session.commit()
    foreign_plan = foreign_plans(session, other)[0]
    foreign_ids = {"one": branch.id, "plan": foreign_plan, "round": other_round.id}
    before = _counts(session)
    for method, path in [
        ("GET", "/standing/branches/{one}/"),
        ("GET", "/standing/branches/{one}/adjust"),
        ("POST", "/standing/branches/{one}/adjust/confirm"),
        ("POST", "/standing/branches/{one}/events/new"),
        ("GET", "/improvement/plans/{plan}"),
        ("POST", "/improvement/plans/{plan}/goal"),
        ("GET", "/improvement/plans/{plan}/review"),
        ("GET", "/improvement/public/plans/{plan}"),
        ("POST", "/improvement/rounds/{round}/plans"),
        ("GET", "/overview/followups/branches/{one}"),
    ]:
        response = client.open(world["base"] + path.format(**foreign_ids), method=method, data=_adjust(version="1"))
        assert response.status_code == 404, (method, path, response.status_code)

    client.post(f"{world['base']}/logout")
    login(world["tenant"], world["direct_secretary"])
    direct_ids = {"one": world["one"].id, "plan": world["plan_one"].id, "item": world["item"].id}
    for method, path in [
        ("GET", "/standing/branches/{one}/"),
        ("GET", "/improvement/plans/{plan}"),
        ("POST", "/improvement/plans/{plan}/goal"),
        ("POST", "/improvement/plans/{plan}/items/{item}/edit"),
        ("GET", "/overview/followups/branches/{one}"),
    ]:
        response = client.open(world["base"] + path.format(**direct_ids), method=method, data={"goal": "x"})
        assert response.status_code == 404, (method, path, response.status_code)
    assert _counts(session) == before


def foreign_plans(session: Session, tenant: Any) -> list[int]:
    from fivestar.improvement.models import ImprovementPlan

    with tenant_context(tenant.id):
        return list(session.scalars(select(ImprovementPlan.id)))


def test_too_many_files_or_one_bad_among_good_ones_store_nothing(
    client: FlaskClient, world: dict[str, Any], session: Session
) -> None:
    from tests.branch.test_improvement_pages import _png

    before = _counts(session)
    base, plan, item = world["base"], world["plan_one"], world["item"]
    address = f"{base}/improvement/plans/{plan.id}/items/{item.id}/files"
    for files in (
        [(io.BytesIO(_png()), f"{n}.png") for n in range(21)],
        [(io.BytesIO(_png()), "好.png"), (io.BytesIO(JS_PDF), "坏.pdf")],
        [],
    ):
        response = client.post(address, data={"files": files}, content_type="multipart/form-data")
        assert response.status_code == 400, len(files)
    one = world["one"].id
    version = _version(_page(client.get(f"{base}/standing/branches/{one}/adjust")))
    eleven = [(io.BytesIO(_png()), f"{n}.png") for n in range(11)]
    confirm = client.post(
        f"{base}/standing/branches/{one}/adjust/confirm",
        data={**_adjust(version=version), "files": eleven},
        content_type="multipart/form-data",
    )
    assert confirm.status_code == 400  # the adjustment itself was valid: it is rolled back with the files
    assert _counts(session) == before
