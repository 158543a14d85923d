"""亮星 (publication): what a finalised branch rating shows to everyone, and the notice of the result
to every organisation.

Only rounds in state FINALISED are ever read here: an open round's proposals, ballots, scores and
even decided levels recorded before the committee finalised stay inside the rating pages. Every
query filters on the round's state itself, so no caller can forget it.

Medals (金星/银星/铜星 per indicator) are not stored: they are the rule engine's verdict on the
criterion scores the branch submitted, under the rule-set version the round pinned. Both are frozen
once the round is finalised, so computing them again on each view gives the same answer as at
finalising. A page costs a fixed number of statements whatever the number of branches: the round,
its rules, all its decided ratings (with branch and parent organisation), all criterion scores and
all veto/fact answers of the round — then the pure engine runs in Python.

Branches are grouped under the organisation they sit under now (their 机关党委/党总支, or the
committee for those directly under it) and shown with their current names: the tree is not
versioned, and a renamed or moved branch is still the branch that was rated.

Services flush, never commit; the notice queues e-mails in the caller's transaction and asks for
delivery after commit.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, contains_eager

from fivestar import audit
from fivestar.accounts.models import Account, RoleGrant
from fivestar.branch_rounds.core import MIDDLE_KINDS, branch_input, round_rules
from fivestar.branch_rounds.models import (
    AnswerKind,
    BranchRating,
    BranchRound,
    BranchRoundState,
    CriterionScore,
    RatingAnswer,
)
from fivestar.broker import enqueue_after_commit
from fivestar.config import Settings
from fivestar.enums import OrgKind, Role
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.kernel import task_names
from fivestar.orgs.models import Organisation
from fivestar.outbox.services import normalise_recipient, queue_email
from fivestar.rules import InputError, Medal, RuleSet, evaluate_branch, medal_label
from fivestar.tenants.models import RuleSetVersion, Tenant

log = logging.getLogger(__name__)

LinkFor = Callable[[int], str]  # the rated year -> absolute URL of the tenant's public star page
NOTIFIED_ROLES = (Role.BRANCH_SECRETARY, Role.BRANCH_COMMITTEE, Role.ORG_STAFF)
TOP_LEVEL = 5


# --- what the public sees ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MedalShown:
    """One indicator's medal as published: 金星/银星/铜星, or none."""

    indicator_key: str
    indicator_label: str
    medal: Medal | None

    @property
    def label(self) -> str:
        return medal_label(self.medal)

    @property
    def css(self) -> str:
        return self.medal.value if self.medal is not None else "none"


@dataclass(frozen=True)
class PublishedBranch:
    rating_id: int
    branch_id: int
    name: str
    path: str
    level: int
    level_label: str  # 五星 … 无星, as the round's rules name it
    medals: tuple[MedalShown, ...]  # in the rules' indicator order; empty if the engine refused the scores

    @property
    def title(self) -> str:
        """What a plaque proclaims: 五星党支部 (nothing for 无星)."""
        return _("%(level)s党支部", level=self.level_label) if self.level > 0 else ""

    @property
    def stars(self) -> str:
        """The level as glyphs for plain text (e-mails): ★★★★☆."""
        return "★" * self.level + "☆" * (TOP_LEVEL - self.level)

    @property
    def medal_text(self) -> str:
        return "；".join(f"{m.indicator_label}：{m.label}" for m in self.medals)


@dataclass
class PublishedGroup:
    """The branches of one organisation: a 机关党委/党总支, or the committee for those directly under it."""

    organisation_id: int
    name: str
    kind: OrgKind
    sort_key: tuple[Any, ...]
    branches: list[PublishedBranch] = field(default_factory=list)

    @property
    def direct(self) -> bool:
        return self.kind is OrgKind.COMMITTEE


@dataclass(frozen=True)
class PublishedRound:
    round_id: int
    year: int
    rules_version: int | None
    finalised_at: Any  # datetime (UTC) or None
    decision_meeting_date: Any  # date or None
    indicators: tuple[tuple[str, str], ...]  # (key, label) in the rules' order
    groups: list[PublishedGroup]

    @property
    def branches(self) -> list[PublishedBranch]:
        return [branch for group in self.groups for branch in group.branches]

    def level_counts(self) -> list[tuple[int, str, int]]:
        """(level, label, how many branches) from five stars down, levels nobody reached left out."""
        counts: dict[int, tuple[str, int]] = {}
        for branch in self.branches:
            label, n = counts.get(branch.level, (branch.level_label, 0))
            counts[branch.level] = (label, n + 1)
        return [(level, label, n) for level, (label, n) in sorted(counts.items(), reverse=True)]


