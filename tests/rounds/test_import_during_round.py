"""An Excel import while a member round is open: new members join it, transfers leave it (record
kept), moves follow the member — as the same changes made on the member pages do."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET
from fivestar.imports.services import import_workbook
from fivestar.imports.template import build_template
from fivestar.member_rounds.models import Evaluation, EvaluationStatus
from fivestar.people.models import Member
from fivestar.tenancy import tenant_context


def _row(no: str, name: str, branch: str, status: str = "在册") -> list[Any]:
    values = {
        "member_no": no,
        "name": name,
        "gender": "女",
        "phone": "13800000000",
        "joined_on": dt.datetime(2012, 7, 1),
        "standing": "正式",
        "branch_code": branch,
        "position": "党员",
        "status": status,
        "note": None,
    }
    return [values[column.key] for column in MEMBER_COLUMNS]


def _workbook(rows: list[list[Any]]) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(build_template()))
    for row in rows:
        book[MEMBER_SHEET].append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_import_during_an_open_round_keeps_the_round_in_step(session: Session, opened: dict[str, Any]) -> None:
    tenant, member_round = opened["tenant"], opened["round"]
    data = _workbook(
        [
            _row("N001", "新同志", "B01"),  # joins branch one
            _row("A003", "孙党员", "B01", status="已转出"),  # transferred out
            _row("B001", "李1", "B01"),  # moves from branch two to branch one
        ]
    )
    with tenant_context(tenant.id):
        report = import_workbook(session, tenant, data, file_name="名单.xlsx")
        assert report.ok, report
        session.flush()
        newcomer = session.scalar(select(Member).where(Member.member_no == "N001"))
        assert newcomer is not None
        rows = {
            member_id: (status, branch_id, joined)
            for member_id, status, branch_id, joined in session.execute(
                select(
                    Evaluation.member_id, Evaluation.status, Evaluation.branch_id, Evaluation.joined_during_round
                ).where(Evaluation.round_id == member_round.id)
            )
        }
    one, left, moved = opened["one"], opened["ones"][2], opened["twos"][0]
    assert rows[newcomer.id] == (EvaluationStatus.ACTIVE, one.id, True)
    assert rows[left.id][0] is EvaluationStatus.WITHDRAWN  # the record is kept
    assert rows[moved.id][:2] == (EvaluationStatus.ACTIVE, one.id)
