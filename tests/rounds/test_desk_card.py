"""星级桌牌: who may print a member's desk card, when, and what it shows (a real PDF, font embedded)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.enums import Role
from fivestar.kernel.rounds import seeding
from fivestar.member_rounds.models import BranchStep, Evaluation, RoundState
from fivestar.tenancy import tenant_context
from tests.rounds.test_honour import rate, set_step


@pytest.fixture
def world(session: Session, opened: dict[str, Any]) -> dict[str, Any]:
    w = dict(opened)
    ones, twos = w["ones"], w["twos"]
    rate(session, w, {ones[0]: 5, ones[1]: 3, ones[2]: 4, twos[0]: 5, twos[1]: 2, twos[2]: None})
    with tenant_context(w["tenant"].id):
        w["evaluations"] = {
            member_id: evaluation_id
            for evaluation_id, member_id in session.execute(select(Evaluation.id, Evaluation.member_id))
        }
    w["base"] = f"/t/{w['tenant'].slug}"
    return w


def card_url(w: dict[str, Any], member: Any) -> str:
    return f"{w['base']}/rounds/card/{w['evaluations'][member.id]}.pdf"


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "".join(page.extract_text() for page in reader.pages)


def test_no_card_before_the_branch_reported_its_results(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    login(world["tenant"], world["member"])
    for step in (BranchStep.SELF, BranchStep.REVIEW, BranchStep.NOTICE):
        set_step(session, world, world["one"], step)
        response = client.get(card_url(world, world["ones"][2]))
        assert response.status_code == 409, step
        assert "上报后才能打印星级桌牌" in response.get_data(as_text=True)


def test_the_member_downloads_their_own_card(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    set_step(session, world, world["one"], BranchStep.FINALISED)
    login(world["tenant"], world["member"])
    response = client.get(card_url(world, world["ones"][2]))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]  # the Chinese file name
    assert "no-store" in response.headers["Cache-Control"]
    data = response.get_data()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert width > height and abs(width - 419.5) < 1 and abs(height - 297.6) < 1  # A6 landscape in points
    text = pdf_text(data)
    assert "孙党员" in text and "四星党员" in text and "第一党支部" in text
    assert "2026年第一季度" in text and world["tenant"].name in text
    assert "规则第 1 版" in text
    # Chinese set in an embedded font: a TrueType subset, never a reference to a system font
    assert b"/FontFile2" in data
    assert re.search(rb"/BaseFont\s*/[A-Z]{6}\+WenQuanYiMicroHei", data)


def test_the_branch_and_the_committee_may_print_any_card_of_the_branch(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    set_step(session, world, world["one"], BranchStep.FINALISED)
    for who in ("secretary", "branch_committee", "committee", "admin", "inspector"):
        login(world["tenant"], world[who])
        response = client.get(card_url(world, world["ones"][0]))
        assert response.status_code == 200, who
        assert "赵书记" in pdf_text(response.get_data()) and "五星党员" in pdf_text(response.get_data())
        client.post(f"{world['base']}/logout")


def test_others_get_404(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any], create_account: Any
) -> None:
    set_step(session, world, world["one"], BranchStep.FINALISED)
    set_step(session, world, world["two"], BranchStep.FINALISED)
    # a fellow member of another branch, and the other branch's secretary
    fellow = create_account(world["tenant"], roles=[(Role.MEMBER, None)], member=world["twos"][0], username="li1")
    for account in (fellow, world["other_secretary"]):
        login(world["tenant"], account)
        assert client.get(card_url(world, world["ones"][2])).status_code == 404
        client.post(f"{world['base']}/logout")
    # a member sees their own card but not a fellow branch member's
    login(world["tenant"], world["member"])
    assert client.get(card_url(world, world["ones"][0])).status_code == 404
    assert client.get(card_url(world, world["twos"][0])).status_code == 404
    assert client.get(f"{world['base']}/rounds/card/999999.pdf").status_code == 404


def test_no_card_for_a_member_not_rated(
    client: FlaskClient, login: Any, session: Session, world: dict[str, Any]
) -> None:
    with tenant_context(world["tenant"].id):
        with seeding():
            world["round"].state = RoundState.CLOSED  # a closed round publishes every branch
        session.flush()
    login(world["tenant"], world["admin"])
    response = client.get(card_url(world, world["twos"][2]))
    assert response.status_code == 409 and "不能打印星级桌牌" in response.get_data(as_text=True)
    response = client.get(card_url(world, world["twos"][1]))
    assert response.status_code == 200 and "二星党员" in pdf_text(response.get_data())


def test_anonymous_visitors_must_log_in(client: FlaskClient, world: dict[str, Any]) -> None:
    response = client.get(card_url(world, world["ones"][2]))
    assert response.status_code == 302 and "/login" in response.headers["Location"]
