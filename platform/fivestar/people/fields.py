"""Parsing and checking the fields an office keeps about a member.

Shared by the web forms, the services and the Excel importer so that a value accepted in one place
is accepted everywhere. Parsers accept what clerks type (Chinese labels, common variants) and
return the stored value, or raise `FieldError` with a message in the user's language.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TypeVar

from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
from fivestar.i18n import _

_V = TypeVar("_V")


class FieldError(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_GENDER = {
    "男": Gender.MALE,
    "女": Gender.FEMALE,
    "male": Gender.MALE,
    "female": Gender.FEMALE,
    "m": Gender.MALE,
    "f": Gender.FEMALE,
}
_STANDING = {
    "正式": Standing.FULL,
    "正式党员": Standing.FULL,
    "预备": Standing.PROBATIONARY,
    "预备党员": Standing.PROBATIONARY,
    "full": Standing.FULL,
    "probationary": Standing.PROBATIONARY,
}
_POSITION = {
    "书记": Position.SECRETARY,
    "支部书记": Position.SECRETARY,
    "副书记": Position.DEPUTY_SECRETARY,
    "支委": Position.COMMITTEE_MEMBER,
    "支部委员": Position.COMMITTEE_MEMBER,
    "组织委员": Position.COMMITTEE_MEMBER,
    "宣传委员": Position.COMMITTEE_MEMBER,
    "纪检委员": Position.COMMITTEE_MEMBER,
    "党员": Position.MEMBER,
    "": Position.MEMBER,
    "secretary": Position.SECRETARY,
    "deputy_secretary": Position.DEPUTY_SECRETARY,
    "committee_member": Position.COMMITTEE_MEMBER,
    "member": Position.MEMBER,
}
_STATUS = {
    "在册": MemberStatus.ACTIVE,
    "正常": MemberStatus.ACTIVE,
    "": MemberStatus.ACTIVE,
    "已转出": MemberStatus.TRANSFERRED_OUT,
    "转出": MemberStatus.TRANSFERRED_OUT,
    "active": MemberStatus.ACTIVE,
    "transferred_out": MemberStatus.TRANSFERRED_OUT,
}
_ORG_KIND = {
    "工委": OrgKind.COMMITTEE,
    "机关党委": OrgKind.PARTY_COMMITTEE,
    "党委": OrgKind.PARTY_COMMITTEE,
    "党总支": OrgKind.GENERAL_BRANCH,
    "总支": OrgKind.GENERAL_BRANCH,
    "党支部": OrgKind.BRANCH,
    "支部": OrgKind.BRANCH,
    "离退休支部": OrgKind.RETIREE_BRANCH,
    "离退休党支部": OrgKind.RETIREE_BRANCH,
    **{kind.value: kind for kind in OrgKind},
}

MEMBER_NO_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
PHONE_PATTERN = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$")


def _clean(value: object) -> str:
    return "" if value is None else str(value).strip()


def _lookup(table: Mapping[str, _V], value: object, message: str) -> _V:
    key = _clean(value)
    found = table.get(key, table.get(key.lower()))
    if found is None:
        raise FieldError(message)
    return found


def parse_gender(value: object) -> Gender:
    return _lookup(_GENDER, value, _("性别须为“男”或“女”"))


def parse_standing(value: object) -> Standing:
    if _clean(value) == "":
        return Standing.FULL
    return _lookup(_STANDING, value, _("党员类别须为“正式”或“预备”"))


def parse_position(value: object) -> Position:
    return _lookup(_POSITION, value, _("职务须为书记、副书记、支委或党员"))


def parse_status(value: object) -> MemberStatus:
    return _lookup(_STATUS, value, _("状态须为“在册”或“已转出”"))


def parse_org_kind(value: object) -> OrgKind:
    return _lookup(_ORG_KIND, value, _("组织类型须为机关党委、党总支、党支部或离退休支部"))


def parse_member_no(value: object) -> str:
    text = _clean(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text:
        raise FieldError(_("党员编号不能为空"))
    if not MEMBER_NO_PATTERN.match(text):
        raise FieldError(_("党员编号只能包含字母、数字、下划线和连字符，最长 40 位"))
    return text


def parse_name(value: object, *, max_length: int = 60) -> str:
    text = re.sub(r"\s+", " ", _clean(value))
    if not text:
        raise FieldError(_("姓名不能为空"))
    if len(text) > max_length:
        raise FieldError(_("姓名最长 %(n)d 个字", n=max_length))
    return text


def parse_phone(value: object) -> str | None:
    text = _clean(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    text = text.replace(" ", "").replace("＋", "+").removeprefix("+86")
    if not text:
        return None
    if not PHONE_PATTERN.match(text):
        raise FieldError(_("手机号码须为 11 位数字（或带区号的固定电话）"))
    return text


def parse_date(value: object, *, allow_empty: bool = True) -> dt.date | None:
    """Dates as Excel gives them (a datetime) or as clerks type them (2020-07-01, 2020/7/1, 2020年7月1日)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _clean(value)
    if not text:
        if allow_empty:
            return None
        raise FieldError(_("日期不能为空"))
    match = re.fullmatch(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if not match:
        raise FieldError(_("日期格式应为 2020-07-01"))
    try:
        parsed = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise FieldError(_("日期不存在：%(value)s", value=text)) from None
    if parsed > dt.date.today() or parsed.year < 1921:
        raise FieldError(_("日期不在合理范围内：%(value)s", value=text))
    return parsed


ORG_CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")  # as fivestar.orgs.services.CODE_PATTERN


def parse_org_code(value: object, *, allow_empty: bool = False) -> str:
    """An organisation's code (the importer's key); Excel may hand a typed number back as 1001.0."""
    text = _clean(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text:
        if allow_empty:
            return ""
        raise FieldError(_("组织编码不能为空"))
    if not ORG_CODE_PATTERN.match(text):
        raise FieldError(_("组织编码只能包含字母、数字、下划线和连字符，最长 40 位"))
    return text


def parse_sort_order(value: object) -> int:
    """A display order: blank means 0; whole numbers only (Excel gives 3.0 for 3)."""
    if value is None or _clean(value) == "":
        return 0
    if isinstance(value, bool):
        raise FieldError(_("排序须为整数"))
    if isinstance(value, float):
        if not value.is_integer():
            raise FieldError(_("排序须为整数"))
        value = int(value)
    try:
        number = int(_clean(value))
    except ValueError:
        raise FieldError(_("排序须为整数")) from None
    if not -100_000 <= number <= 100_000:
        raise FieldError(_("排序须在 -100000 到 100000 之间"))
    return number
