"""Keeping member records: create, edit, move between branches, transfer out and back.

Values go through `fivestar.people.fields`, the same parsers the Excel importer uses, so a value
accepted on a form is accepted in a spreadsheet and the other way round. Edits carry the version
the user started from: if someone saved in between, the edit is refused (`fivestar.kernel.versioning`,
a 409) instead of silently overwriting their change. Services flush, never commit, and write one audit
event per change with before/after and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.enums import MemberStatus
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import events
from fivestar.kernel.versioning import UNCHECKED, Submitted, expect_version, saving
from fivestar.orgs.models import Organisation
from fivestar.people import fields
from fivestar.people.models import Member
from fivestar.tenancy import require_tenant_id

MEMBER_FIELDS = (
    "branch_id",
    "member_no",
    "name",
    "gender",
    "phone",
    "joined_on",
    "standing",
    "position",
    "status",
    "left_on",
    "note",
)
EDITABLE = ("member_no", "name", "gender", "phone", "joined_on", "standing", "position", "note")
NOTE_MAX = 2000
REASON_MAX = 500

T = TypeVar("T")


@dataclass(frozen=True)
class MemberInput:
    """What a form (or a caller) gives for a member; raw values, parsed by `clean_member_input`."""

    name: object
    gender: object
    member_no: object
    phone: object = None
    joined_on: object = None
    standing: object = None
    position: object = None
    note: object = None


def _parse(field: str, parser: Callable[[object], T], value: object) -> T:
    try:
        return parser(value)
    except fields.FieldError as exc:
        raise ServiceError(exc.message, field=field) from None


def clean_member_input(data: MemberInput) -> dict[str, Any]:
    """Parse every field or refuse with the first problem, naming the field."""
    note = ("" if data.note is None else str(data.note)).strip()
    if len(note) > NOTE_MAX:
        raise ServiceError(_("备注最长 %(n)d 个字", n=NOTE_MAX), field="note")
    return {
        "name": _parse("name", fields.parse_name, data.name),
        "gender": _parse("gender", fields.parse_gender, data.gender),
        "member_no": _parse("member_no", fields.parse_member_no, data.member_no),
        "phone": _parse("phone", fields.parse_phone, data.phone),
        "joined_on": _parse("joined_on", fields.parse_date, data.joined_on),
        "standing": _parse("standing", fields.parse_standing, data.standing),
        "position": _parse("position", fields.parse_position, "" if data.position is None else data.position),
        "note": note or None,
    }


def _clean_reason(reason: str | None, *, required: bool, message: str | None = None) -> str | None:
    text = (reason or "").strip()
    if not text:
        if required:
            raise ServiceError(message or _("请填写原因"), field="reason")
        return None
    if len(text) > REASON_MAX:
        raise ServiceError(_("原因最长 %(n)d 个字", n=REASON_MAX), field="reason")
    return text


def _snapshot(member: Member, names: tuple[str, ...] = MEMBER_FIELDS) -> dict[str, Any]:
    return audit.snapshot(member, names)


def _member_no_taken(session: Session, member_no: str, *, except_id: int | None = None) -> bool:
    statement = select(Member.id).where(Member.member_no == member_no)
    if except_id is not None:
        statement = statement.where(Member.id != except_id)
    return session.scalar(statement.limit(1)) is not None


def _taken_message(member_no: str) -> str:
    return _("党员编号 %(no)s 已被其他党员使用，请核对", no=member_no)


def _check_branch(branch: Organisation, *, field: str = "branch_id") -> None:
    if not branch.kind.holds_members:
        raise ServiceError(_("党员只能编入党支部或离退休支部"), field=field)
    if not branch.active:
        raise ServiceError(_("所选支部已停用"), field=field)


def _check_version(member: Member, version: Submitted) -> None:
    expect_version(member, version, message=_stale_message())


def _stale_message() -> str:
    return _("该党员信息已被他人修改（您打开后有新的保存）。您填写的内容仍保留在下方，请核对最新信息后再保存。")


@contextmanager
def _writing(session: Session, member_no: str) -> Iterator[None]:
    """Make the changes of the block in a savepoint and flush them.

    A number taken by a concurrent request, or a concurrent save of the same member (the version
    column no longer matches), becomes a message instead of a 500, and the session stays usable
    (the savepoint is rolled back and loaded objects are expired, as SQLAlchemy documents).
    """
    try:
        with saving(session, message=_stale_message()):
            yield
    except IntegrityError:
        raise ServiceError(_taken_message(member_no), field="member_no") from None


def create_member(session: Session, branch: Organisation, data: MemberInput) -> Member:
    """Add a member to a branch (or retirees' branch) of the current tenant."""
    require_tenant_id()
    values = clean_member_input(data)
    _check_branch(branch)
    if _member_no_taken(session, values["member_no"]):
        raise ServiceError(_taken_message(values["member_no"]), field="member_no")
    member = Member(branch_id=branch.id, status=MemberStatus.ACTIVE, **values)
    with _writing(session, values["member_no"]):
        session.add(member)
    audit.record(session, "member.create", member, after=_snapshot(member))
    events.member_joined.send(member, session=session)
    return member


def update_member(session: Session, member: Member, data: MemberInput, *, version: Submitted) -> Member:
    """Change the office's facts about a member (not the branch or status: those have their own steps)."""
    require_tenant_id()
    _check_version(member, version)
    values = clean_member_input(data)
    if values["member_no"] != member.member_no and _member_no_taken(session, values["member_no"], except_id=member.id):
        raise ServiceError(_taken_message(values["member_no"]), field="member_no")
    changed = {name: value for name, value in values.items() if getattr(member, name) != value}
    if not changed:
        raise ServiceError(_("没有需要保存的修改"))
    before = _snapshot(member, tuple(changed))
    with _writing(session, values["member_no"]):
        for name, value in changed.items():
            setattr(member, name, value)
    audit.record(session, "member.update", member, before=before, after=_snapshot(member, tuple(changed)))
    return member


def move_member(
    session: Session, member: Member, new_branch: Organisation, *, reason: str | None, version: Submitted = UNCHECKED
) -> Member:
    """Move a member to another branch of the tenant; the reason is required and recorded. The roles their
    account held only for the branch they left are revoked (a receiver of `events.member_moved` in
    fivestar.accounts.reactions)."""
    require_tenant_id()
    _check_version(member, version)
    text = _clean_reason(reason, required=True, message=_("调整支部须填写原因"))
    if not member.is_active:
        raise ServiceError(_("已转出的党员不能调整支部，请先恢复在册"))
    _check_branch(new_branch)
    if new_branch.id == member.branch_id:
        raise ServiceError(_("该党员已在所选支部"), field="branch_id")
    before = _snapshot(member, ("branch_id",))
    old_branch_id = member.branch_id
    with _writing(session, member.member_no):
        member.branch_id = new_branch.id
    session.expire(member, ["branch"])
    audit.record(session, "member.move", member, before=before, after=_snapshot(member, ("branch_id",)), reason=text)
    events.member_moved.send(member, session=session, old_branch_id=old_branch_id, reason=text)
    return member


def transfer_out(
    session: Session, member: Member, *, left_on: object, reason: str | None, version: Submitted = UNCHECKED
) -> Member:
    """Record that a member left (组织关系转出): the record stays, marked `transferred_out`."""
    require_tenant_id()
    _check_version(member, version)
    if not member.is_active:
        raise ServiceError(_("该党员已转出"))
    day = _parse("left_on", lambda value: fields.parse_date(value, allow_empty=False), left_on)
    assert day is not None
    if member.joined_on is not None and day < member.joined_on:
        raise ServiceError(_("转出日期不能早于入党日期 %(day)s", day=member.joined_on.isoformat()), field="left_on")
    text = _clean_reason(reason, required=True, message=_("转出须填写原因"))
    before = _snapshot(member, ("status", "left_on"))
    with _writing(session, member.member_no):
        member.status = MemberStatus.TRANSFERRED_OUT
        member.left_on = day
    after = _snapshot(member, ("status", "left_on"))
    audit.record(session, "member.transfer_out", member, before=before, after=after, reason=text)
    events.member_left.send(member, session=session, reason=text)
    return member


def reactivate_member(
    session: Session,
    member: Member,
    *,
    reason: str | None,
    branch: Organisation | None = None,
    version: Submitted = UNCHECKED,
) -> Member:
    """Put a transferred-out member back on the roll, in their old branch or in `branch`.

    A member who comes back may join another branch, and their old one may have been stopped
    meanwhile, so the branch can be chosen here (a transferred-out member cannot be moved).
    """
    require_tenant_id()
    _check_version(member, version)
    if member.is_active:
        raise ServiceError(_("该党员在册，无需恢复"))
    text = _clean_reason(reason, required=True, message=_("恢复在册须填写原因"))
    if branch is None:
        branch = session.scalar(select(Organisation).where(Organisation.id == member.branch_id))
    if branch is None:
        raise ServiceError(_("请选择支部"), field="branch_id")
    _check_branch(branch)
    names = ("status", "left_on", "branch_id")
    before = _snapshot(member, names)
    with _writing(session, member.member_no):
        member.status = MemberStatus.ACTIVE
        member.left_on = None
        member.branch_id = branch.id
    session.expire(member, ["branch"])
    audit.record(session, "member.reactivate", member, before=before, after=_snapshot(member, names), reason=text)
    events.member_joined.send(member, session=session)
    return member


__all__ = [
    "EDITABLE",
    "MemberInput",
    "clean_member_input",
    "create_member",
    "move_member",
    "reactivate_member",
    "transfer_out",
    "update_member",
]
