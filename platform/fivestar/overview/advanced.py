"""先进机关党组织: who may be proposed as an advanced organisation under the rules, with the numbers.

The rules' `[branch.advanced]` (rules/model/branch.py `Advanced`) say two things: a branch at
`branch_min_level` or above may be proposed (五星党支部), and a 机关党委/党总支 may be proposed when at
least `org_min_share` of its branches stand at `org_share_min_level` or above (所属支部四星以上占xx%).
The report applies them to the branches' *current* levels (overview.levels) and shows every number a
reader needs to check a line by hand: how many branches were counted, how many reach the level, the
share, the threshold and whether it is met. The comparison is exact (`good >= share × counted` in
decimals, as `rules.quota.advanced_organisation` does it); the share shown is rounded to 0.01 %.

Which branches count: active 党支部 in the organisation's whole subtree (a 机关党委 counts the branches
of its 党总支 too) that have a current level. A branch without one (new, never decided) is shown as
not counted rather than silently counted as failing. Retirees' branches are never rated, never counted.

Three statements whatever the size of the district: the rule set, the tree, the levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar.enums import OrgKind
from fivestar.i18n import _
from fivestar.orgs.models import Organisation
from fivestar.overview.levels import adjusted_count, current_branch_levels, level_of, newest_year
from fivestar.rules import RuleSet, advanced_branch, advanced_organisation
from fivestar.rules.model import Advanced
from fivestar.tenants.models import Tenant
from fivestar.tenants.services import current_rules, version_rules
from fivestar.timekeeping import clock

SHARE_PLACES = Decimal("0.0001")  # a share kept to 0.01 %
ORG_KINDS = (OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH)


def percent(share: Decimal) -> str:
    """0.8 → "80.00%" (two decimals of a percent, half up)."""
    value = (share * 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{value}%"


@dataclass(frozen=True)
class BranchLine:
    """A branch that may be proposed: its level reaches `branch_min_level`."""

    branch_id: int
    name: str
    parent_name: str
    level: int
    level_label: str
    threshold: int
    threshold_label: str
    met: bool


@dataclass(frozen=True)
class OrgLine:
    """A 机关党委/党总支 with the numbers behind its answer."""

    org_id: int
    name: str
    kind_label: str
    parent_name: str
    branches: int  # branches with a current level, counted
    unrated: int  # branches in the subtree without a current level, not counted
    at_level: int  # of those counted, how many at `org_share_min_level` or above
    share: Decimal  # at_level / branches, rounded to 0.0001 (0 when nothing is counted)
    threshold: Decimal  # the rules' org_min_share
    needed: int  # the fewest branches at the level that meet the threshold for this count
    met: bool

    @property
    def share_text(self) -> str:
        return percent(self.share)

    @property
    def threshold_text(self) -> str:
        return percent(self.threshold)


@dataclass(frozen=True)
class AdvancedReport:
    tenant_name: str
    generated: str  # tenant-local time, for the paper's provenance
    criterion: Advanced | None  # None: the rules set no criterion (nobody may be proposed through here)
    rules_version: int | None
    level_year: int | None  # the finalised year the levels come from (the newest seen), if any
    adjusted: int  # how many of the levels an adjustment (增星摘星) set since
    branch_level_label: str
    org_level_label: str
    rated_branches: int  # branches with a current level in the district
    branch_lines: tuple[BranchLine, ...]
    org_lines: tuple[OrgLine, ...]

    @property
    def proposable_orgs(self) -> int:
        return sum(1 for line in self.org_lines if line.met)


def _parent_name(org: Organisation, names: dict[int, str]) -> str:
    return names.get(org.parent_id, "") if org.parent_id is not None else ""


def advanced_report(session: Session, tenant: Tenant) -> AdvancedReport:
    """The report for the whole district under the tenant's current rule set (three statements)."""
    version = current_rules(session, tenant)
    rules: RuleSet | None = version_rules(version) if version is not None else None
    criterion = rules.branch.advanced if rules is not None else None
    orgs = list(
        session.scalars(
            select(Organisation)
            .where(
                Organisation.active.is_(True), Organisation.kind.in_([*ORG_KINDS, OrgKind.BRANCH, OrgKind.COMMITTEE])
            )
            .order_by(Organisation.path)
        )
    )
    names = {org.id: org.name for org in orgs}
    branches = [org for org in orgs if org.kind is OrgKind.BRANCH]
    current = current_branch_levels(session, [b.id for b in branches])
    levels = {bid: level_of(c) for bid, c in current.items()}
    generated = clock.now().astimezone(ZoneInfo(tenant.timezone)).strftime("%Y-%m-%d %H:%M")
    year = newest_year(current)
    adjusted = adjusted_count(current)
    if rules is None or criterion is None:
        return AdvancedReport(
            tenant.name,
            generated,
            None,
            version.version if version is not None else None,
            year,
            adjusted,
            "",
            "",
            len(levels),
            (),
            (),
        )
    branch_lines = tuple(
        BranchLine(
            branch_id=b.id,
            name=b.name,
            parent_name=_parent_name(b, names),
            level=levels[b.id],
            level_label=rules.level_label(levels[b.id]),
            threshold=criterion.branch_min_level,
            threshold_label=rules.level_label(criterion.branch_min_level),
            met=True,
        )
        for b in sorted(branches, key=lambda b: (-levels[b.id], b.path) if b.id in levels else (0, b.path))
        if b.id in levels and advanced_branch(rules, levels[b.id])
    )
    org_lines = []
    for org in orgs:
        if org.kind not in ORG_KINDS:
            continue
        inside = [b for b in branches if b.path.startswith(org.path)]
        counted = [levels[b.id] for b in inside if b.id in levels]
        good = sum(1 for level in counted if level >= criterion.org_share_min_level)
        share = (Decimal(good) / len(counted)).quantize(SHARE_PLACES, ROUND_HALF_UP) if counted else Decimal(0)
        org_lines.append(
            OrgLine(
                org_id=org.id,
                name=org.name,
                kind_label=_("机关党委") if org.kind is OrgKind.PARTY_COMMITTEE else _("党总支"),
                parent_name=_parent_name(org, names) if org.depth > 1 else "",
                branches=len(counted),
                unrated=len(inside) - len(counted),
                at_level=good,
                share=share,
                threshold=criterion.org_min_share,
                needed=math.ceil(criterion.org_min_share * len(counted)) if counted else 0,
                met=advanced_organisation(rules, counted),
            )
        )
    org_lines.sort(key=lambda line: (not line.met, -line.share, line.name))
    return AdvancedReport(
        tenant_name=tenant.name,
        generated=generated,
        criterion=criterion,
        rules_version=version.version if version is not None else None,
        level_year=year,
        adjusted=adjusted,
        branch_level_label=rules.level_label(criterion.branch_min_level),
        org_level_label=rules.level_label(criterion.org_share_min_level),
        rated_branches=len(levels),
        branch_lines=branch_lines,
        org_lines=tuple(org_lines),
    )


__all__ = ["AdvancedReport", "BranchLine", "OrgLine", "advanced_report", "percent"]
