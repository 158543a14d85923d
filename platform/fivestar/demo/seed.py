"""Demo data: two districts with realistic organisations, ~300 members each and one login per role.

FOR DEMONSTRATION ONLY. Every demo login shares the fixed password `DEMO_PASSWORD`, printed by
`fivestar demo`; never seed a real instance with it.

The data goes through the same models and services as the app (`create_tenant`, `create_org`),
members with one set-based INSERT per district, and every row created gets its audit event.
Names, phones and dates come from a fixed random seed, so every demo looks the same (apart from
probationary members, whose joining dates follow today's date so they stay within their year).
Seeding is idempotent: a district found by its slug, or an operator found by name, is left alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account, Operator, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds.core import round_rules as branch_round_rules
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
    RatingStep,
)
from fivestar.branch_rounds.opening import open_branch_round
from fivestar.config import load_settings
from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Role, Standing
from fivestar.exports.services import TargetInput, create_target
from fivestar.member_rounds import scoring
from fivestar.member_rounds.core import FieldKey, round_rules, score_fields, write_scores
from fivestar.member_rounds.models import (
    BranchStep,
    Evaluation,
    EvaluationStatus,
    MemberRound,
    Objection,
    ObjectionState,
    RoundBranch,
    RoundState,
    ScoreStage,
    SelfState,
)
from fivestar.member_rounds.opening import open_round, previous_period
from fivestar.orgs.models import Organisation
from fivestar.orgs.services import create_org
from fivestar.paths import tenants_dir
from fivestar.people.models import Member
from fivestar.rules import BranchInput, evaluate_branch
from fivestar.scheduling.models import DueItem, DueKind
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.tenants.services import create_tenant, current_rules, version_rules
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

#: The one password of every demo login. Demo only: printed on the console by `fivestar demo`.
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - a documented demo password, not a secret
OPERATOR_USERNAME = "operator"
SEED = 20260701
DEMO_ACTOR = audit.Actor("cli", None, "fivestar demo")

#: How each role is shown on the console: (Chinese, English).
ROLE_TITLES: dict[Role, tuple[str, str]] = {
    Role.TENANT_ADMIN: ("工委工作人员", "committee staff (tenant admin)"),
    Role.COMMITTEE_MEMBER: ("工委委员", "committee member"),
    Role.ORG_STAFF: ("机关党委工作人员", "party committee staff"),
    Role.BRANCH_SECRETARY: ("支部书记", "branch secretary"),
    Role.BRANCH_COMMITTEE: ("支委", "branch committee member"),
    Role.MEMBER: ("党员", "party member"),
    Role.INSPECTOR: ("督查组", "inspector (read-only)"),
}
USERNAMES: dict[Role, str] = {
    Role.TENANT_ADMIN: "admin",
    Role.COMMITTEE_MEMBER: "committee",
    Role.ORG_STAFF: "orgstaff",
    Role.BRANCH_SECRETARY: "secretary",
    Role.BRANCH_COMMITTEE: "branchcommittee",
    Role.MEMBER: "member",
    Role.INSPECTOR: "inspector",
}


# --- the districts ------------------------------------------------------------------------------


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


# --- names --------------------------------------------------------------------------------------

# Common surnames, roughly by frequency (the first ones repeat, as they do in any office).
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_GIVEN_MALE = "伟强军磊洋勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欣建国志文春晓东海峰亮成立新红"
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲婷雪慧红梅琳丹萍倩颖洁晶莉佳月秀英华兰玉春晓欣蕾薇琴瑶雯璐悦"
_GIVEN_COMMON = "子梓宇思一嘉佳文明志建晓海天雨浩博雅春"


_SURNAME_WEIGHTS = [max(1, 40 - index) for index in range(len(_SURNAMES))]


def _person_name(rng: random.Random, gender: Gender) -> str:
    surname = rng.choices(_SURNAMES, weights=_SURNAME_WEIGHTS)[0]
    pool = _GIVEN_MALE if gender is Gender.MALE else _GIVEN_FEMALE
    if rng.random() < 0.3:
        return surname + rng.choice(pool)
    first = rng.choice(_GIVEN_COMMON) if rng.random() < 0.4 else rng.choice(pool)
    return surname + first + rng.choice(pool)


def _day_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max((end - start).days, 0)))


# --- what a seed returns ------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLogin:
    district: str
    slug: str
    role: Role
    username: str
    password: str = DEMO_PASSWORD

    @property
    def role_zh(self) -> str:
        return ROLE_TITLES[self.role][0]

    @property
    def role_en(self) -> str:
        return ROLE_TITLES[self.role][1]


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    logins: list[DemoLogin] = field(default_factory=list)
    operator: str = OPERATOR_USERNAME
    password: str = DEMO_PASSWORD


def demo_logins() -> list[DemoLogin]:
    """The logins every seeded demo has (the same whether this run created them or not)."""
    return [
        DemoLogin(district.name, district.slug, role, USERNAMES[role]) for district in DISTRICTS for role in USERNAMES
    ]


# --- rule sets ----------------------------------------------------------------------------------


def _rules_for(district: District) -> tuple[str, str]:
    """(file name, TOML) of the district's rule set: its preferred sample, else the notice's."""
    folder = tenants_dir()
    if folder is None:
        raise FileNotFoundError("no sample rule sets (tenants/*.toml) found")
    for name in (*district.preferred_rules, "notice-illustrative.toml"):
        path = folder / name
        if path.is_file():
            return name, path.read_text(encoding="utf-8")
    samples = sorted(folder.glob("*.toml"))
    if not samples:
        raise FileNotFoundError(f"no sample rule set (*.toml) in {folder}")
    return samples[0].name, samples[0].read_text(encoding="utf-8")


# --- seeding ------------------------------------------------------------------------------------


def seed_demo(session: Session, *, today: dt.date | None = None) -> SeedReport:
    """Create what is missing of the demo (districts by slug, the operator by name). Flushes only.

    The caller commits. A district that exists is not touched, so a second run adds nothing.
    """
    report = SeedReport(logins=demo_logins())
    today = today or dt.date.today()
    password_hash = hash_password(DEMO_PASSWORD)
    with audit.acting_as(DEMO_ACTOR):
        for district in DISTRICTS:
            if session.scalar(select(Tenant.id).where(Tenant.slug == district.slug)) is not None:
                report.existing.append(district.slug)
                continue
            _seed_district(session, district, password_hash, today)
            report.created.append(district.slug)
        if session.scalar(select(Operator.id).where(Operator.username == OPERATOR_USERNAME)) is None:
            operator = Operator(
                username=OPERATOR_USERNAME, display_name="平台运营（演示）", password_hash=password_hash
            )
            session.add(operator)
            session.flush()
            audit.record(
                session, "operator.create", operator, after=audit.snapshot(operator, ("username", "display_name"))
            )
            report.created.append(f"operator:{OPERATOR_USERNAME}")
        else:
            report.existing.append(f"operator:{OPERATOR_USERNAME}")
    session.flush()
    return report


def _seed_district(session: Session, district: District, password_hash: str, today: dt.date) -> None:
    rng = random.Random(f"{SEED}:{district.slug}")
    rules_name, rules_toml = _rules_for(district)
    if district.opens_by_itself:
        rules_toml = rules_toml.replace("[schedule.member]\n", "[schedule.member]\nauto_open = true\n", 1)
    tenant = create_tenant(session, slug=district.slug, name=district.name, rules_toml=rules_toml)
    log.info("demo: created %s with rule set %s", district.slug, rules_name)
    with tenant_context(tenant.id):
        root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
        assert root is not None  # create_tenant made it
        branches, retirees, units = _seed_orgs(session, root, district)
        members = _seed_members(session, tenant.id, district, branches, retirees, rng, today)
        _seed_accounts(session, tenant.id, district.slug, units[0], branches[0], members, rng, password_hash)
        if district.running_round:
            _seed_running_round(session, tenant, rng)
            _seed_branch_round(session, tenant, branches[0], rng, year=today.year - 2, finalise=True)
            _seed_branch_round(session, tenant, branches[0], rng)
            _seed_export_target(session, tenant)
            _seed_inspection_examples(session, tenant, branches, rng)
        if district.opens_by_itself:
            _plant_opening(session, tenant)


def _seed_orgs(
    session: Session, root: Organisation, district: District
) -> tuple[list[Organisation], Organisation, list[Organisation]]:
    branches: list[Organisation] = []
    retirees: Organisation | None = None
    units: list[Organisation] = []
    counters = {PC: 0, GB: 0, BR: 0, OrgKind.RETIREE_BRANCH: 0}
    prefixes = {PC: "P", GB: "G", BR: "B", OrgKind.RETIREE_BRANCH: "R"}

    def code(kind: OrgKind) -> str:
        counters[kind] += 1
        return f"{prefixes[kind]}{counters[kind]:03d}"

    for order, unit in enumerate(district.units, start=1):
        org = create_org(session, kind=unit.kind, parent=root, name=unit.name, code=code(unit.kind), sort_order=order)
        if unit.kind is BR:
            branches.append(org)
            continue
        units.append(org)
        for sub_order, name in enumerate(unit.branches, start=1):
            branches.append(create_org(session, kind=BR, parent=org, name=name, code=code(BR), sort_order=sub_order))
        if unit.retirees:
            retirees = create_org(
                session,
                kind=OrgKind.RETIREE_BRANCH,
                parent=org,
                name=unit.retirees,
                code=code(OrgKind.RETIREE_BRANCH),
                sort_order=len(unit.branches) + 1,
            )
    assert retirees is not None, f"{district.slug} needs a retirees' branch"
    return branches, retirees, units


def _branch_sizes(rng: random.Random, count: int, total: int) -> list[int]:
    """`count` plausible branch sizes (8–24) adding up to `total`."""
    sizes = [rng.randint(9, 21) for _ in range(count)]
    while sum(sizes) != total:
        index = rng.randrange(count)
        if sum(sizes) < total and sizes[index] < 24:
            sizes[index] += 1
        elif sum(sizes) > total and sizes[index] > 8:
            sizes[index] -= 1
    return sizes


def _seed_members(
    session: Session,
    tenant_id: int,
    district: District,
    branches: list[Organisation],
    retirees: Organisation,
    rng: random.Random,
    today: dt.date,
) -> dict[int, list[Member]]:
    """Insert every member of the district in one statement; return them by branch id."""
    rows: list[dict[str, object]] = []
    phones = rng.sample(range(10_000_000, 99_999_999), MEMBERS_PER_DISTRICT)
    sizes = _branch_sizes(rng, len(branches), MEMBERS_PER_DISTRICT - RETIREE_MEMBERS)
    plan = [(branch, size, False) for branch, size in zip(branches, sizes, strict=True)]
    plan.append((retirees, RETIREE_MEMBERS, True))
    number = 0
    for branch, size, retired in plan:
        for index in range(size):
            number += 1
            gender = Gender.FEMALE if rng.random() < (0.45 if not retired else 0.4) else Gender.MALE
            position = _position(index, size)
            probationary = not retired and position is Position.MEMBER and rng.random() < 0.06
            if retired:
                joined = _day_between(rng, dt.date(1962, 1, 1), dt.date(1992, 12, 31))
            elif probationary:
                joined = today - dt.timedelta(days=rng.randint(20, 330))
            else:
                joined = _day_between(rng, dt.date(1986, 1, 1), today - dt.timedelta(days=400))
            rows.append(
                {
                    "tenant_id": tenant_id,
                    "branch_id": branch.id,
                    "member_no": f"{district.member_prefix}{number:05d}",
                    "name": _person_name(rng, gender),
                    "gender": gender,
                    "phone": f"138{phones[number - 1]:08d}",
                    "joined_on": joined,
                    "standing": Standing.PROBATIONARY if probationary else Standing.FULL,
                    "position": position,
                    "status": MemberStatus.ACTIVE,
                }
            )
    session.execute(insert(Member), rows)
    members = list(session.scalars(select(Member).order_by(Member.id)))
    audit.record_many(
        session,
        "member.create",
        "members",
        ((member.id, None, audit.snapshot(member, _MEMBER_FIELDS)) for member in members),
        reason="demo data",
    )
    by_branch: dict[int, list[Member]] = {}
    for member in members:
        by_branch.setdefault(member.branch_id, []).append(member)
    return by_branch


_MEMBER_FIELDS = ("branch_id", "member_no", "name", "gender", "phone", "joined_on", "standing", "position", "status")


def _position(index: int, size: int) -> Position:
    """书记 first; a 副书记 in larger branches; 2–3 支委: a committee of 3–5, as the rules ask."""
    if index == 0:
        return Position.SECRETARY
    deputy = size >= 15
    if deputy and index == 1:
        return Position.DEPUTY_SECRETARY
    committee = 3 if size >= 12 else 2
    first = 2 if deputy else 1
    if first <= index < first + committee:
        return Position.COMMITTEE_MEMBER
    return Position.MEMBER


def _seed_accounts(
    session: Session,
    tenant_id: int,
    slug: str,
    party_committee: Organisation,
    branch: Organisation,
    members: dict[int, list[Member]],
    rng: random.Random,
    password_hash: str,
) -> None:
    """One login per role; the branch roles and the member login are people of `branch`."""
    people = members[branch.id]
    secretary = next(member for member in people if member.position is Position.SECRETARY)
    committee = next(member for member in people if member.position is Position.COMMITTEE_MEMBER)
    ordinary = next(member for member in people if member.position is Position.MEMBER)
    plan: list[tuple[Role, Organisation | None, Member | None]] = [
        (Role.TENANT_ADMIN, None, None),
        (Role.COMMITTEE_MEMBER, None, None),
        (Role.ORG_STAFF, party_committee, None),
        (Role.BRANCH_SECRETARY, branch, secretary),
        (Role.BRANCH_COMMITTEE, branch, committee),
        (Role.MEMBER, None, ordinary),
        (Role.INSPECTOR, None, None),
    ]
    for role, scope, member in plan:
        name = member.name if member else _person_name(rng, rng.choice((Gender.MALE, Gender.FEMALE)))
        account = Account(
            tenant_id=tenant_id,
            username=USERNAMES[role],
            display_name=name,
            email=f"{USERNAMES[role]}.{slug}@example.org",
            password_hash=password_hash,
            member_id=member.id if member else None,
        )
        session.add(account)
        session.flush()
        session.add(
            RoleGrant(
                tenant_id=tenant_id, account_id=account.id, role=role, organisation_id=scope.id if scope else None
            )
        )
        audit.record(
            session,
            "account.create",
            account,
            after={
                **audit.snapshot(account, ("username", "display_name", "email", "member_id")),
                "roles": [{"role": role.value, "organisation_id": scope.id if scope else None}],
            },
            reason="demo data",
        )
    session.flush()


def table_counts(session: Session, models: Iterable[type] | None = None) -> dict[str, int]:
    """Row counts of the tables the seed writes (to check that a second seed adds nothing)."""
    from sqlalchemy import func

    chosen = list(models or (Tenant, Organisation, Member, Account, RoleGrant, Operator, RuleSetVersion, AuditEvent))
    with cross_tenant("demo seed row counts"):
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[attr-defined]
            for model in chosen
        }


# --- a member round in progress -----------------------------------------------------------------

_PLEDGES = (
    "按承诺参加“三会一课”，带头完成本科室重点任务，主动联系服务群众。",
    "践行“立足岗位作贡献”承诺，按时完成业务学习和志愿服务。",
    "落实为民服务承诺，本季度办结群众诉求，无投诉。",
)
_SUMMARIES = (
    "本季度认真学习，履职尽责，按时交纳党费，参加组织生活。",
    "工作中注重效能，能按时完成各项任务，廉洁自律方面无问题。",
    "积极参加志愿服务，学习笔记完整，工作作风有待进一步改进。",
)


def _seed_running_round(session: Session, tenant: Tenant, rng: random.Random) -> None:
    """The round for the period just past, opened now, with self-assessments from every member
    without a demo login (set-based: one INSERT of score rows, one UPDATE per text variant)."""
    from sqlalchemy import update

    opened = open_round(session, tenant)
    rules = round_rules(session, opened.round)
    fields = score_fields(rules)
    with_login = set(session.scalars(select(Account.member_id).where(Account.member_id.is_not(None))))
    evaluations = [
        (evaluation_id, member_id)
        for evaluation_id, member_id in session.execute(
            select(Evaluation.id, Evaluation.member_id).where(Evaluation.round_id == opened.round.id)
        )
        if member_id not in with_login
    ]
    values = {}
    for evaluation_id, _member_id in evaluations:
        strength = Decimal(rng.choice(("0.95", "0.9", "0.85", "0.8", "0.7")))  # most do well, a few less so
        values[evaluation_id] = {
            f.key: max(Decimal(0), min(f.max, (f.max * strength + rng.choice((-1, 0, 0, 1))).quantize(Decimal(1))))
            for f in fields
        }
    write_scores(session, [e for e, _m in evaluations], ScoreStage.SELF, values)
    now = clock.now()
    for variant, (pledge, summary) in enumerate(zip(_PLEDGES, _SUMMARIES, strict=True)):
        ids = [e for index, (e, _m) in enumerate(evaluations) if index % len(_PLEDGES) == variant]
        session.execute(
            update(Evaluation)
            .where(Evaluation.id.in_(ids))
            .values(
                self_state=SelfState.SUBMITTED,
                self_submitted_at=now,
                pledge=pledge,
                summary=summary,
                version=Evaluation.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
    audit.record(
        session,
        "demo.self_assessments",
        opened.round,
        after={"submitted": len(evaluations), "left_for_demo_logins": opened.members - len(evaluations)},
    )


# --- an export to the superior committee -------------------------------------------------------------


EXPORT_ADDRESS = "zuzhibu.{slug}@example.org"


def _seed_export_target(session: Session, tenant: Tenant) -> None:
    """上报上级: every finalised branch rating goes to the (demo) district Party organisation
    department by e-mail, as an Excel workbook — the finalised year at once, the next when the
    visitor finalises it; both land in the demo's mail catcher."""
    target = create_target(session, load_settings(), tenant.timezone, TargetInput(
        name="区委组织部（演示）", report_kind="branch_levels", report_format="xlsx", method="email",
        destination=EXPORT_ADDRESS.format(slug=tenant.slug), trigger="on_finalise",
    ))
    # A target sends rounds finalised from its `since` on; the demo's was set up before the seeded
    # finalised year, so that year goes out on the demo's first minute.
    target.since = clock.now() - dt.timedelta(hours=1)
    session.flush()


