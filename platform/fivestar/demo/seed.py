"""Demo data: two districts with realistic organisations, ~300 members each and one login per role.

FOR DEMONSTRATION ONLY. Every demo login shares the fixed password `DEMO_PASSWORD`, printed by
`fivestar demo`; never seed a real instance with it.

The data goes through the same models and services as the app (`create_tenant`, `create_org`),
members with one set-based INSERT per district, and every row created gets its audit event.
Names, phones and dates come from a fixed random seed, so every demo looks the same (apart from
probationary members, whose joining dates follow today's date so they stay within their year).
Seeding is idempotent: a district found by its slug, or an operator found by name, is left alone.

The districts themselves are `districts`; what is already under way in each (a running member
round, last year's branch rating, an export target, a round that opens by itself, what the
inspectors should find) is `scenes`.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.accounts.models import Account, Operator, RoleGrant
from fivestar.accounts.passwords import hash_password
from fivestar.audit.models import AuditEvent
from fivestar.demo.districts import BR, DISTRICTS, GB, MEMBERS_PER_DISTRICT, PC, RETIREE_MEMBERS, District
from fivestar.demo.scene_improvement import seed_improvement
from fivestar.demo.scene_overview import seed_overview
from fivestar.demo.scene_standing import seed_standing
from fivestar.demo.scene_worklist import seed_worklist
from fivestar.demo.scenes import (
    plant_opening,
    seed_branch_round,
    seed_export_target,
    seed_inspection_examples,
    seed_running_round,
)
from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Role, Standing
from fivestar.orgs.models import Organisation
from fivestar.orgs.services import create_org
from fivestar.paths import tenants_dir
from fivestar.people.models import Member
from fivestar.tenancy import cross_tenant, tenant_context
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.tenants.services import create_tenant

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
            seed_running_round(session, tenant, rng)
            seed_branch_round(session, tenant, branches[0], rng, year=today.year - 2, finalise=True)
            seed_branch_round(session, tenant, branches[0], rng)
            seed_improvement(session, tenant, branches[0], rng)
            seed_export_target(session, tenant)
            seed_inspection_examples(session, tenant, branches, rng)
            seed_standing(session, tenant, branches)
            seed_overview(session, tenant, branches, rng)
        if district.opens_by_itself:
            plant_opening(session, tenant)
        seed_worklist(session, tenant, branches[0], units[0])


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
    chosen = list(models or (Tenant, Organisation, Member, Account, RoleGrant, Operator, RuleSetVersion, AuditEvent))
    with cross_tenant("demo seed row counts"):
        return {
            model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[attr-defined]
            for model in chosen
        }
