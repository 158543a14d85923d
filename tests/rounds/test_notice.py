"""The public notice as a service: which links open a notice, what it lists, filing objections."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.errors import ServiceError
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds import notice
from fivestar.member_rounds.models import BranchStep, EvaluationStatus, Objection, ObjectionState
from fivestar.tenancy import tenant_context
from tests.rounds.notice_support import BEIJING, after_notice, evaluation_of, put_on_notice


def test_a_notice_lists_active_members_with_levels_and_its_period(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    withdrawn = evaluation_of(session, opened, opened["ones"][1])
    with tenant_context(opened["tenant"].id):
        withdrawn.status = EvaluationStatus.WITHDRAWN
        session.flush()
        found = notice.find_notice(session, round_branch.notice_token or "")
        assert found is not None and found.id == round_branch.id
        view = notice.notice_view(session, found)
    assert view.branch_name == "第一党支部"
    assert view.period == "2026年第一季度"
    assert view.length == "公示期 5 个工作日"
    assert [(row.name, row.level_text) for row in view.rows] == [("赵书记", "五星"), ("孙党员", "不予评星")]
    # shown in Beijing time: from the opening morning to the end of the fifth working day
    assert view.starts == dt.datetime(2026, 4, 7, 9, 0, tzinfo=BEIJING)
    assert (view.ends.date(), view.ends.hour, view.ends.minute) == (dt.date(2026, 4, 13), 23, 59)
    assert view.running and not view.ended


@pytest.mark.parametrize("token", ["", "short", "x" * 65, "has spaces in it", "../../etc/passwd", "abcdefghijklmnop"])
def test_unknown_or_malformed_links_find_nothing(session: Session, opened: dict[str, Any], token: str) -> None:
    put_on_notice(session, opened)
    with tenant_context(opened["tenant"].id):
        assert notice.find_notice(session, token) is None


def test_a_notice_is_not_shown_before_it_starts_nor_while_the_branch_reviews_again(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    round_branch = put_on_notice(session, opened)
    token = round_branch.notice_token or ""
    with tenant_context(opened["tenant"].id):
        frozen_now.move(dt.datetime(2026, 4, 7, 8, 59, tzinfo=BEIJING))
        assert notice.find_notice(session, token) is None
        frozen_now.move(dt.datetime(2026, 4, 7, 9, 0, tzinfo=BEIJING))
        assert notice.find_notice(session, token) is not None
        with seeding():
            round_branch.step = BranchStep.REVIEW  # returned by the committee
        session.flush()
        assert notice.find_notice(session, token) is None
        with seeding():
            round_branch.step = BranchStep.FINALISED  # the record stays readable after 上报
        session.flush()
        assert notice.find_notice(session, token) is not None


def test_another_districts_link_finds_nothing(
    session: Session, opened: dict[str, Any], create_tenant: Any
) -> None:
    round_branch = put_on_notice(session, opened)
    other = create_tenant(slug="other-district")
    with tenant_context(other.id):
        assert notice.find_notice(session, round_branch.notice_token or "") is None


def test_filing_an_objection_records_it_and_audits_without_the_contact(
    session: Session, opened: dict[str, Any]
) -> None:
    round_branch = put_on_notice(session, opened)
    member = evaluation_of(session, opened, opened["ones"][0])
    with tenant_context(opened["tenant"].id):
        objection = notice.file_objection(
            session, round_branch, text="  该同志本季度多次缺席组织生活  ", filer_name="王群众",
            filer_contact="13900001111", evaluation_id=member.id,
        )
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "objection.file"))
    assert objection.state is ObjectionState.OPEN
    assert (objection.text, objection.filer_name, objection.filer_contact) == (
        "该同志本季度多次缺席组织生活", "王群众", "13900001111"
    )
    assert event is not None and event.object_id == str(objection.id)
    assert event.after is not None and event.after["evaluation_id"] == member.id
    assert "13900001111" not in str(event.after)


def test_objection_text_is_required_and_bounded(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="请填写异议内容") as empty:
            notice.file_objection(session, round_branch, text="   ")
        assert empty.value.field == "text"
        with pytest.raises(ServiceError, match="最长"):
            notice.file_objection(session, round_branch, text="长" * 2001)
        with pytest.raises(ServiceError, match="联系方式最长"):
            notice.file_objection(session, round_branch, text="有异议", filer_contact="1" * 121)
        assert session.scalar(select(Objection.id)) is None


def test_an_objection_can_only_name_a_member_on_this_notice(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    elsewhere = evaluation_of(session, opened, opened["twos"][0])
    with tenant_context(opened["tenant"].id), pytest.raises(ServiceError, match="公示名单中的党员"):
        notice.file_objection(session, round_branch, text="有异议", evaluation_id=elsewhere.id)


def test_filing_after_the_notice_ended_is_refused_with_the_end(
    session: Session, opened: dict[str, Any], frozen_now: Any
) -> None:
    round_branch = put_on_notice(session, opened)
    frozen_now.move(after_notice(round_branch))
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ServiceError, match="公示期已于 2026-04-13 23:59 结束"):
            notice.file_objection(session, round_branch, text="晚了")
        found = notice.find_notice(session, round_branch.notice_token or "")
        assert found is not None  # still readable
        view = notice.notice_view(session, found)
        assert view.ended and not view.running
        assert session.scalar(select(Objection.id)) is None


def test_filing_on_a_finalised_notice_is_refused(session: Session, opened: dict[str, Any]) -> None:
    round_branch = put_on_notice(session, opened)
    with tenant_context(opened["tenant"].id):
        with seeding():
            round_branch.step = BranchStep.FINALISED
        session.flush()
        with pytest.raises(ServiceError, match="不能提出异议"):
            notice.file_objection(session, round_branch, text="有异议")


def test_period_labels() -> None:
    assert notice.period_label("2026Q3") == "2026年第三季度"
    assert notice.period_label("2026H1") == "2026年上半年"
    assert notice.period_label("2026H2") == "2026年下半年"
    assert notice.period_label("2026") == "2026年度"