def published_years(session: Session) -> list[int]:
    """The tenant's finalised years, newest first (one query)."""
    return list(
        session.scalars(
            select(BranchRound.year)
            .where(BranchRound.state == BranchRoundState.FINALISED)
            .order_by(BranchRound.year.desc())
        )
    )


def published_round(session: Session, year: int) -> PublishedRound | None:
    """The finalised round of `year` with every decided branch, grouped, with medals; None when that
    year has nothing published (no round, or a round still open)."""
    row = session.execute(
        select(BranchRound, RuleSetVersion.version)
        .outerjoin(RuleSetVersion, RuleSetVersion.id == BranchRound.rules_version_id)
        .where(BranchRound.year == year, BranchRound.state == BranchRoundState.FINALISED)
    ).first()
    if row is None:
        return None
    branch_round, version = row
    return _published(session, branch_round, version)


def _published(session: Session, branch_round: BranchRound, version: int | None) -> PublishedRound:
    if branch_round.state is not BranchRoundState.FINALISED:  # the one rule of this module
        raise ValueError("only a finalised round is published")
    rules = round_rules(session, branch_round)
    parent = aliased(Organisation)
    rows = session.execute(
        select(BranchRating, parent)
        .join(BranchRound, BranchRound.id == BranchRating.round_id)
        .join(Organisation, Organisation.id == BranchRating.branch_id)
        .outerjoin(parent, parent.id == Organisation.parent_id)
        .where(
            BranchRating.round_id == branch_round.id,
            BranchRound.state == BranchRoundState.FINALISED,
            BranchRating.decided_level.is_not(None),
        )
        .options(contains_eager(BranchRating.branch))
        .order_by(BranchRating.decided_level.desc(), Organisation.sort_order, Organisation.name, Organisation.id)
    ).all()
    scores = _round_scores(session, branch_round.id)
    answers = _round_answers(session, branch_round.id)
    groups: dict[int, PublishedGroup] = {}
    for rating, above in rows:
        branch = rating.branch
        level = rating.decided_level or 0  # never None: the query asks for decided ratings
        published = PublishedBranch(
            rating_id=rating.id,
            branch_id=branch.id,
            name=branch.name,
            path=branch.path,
            level=level,
            level_label=rules.level_label(level, "branch"),
            medals=_medals(rules, rating, scores.get(rating.id, {}), answers.get(rating.id)),
        )
        key = above.id if above is not None else branch.id
        group = groups.get(key)
        if group is None:
            if above is None:  # pragma: no cover - every branch sits under the committee at least
                group = PublishedGroup(branch.id, branch.name, OrgKind.COMMITTEE, (1, 0, []))
            else:
                # 机关党委/党总支 in tree order first, then the branches directly under the committee
                direct = above.kind is OrgKind.COMMITTEE
                group = PublishedGroup(
                    above.id, above.name, above.kind, (int(direct), above.sort_order, above.ancestor_ids)
                )
            groups[key] = group
        group.branches.append(published)
    return PublishedRound(
        round_id=branch_round.id,
        year=branch_round.year,
        rules_version=version,
        finalised_at=branch_round.finalised_at,
        decision_meeting_date=branch_round.decision_meeting_date,
        indicators=tuple((indicator.key, indicator.label) for indicator in rules.branch.indicators),
        groups=sorted(groups.values(), key=lambda g: g.sort_key),
    )


def _round_scores(session: Session, round_id: int) -> dict[int, dict[str, dict[str, Decimal]]]:
    """rating id → indicator → criterion → score, for every rating of the round (one query)."""
    result: dict[int, dict[str, dict[str, Decimal]]] = {}
    for rating_id, indicator_key, criterion_key, score in session.execute(
        select(
            CriterionScore.rating_id, CriterionScore.indicator_key, CriterionScore.criterion_key, CriterionScore.score
        )
        .join(BranchRating, BranchRating.id == CriterionScore.rating_id)
        .where(BranchRating.round_id == round_id)
    ):
        result.setdefault(rating_id, {}).setdefault(indicator_key, {})[criterion_key] = score
    return result


def _round_answers(session: Session, round_id: int) -> dict[int, dict[AnswerKind, dict[str, bool]]]:
    """rating id → veto/fact answers, for every rating of the round (one query)."""
    result: dict[int, dict[AnswerKind, dict[str, bool]]] = {}
    for rating_id, kind, key, value in session.execute(
        select(RatingAnswer.rating_id, RatingAnswer.kind, RatingAnswer.key, RatingAnswer.value)
        .join(BranchRating, BranchRating.id == RatingAnswer.rating_id)
        .where(BranchRating.round_id == round_id)
    ):
        per = result.setdefault(rating_id, {AnswerKind.VETO: {}, AnswerKind.FACT: {}})
        per[AnswerKind(kind)][key] = bool(value)
    return result