# --- a round that opens by itself ---------------------------------------------------------------


PLANTED_AFTER = dt.timedelta(seconds=90)


def _plant_opening(session: Session, tenant: Tenant) -> None:
    """A due row for the member round of the period just past, 90 s from now: the worker's sweep
    opens it without anyone clicking (and the 日程 page shows it coming)."""
    version = current_rules(session, tenant)
    assert version is not None
    period = previous_period(version_rules(version), clock.today_in(tenant.timezone))
    session.add(DueItem(tenant_id=tenant.id, kind=DueKind.OPEN_MEMBER_ROUND, key=period.key,
                        due_at=clock.now() + PLANTED_AFTER))
    session.flush()


# --- last year's branch rating, one branch still to go --------------------------------------------


def _seed_branch_round(
    session: Session, tenant: Tenant, own_branch: Organisation, rng: random.Random, *, year: int | None = None,
    finalise: bool = False,
) -> None:
    """Open last year's branch rating (deadlines a month and two months ahead) with every branch but
    `own_branch` (the demo secretary's) already scored, recommended and decided, so a visitor walks
    one branch from 荐星 to the public page and the committee can finalise the year.

    With `finalise`, the year before that instead: every branch decided (the demo secretary's one
    strongly, so this year's one-level-a-year cap leaves it room) and the round finalised — what the
    public page shows at first, and what the demo's export to the superior committee sends."""
    from sqlalchemy import insert

    today = clock.today_in(tenant.timezone)
    opened = open_branch_round(
        session,
        tenant,
        year=year if year is not None else today.year - 1,
        self_report_due=today + dt.timedelta(days=30),
        committee_due=today + dt.timedelta(days=60),
    )
    rules = branch_round_rules(session, opened.round)
    ratings = list(session.scalars(select(BranchRating).where(BranchRating.round_id == opened.round.id)))
    score_rows: list[dict[str, object]] = []
    answer_rows: list[dict[str, object]] = []
    now = clock.now()
    for rating in ratings:
        if rating.branch_id == own_branch.id and not finalise:
            continue
        strength = Decimal(rng.choice(("0.95", "0.92", "0.88", "0.84", "0.8", "0.74", "0.68")))
        if rating.branch_id == own_branch.id:
            strength = Decimal("0.95")
        scores: dict[str, dict[str, Decimal]] = {}
        for indicator in rules.branch.indicators:
            for criterion in indicator.criteria:
                value = max(Decimal(0), min(criterion.points, (criterion.points * strength).quantize(Decimal("0.5"))))
                scores.setdefault(indicator.key, {})[criterion.key] = value
                score_rows.append(
                    {
                        "tenant_id": tenant.id,
                        "rating_id": rating.id,
                        "indicator_key": indicator.key,
                        "criterion_key": criterion.key,
                        "score": value,
                        "note": None,
                    }
                )
        answers = {veto.key: False for veto in rules.branch.vetoes}
        facts = {fact.key: rng.random() < 0.3 for fact in rules.branch.facts}
        for kind, values in ((AnswerKind.VETO, answers), (AnswerKind.FACT, facts)):
            for key, value in values.items():
                answer_rows.append(
                    {
                        "tenant_id": tenant.id,
                        "rating_id": rating.id,
                        "kind": kind,
                        "key": key,
                        "value": value,
                        "explanation": None,
                    }
                )
        public_rate = Decimal(rng.choice(("96", "92", "88", "85"))) if rules.branch.public is not None else None
        result = evaluate_branch(
            rules,
            BranchInput(
                scores=scores,
                vetoes=answers,
                facts=facts,
                public_rate=public_rate / 100 if public_rate is not None else None,
                previous_level=rating.previous_level,
            ),
        )
        rating.public_rate = public_rate
        rating.statement = "本支部全年按要求开展组织生活，完成各项重点任务。（演示数据）"
        rating.proposed_total = result.weighted_total.quantize(Decimal("0.01"))
        rating.proposed_level = result.level
        rating.recommended_at = rating.opinion_at = rating.decided_at = now
        rating.opinion_level = rating.decided_level = result.level
        rating.opinion_statement = "经议星测评，同意按自评结果定级。（演示数据）"
        rating.decided_by = "工委（演示数据）"
        rating.step = RatingStep.DECIDED
    if score_rows:
        session.execute(insert(CriterionScore), score_rows)
    if answer_rows:
        session.execute(insert(RatingAnswer), answer_rows)
    if finalise:
        opened.round.state = BranchRoundState.FINALISED
        opened.round.finalised_at = now
        opened.round.decision_meeting_date = today
        opened.round.decision_participants = "工委委员（演示数据）"
    session.flush()
    audit.record(
        session,
        "demo.branch_ratings",
        opened.round,
        after={"decided": len(ratings) - (0 if finalise else 1), "finalised": finalise,
               "left_for_the_demo": None if finalise else own_branch.name},
    )


