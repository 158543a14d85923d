"""The demo's two districts: their organisations, branch sizes and rule sets (demo only)."""

from __future__ import annotations

from dataclasses import dataclass

from fivestar.enums import OrgKind


@dataclass(frozen=True)
class Unit:
    """An organisation to create: a 机关党委 or 党总支 with its branches, or a lone branch."""

    name: str
    kind: OrgKind
    branches: tuple[str, ...] = ()
    retirees: str | None = None


@dataclass(frozen=True)
class District:
    slug: str
    name: str
    member_prefix: str
    preferred_rules: tuple[str, ...]
    units: tuple[Unit, ...]
    # Open the member round for the period just past, with every self-assessment already in except
    # those of the people who have a demo login (so a visitor can do theirs and walk on from there),
    # and last year's branch rating with every branch decided but the demo secretary's.
    running_round: bool = False
    # Rules that open member rounds by themselves; the demo plants the opening of the period just
    # past a minute and a half after seeding, as if the platform had been installed just before it.
    opens_by_itself: bool = False


PC, GB, BR = OrgKind.PARTY_COMMITTEE, OrgKind.GENERAL_BRANCH, OrgKind.BRANCH

DISTRICTS: tuple[District, ...] = (
    District(
        slug="demo-east",
        name="东城区直机关工委",
        member_prefix="DC",
        preferred_rules=("notice-illustrative.toml",),
        running_round=True,
        units=(
            Unit(
                "区财政局机关党委",
                PC,
                (
                    "区财政局预算科党支部",
                    "区财政局国库科党支部",
                    "区财政局机关综合党支部",
                    "区政府采购中心党支部",
                ),
            ),
            Unit("区教育局机关党委", PC, ("区教育局机关第一党支部", "区教育局机关第二党支部", "区教育督导室党支部")),
            Unit(
                "区卫生健康委机关党委",
                PC,
                (
                    "区卫生健康委机关第一党支部",
                    "区卫生健康委机关第二党支部",
                    "区卫生健康监督所党支部",
                ),
            ),
            Unit(
                "区机关事务管理局机关党委",
                PC,
                ("区机关事务管理局综合党支部", "区机关后勤服务中心党支部"),
                retirees="区机关事务管理局离退休干部党支部",
            ),
            Unit(
                "区发展和改革委员会党总支",
                GB,
                (
                    "区发展改革委规划科党支部",
                    "区发展改革委价格科党支部",
                    "区发展改革委综合党支部",
                ),
            ),
            Unit("区统计局党总支", GB, ("区统计局机关第一党支部", "区统计局机关第二党支部", "区统计普查中心党支部")),
            Unit("区档案馆党支部", BR),
        ),
    ),
    District(
        slug="demo-west",
        name="西城区直机关工委",
        member_prefix="XC",
        preferred_rules=("shizhi-110.toml", "zoucheng-public-weighted.toml"),
        opens_by_itself=True,
        units=(
            Unit(
                "区民政局机关党委",
                PC,
                ("区民政局社会救助科党支部", "区民政局养老服务科党支部", "区民政局机关综合党支部"),
                retirees="区民政局离退休干部党支部",
            ),
            Unit(
                "区人力资源和社会保障局机关党委",
                PC,
                (
                    "区人力社保局机关第一党支部",
                    "区人力社保局机关第二党支部",
                    "区劳动保障监察大队党支部",
                    "区就业服务中心党支部",
                ),
            ),
            Unit(
                "区住房和城乡建设委员会机关党委",
                PC,
                (
                    "区住房城乡建设委机关第一党支部",
                    "区住房城乡建设委机关第二党支部",
                    "区建设工程质量监督站党支部",
                ),
            ),
            Unit(
                "区市场监督管理局机关党委",
                PC,
                (
                    "区市场监管局机关第一党支部",
                    "区市场监管局机关第二党支部",
                    "区市场监管综合执法大队党支部",
                ),
            ),
            Unit("区司法局党总支", GB, ("区司法局机关党支部", "区公共法律服务中心党支部")),
            Unit("区审计局党总支", GB, ("区审计局机关第一党支部", "区审计局机关第二党支部")),
            Unit("区政务服务中心党支部", BR),
            Unit("区信访办公室党支部", BR),
        ),
    ),
)

MEMBERS_PER_DISTRICT = 300
RETIREE_MEMBERS = 18
