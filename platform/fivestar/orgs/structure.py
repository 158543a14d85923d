"""Which organisation may sit under which: 工委 → 机关党委/党总支 → 党支部.

Shared by the services, the web forms and the importer.
"""

from __future__ import annotations

from fivestar.enums import OrgKind
from fivestar.i18n import _
from fivestar.labels import label

ALLOWED_PARENTS: dict[OrgKind, frozenset[OrgKind]] = {
    OrgKind.COMMITTEE: frozenset(),
    OrgKind.PARTY_COMMITTEE: frozenset({OrgKind.COMMITTEE}),
    OrgKind.GENERAL_BRANCH: frozenset({OrgKind.COMMITTEE, OrgKind.PARTY_COMMITTEE}),
    OrgKind.BRANCH: frozenset({OrgKind.COMMITTEE, OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH}),
    OrgKind.RETIREE_BRANCH: frozenset({OrgKind.COMMITTEE, OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH}),
}


def placement_problem(kind: OrgKind, parent_kind: OrgKind | None) -> str | None:
    """Why an organisation of `kind` cannot sit under one of `parent_kind`, or None if it can."""
    if kind is OrgKind.COMMITTEE:
        return _("工委是组织树的根，不能新建或移动")
    if parent_kind is None:
        return _("请选择上级组织")
    if parent_kind not in ALLOWED_PARENTS[kind]:
        return _("%(kind)s不能设在%(parent)s之下", kind=kind_label(kind), parent=kind_label(parent_kind))
    return None


def kind_label(kind: OrgKind) -> str:
    return label(kind)