# --- what the inspectors (督查组) should find ----------------------------------------------------------


def _seed_inspection_examples(
    session: Session, tenant: Tenant, branches: list[Organisation], rng: random.Random
) -> None:
    """Give `inspector` something to look at: two branches of the running member round taken on to
    党群联评 and 支部审评 (one member's final score far from the joint one, one branch where everybody
    got the same score, an objection dismissed without an answer), a branch rating decided two levels
    below its 荐星, and a decision changed after the committee's deadline of the finalised year.
    Every change is written to the audit trail as the services would (the demo secretary's branch,
    `branches[0]`, is left alone)."""
    import secrets

    now = clock.now()
    member_round = session.scalar(select(MemberRound).where(MemberRound.state == RoundState.OPEN))
    if member_round is None or len(branches) < 3:
        return
    rules = round_rules(session, member_round)
    fields = score_fields(rules)
    gap_branch, same_branch = branches[1], branches[2]
    round_branches = {
        rb.branch_id: rb
        for rb in session.scalars(
            select(RoundBranch).where(
                RoundBranch.round_id == member_round.id, RoundBranch.branch_id.in_([gap_branch.id, same_branch.id])
            )
        )
    }
    evaluations = [
        (evaluation_id, branch_id)
        for evaluation_id, branch_id in session.execute(
            select(Evaluation.id, Evaluation.branch_id)
            .where(
                Evaluation.round_id == member_round.id,
                Evaluation.branch_id.in_(list(round_branches)),
                Evaluation.status == EvaluationStatus.ACTIVE,
            )
            .order_by(Evaluation.id)
        )
    ]
    if len(round_branches) < 2 or not evaluations:
        return
    same = {f.key: (f.max * Decimal("0.9")).quantize(Decimal(1)) for f in fields}
    joint: dict[int, dict[FieldKey, Decimal]] = {}
    final: dict[int, dict[FieldKey, Decimal]] = {}
    lowered: int | None = None
    for evaluation_id, branch_id in evaluations:
        if branch_id == same_branch.id:
            joint[evaluation_id] = dict(same)
            final[evaluation_id] = dict(same)
            continue
        strength = Decimal(rng.choice(("0.95", "0.9", "0.85", "0.8")))
        values = {f.key: (f.max * strength).quantize(Decimal(1)) for f in fields}
        joint[evaluation_id] = values
        final[evaluation_id] = dict(values)
        if lowered is None:  # the branch committee took 20 points off one member after the meeting
            lowered, missing = evaluation_id, Decimal(20)
            for f in fields:
                cut = min(missing, final[evaluation_id][f.key])
                final[evaluation_id][f.key] -= cut
                missing -= cut
    ids = [evaluation_id for evaluation_id, _branch in evaluations]
    write_scores(session, ids, ScoreStage.JOINT, joint)
    write_scores(session, ids, ScoreStage.FINAL, final)
    audit.record_many(session, "evaluation.joint", Evaluation.__tablename__,
                      [(i, None, {"scores": {"total": str(sum(joint[i].values()))}}) for i in ids])
    audit.record_many(
        session, "evaluation.review", Evaluation.__tablename__,
        [(i, {"scores": {"total": str(sum(joint[i].values()))}}, {"scores": {"total": str(sum(final[i].values()))}})
         for i in ids],
    )
    scoring.score_round(session, member_round, round_branch_ids=[rb.id for rb in round_branches.values()])
    for branch_id, rb in round_branches.items():
        before = {"step": rb.step.value}
        rb.meeting_date = clock.today_in(tenant.timezone)
        rb.members_present = sum(1 for _e, b in evaluations if b == branch_id)
        rb.public_present = max(1, rb.members_present // 4)
        if branch_id == gap_branch.id:
            name, rb.step = "submit_notice", BranchStep.NOTICE
            rb.notice_token = secrets.token_urlsafe(24)
            rb.notice_started_at = now
            rb.notice_ends_at = now + dt.timedelta(days=7)
        else:
            name, rb.step = "start_review", BranchStep.REVIEW
        audit.record(session, f"round_branch.{name}", rb, before=before, after={"step": rb.step.value})
    objection = Objection(
        round_branch_id=round_branches[gap_branch.id].id,
        evaluation_id=lowered,
        text="该同志平时表现突出，审评扣分过多，请复核。（演示数据）",
        filer_name="群众代表",
        state=ObjectionState.DISMISSED,
        answered_at=now,
        answered_by="支部（演示数据）",
    )
    session.add(objection)
    session.flush()
    audit.record(session, "objection.answer", objection, before={"state": "open"},
                 after={"state": "dismissed", "answer": None})

    # Branch ratings: last year's, one decided two levels below its 荐星; the year before, finalised,
    # given the due dates such a year had, and one decision changed afterwards.
    rounds = list(session.scalars(select(BranchRound).order_by(BranchRound.year)))
    for branch_round in rounds:
        rating = session.scalar(
            select(BranchRating)
            .where(
                BranchRating.round_id == branch_round.id,
                BranchRating.branch_id != branches[0].id,
                BranchRating.decided_level.is_not(None),
                BranchRating.decided_level >= 2,
            )
            .order_by(BranchRating.id)
            .limit(1)
        )
        if rating is None or rating.decided_level is None:
            continue
        before = {"decided_level": rating.decided_level}
        if branch_round.state is BranchRoundState.FINALISED:
            branch_round.self_report_due_at = dt.datetime(branch_round.year + 1, 1, 31, 16, tzinfo=dt.UTC)
            branch_round.committee_due_at = dt.datetime(branch_round.year + 1, 3, 31, 16, tzinfo=dt.UTC)
            rating.decided_level -= 1
            reason = "公布后根据群众反映调整。（演示数据）"
        else:
            rating.proposed_level = min(5, rating.decided_level + 2)
            rating.decided_level = rating.proposed_level - 2
            reason = "核查后较自评下调两级。（演示数据）"
        rating.decision_reason = reason
        audit.record(session, "branch_rating.decide", rating, before=before,
                     after={"decided_level": rating.decided_level}, reason=reason)
    session.flush()