def _medals(
    rules: RuleSet,
    rating: BranchRating,
    scores: Mapping[str, Mapping[str, Decimal]],
    answers: Mapping[AnswerKind, Mapping[str, bool]] | None,
) -> tuple[MedalShown, ...]:
    """The engine's medals for the stored scores. Stored data the engine refuses (it cannot happen
    through the rating pages) shows no medals rather than breaking the public page."""
    try:
        result = evaluate_branch(
            rules, branch_input(rules, rating, scores, answers or {AnswerKind.VETO: {}, AnswerKind.FACT: {}})
        )
    except InputError:
        log.warning("branch rating %s: stored scores do not fit the round's rules; medals not shown", rating.id)
        return ()
    return tuple(MedalShown(i.key, i.label, i.medal) for i in result.indicators)


# --- one branch: the plaque ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaqueFacts:
    rating_id: int
    branch_name: str
    level: int
    level_label: str
    year: int
    rules_version: int | None
    finalised_at: Any
    decision_meeting_date: Any
    branch_id: int = 0  # whose current level (增星摘星) the plaque shows

    @property
    def title(self) -> str:
        return _("%(level)s党支部", level=self.level_label) if self.level > 0 else ""


def plaque_facts(session: Session, rating_id: int) -> PlaqueFacts | None:
    """A published rating (finalised round, decided level) for its plaque; None for anything else —
    an unknown id, another tenant's, or one of a round still open (one query, plus the rules)."""
    row = session.execute(
        select(BranchRating, BranchRound, RuleSetVersion.version)
        .join(BranchRound, BranchRound.id == BranchRating.round_id)
        .join(Organisation, Organisation.id == BranchRating.branch_id)
        .outerjoin(RuleSetVersion, RuleSetVersion.id == BranchRound.rules_version_id)
        .where(
            BranchRating.id == rating_id,
            BranchRound.state == BranchRoundState.FINALISED,
            BranchRating.decided_level.is_not(None),
        )
        .options(contains_eager(BranchRating.branch))
    ).first()
    if row is None:
        return None
    rating, branch_round, version = row
    level = rating.decided_level or 0  # never None: the query asks for decided ratings
    rules = round_rules(session, branch_round)
    return PlaqueFacts(
        rating_id=rating.id,
        branch_name=rating.branch.name,
        level=level,
        level_label=rules.level_label(level, "branch"),
        year=branch_round.year,
        rules_version=version,
        finalised_at=branch_round.finalised_at,
        decision_meeting_date=branch_round.decision_meeting_date,
        branch_id=rating.branch_id,
    )


# --- the notice of the result to every organisation ---------------------------------------------------


@dataclass(frozen=True)
class NoticeReport:
    queued: int  # e-mails written to the outbox now
    already_queued: int  # recipients that had this notice already (a retry, a second finalise)
    organisations: int  # organisations with at least one recipient
    without_email: int  # accounts holding a role on an organisation but no usable e-mail address


def public_page_url(settings: Settings, tenant_slug: str, year: int) -> str:
    """The public star page of `year` on the configured base URL, for notices sent where there is no
    request (the command line, a worker). Web views build the same with `url_for`
    (publication_views.result_link_builder)."""
    return f"{str(settings.base_url).rstrip('/')}/t/{tenant_slug}/stars/?year={year}"


@dataclass(frozen=True)
class _Recipient:
    account_id: int
    name: str
    email: str | None


def notify_results(session: Session, branch_round: BranchRound, settings: Settings, link_for: LinkFor) -> NoticeReport:
    """Queue the notice of the result (亮星: results go back to every organisation) in the outbox.

    One e-mail per organisation and recipient: each rated branch tells its secretary and committee
    members its level and medals; each 机关党委/党总支 tells its staff the levels of the branches in its
    subtree. Recipients are the active accounts holding a branch or organisation role there, with an
    e-mail address. The outbox's dedupe key is round + organisation + address, so calling this again
    (a retried request, a second finalise) never mails anyone twice. Delivery is asked for after the
    caller commits. Call it in the finalising transaction, after the round is FINALISED.
    """
    if branch_round.state is not BranchRoundState.FINALISED:
        raise ServiceError(_("本年度星级评定尚未定星公布，不能发送结果通知"))
    version = session.scalar(select(RuleSetVersion.version).where(RuleSetVersion.id == branch_round.rules_version_id))
    published = _published(session, branch_round, version)
    tenant = session.scalar(select(Tenant).where(Tenant.id == branch_round.tenant_id))
    if tenant is None:  # pragma: no cover - a foreign key guarantees it
        raise ServiceError(_("找不到本单位"))

    audiences = _audiences(session, published)
    recipients = _recipients(session, [org_id for org_id, _name, _branches in audiences])
    context_base = {
        "tenant_name": tenant.name,
        "year": published.year,
        "decided_on": _decided_on(published, tenant.timezone),
        "link": link_for(published.year),
    }
    queued = already = reached = 0
    without: set[int] = set()
    for org_id, org_name, branches in audiences:
        by_address: dict[str, tuple[str, _Recipient]] = {}
        for recipient in recipients.get(org_id, []):
            address = _usable_address(recipient.email)
            if address is None:
                without.add(recipient.account_id)
                continue
            by_address.setdefault(address.lower(), (address, recipient))  # one mailbox, however spelled
        if not by_address:
            continue
        reached += 1
        rows = [
            {"name": b.name, "level_label": b.level_label, "stars": b.stars, "medals": b.medal_text} for b in branches
        ]
        for address, recipient in by_address.values():
            message = queue_email(
                session,
                recipient=address,
                subject=f"【五星争创】{published.year}年度党支部星级评定结果 / Branch star ratings {published.year}",
                template="branch_result",
                context={
                    **context_base,
                    "recipient_name": recipient.name,
                    "organisation_name": org_name,
                    "single": len(branches) == 1 and branches[0].branch_id == org_id,
                    "rows": rows,
                },
                dedupe_key=_dedupe_key(branch_round.id, org_id, address),
            )
            if message is None:
                already += 1
            else:
                queued += 1
    report = NoticeReport(queued=queued, already_queued=already, organisations=reached, without_email=len(without))
    if queued:
        audit.record(
            session,
            "branch_round.results_notified",
            branch_round,
            after={
                "year": published.year,
                "queued": queued,
                "already_queued": already,
                "organisations": reached,
                "without_email": len(without),
            },
        )
        enqueue_after_commit(session, settings, task_names.DELIVER_OUTBOX)
    return report


def _audiences(session: Session, published: PublishedRound) -> list[tuple[int, str, list[PublishedBranch]]]:
    """(organisation id, name, its published branches): each branch for itself, then every
    机关党委/党总支 with the branches of its subtree (one query for the middle organisations)."""
    audiences: list[tuple[int, str, list[PublishedBranch]]] = [
        (branch.branch_id, branch.name, [branch]) for branch in published.branches
    ]
    middles = session.execute(
        select(Organisation.id, Organisation.name, Organisation.path)
        .where(Organisation.kind.in_(MIDDLE_KINDS))
        .order_by(Organisation.path)
    ).all()
    for org_id, name, path in middles:
        inside = [branch for branch in published.branches if path and branch.path.startswith(path)]
        if inside:
            audiences.append((org_id, name, inside))
    return audiences


def _recipients(session: Session, organisation_ids: Iterable[int]) -> dict[int, list[_Recipient]]:
    """organisation id → the active accounts holding a notified role on it (one query)."""
    ids = sorted(set(organisation_ids))
    result: dict[int, list[_Recipient]] = {}
    if not ids:
        return result
    seen: set[tuple[int, int]] = set()
    for org_id, account_id, name, email in session.execute(
        select(RoleGrant.organisation_id, Account.id, Account.display_name, Account.email)
        .join(Account, Account.id == RoleGrant.account_id)
        .where(
            RoleGrant.role.in_(NOTIFIED_ROLES),
            RoleGrant.organisation_id.in_(ids),
            Account.active.is_(True),
        )
        .order_by(RoleGrant.organisation_id, Account.id)
    ):
        if org_id is None or (org_id, account_id) in seen:  # a secretary also on the committee: once
            continue
        seen.add((org_id, account_id))
        result.setdefault(org_id, []).append(_Recipient(account_id, name, email))
    return result


def _usable_address(email: str | None) -> str | None:
    if not email or not email.strip():
        return None
    try:
        return normalise_recipient(email)
    except ServiceError:
        log.warning("an account's stored e-mail address is not valid; no result notice for it")
        return None


def _dedupe_key(round_id: int, org_id: int, address: str) -> str:
    digest = hashlib.sha256(address.lower().encode("utf-8")).hexdigest()[:32]
    return f"branch-result:{round_id}:{org_id}:{digest}"


def _decided_on(published: PublishedRound, timezone: str) -> str:
    if published.decision_meeting_date is not None:
        return str(published.decision_meeting_date.isoformat())
    if published.finalised_at is not None:
        return str(published.finalised_at.astimezone(ZoneInfo(timezone)).date().isoformat())
    return ""


__all__ = [
    "LinkFor",
    "MedalShown",
    "NoticeReport",
    "PlaqueFacts",
    "PublishedBranch",
    "PublishedGroup",
    "PublishedRound",
    "notify_results",
    "plaque_facts",
    "public_page_url",
    "published_round",
    "published_years",
]
