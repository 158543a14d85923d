"""亮星 on the web (`/t/<slug>/stars/…`): the tenant's public star page, the A3 bulletin-board poster
and a plaque per branch.

Public by design, with no login and no `require`: the notice asks for results to be shown publicly
(unit website, bulletin board), and only what the committee finalised is ever read
(branch_rounds/publication.py filters on the round's state in every query). An unknown tenant is a
404 from the tenant blueprint; a year with nothing published is a friendly empty page, not a 404.

Search engines may index these pages and files (`X-Robots-Tag: index, follow, noarchive`): the
results are public on purpose, but "noarchive" keeps search engines from serving an old copy after
a later, recorded adjustment (增星摘星). The PDFs cost some CPU to draw, so they are rate-limited per
address (FIVESTAR_PUBLIC_PDF_LIMIT, default 20 per minute).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, render_template, request, url_for
from sqlalchemy.orm import Session

from fivestar.branch_rounds import publication
from fivestar.branch_rounds.models import BranchRound
from fivestar.branch_rounds.publication import LinkFor, PublishedGroup, PublishedRound
from fivestar.documents import branch_stars
from fivestar.extensions import limiter
from fivestar.i18n import _, current_language
from fivestar.kernel import events
from fivestar.rules import level_label
from fivestar.standing import queries as standing_queries
from fivestar.timekeeping import DEFAULT_TIMEZONE, clock
from fivestar.web.downloads import download
from fivestar.web.errors import user_error
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

stars_bp = Blueprint("branch_rating_stars", __name__, url_prefix="/stars")

DEFAULT_PDF_LIMIT = "20 per minute"
ROBOTS = "index, follow, noarchive"
EARLIEST_YEAR, LATEST_YEAR = 2000, 2999


def _pdf_limit() -> str:
    return str(current_app.config.get("FIVESTAR_PUBLIC_PDF_LIMIT", DEFAULT_PDF_LIMIT))


@stars_bp.after_request
def _public_results(response: Response) -> Response:
    response.headers["X-Robots-Tag"] = ROBOTS
    return response


def result_link_builder() -> LinkFor:
    """Absolute links to the public page of a year, for the result notice: on the configured base
    URL, never on the request's Host header. Pass it to `publication.notify_results`."""
    base = str(current_app.config["FIVESTAR_SETTINGS"].base_url).rstrip("/")
    return lambda year: base + url_for("tenant.branch_rating_stars.public", year=year)


def long_date(day: dt.date | dt.datetime | None, timezone: str | None = None) -> str:
    """2026年2月10日 / 10 Feb 2026; a datetime is read in `timezone` first."""
    if day is None:
        return ""
    if isinstance(day, dt.datetime):
        day = day.astimezone(ZoneInfo(timezone or DEFAULT_TIMEZONE)).date()
    if current_language() == "en":
        return f"{day.day} {day:%b} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def _year_arg() -> int | None:
    raw = (request.args.get("year") or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not EARLIEST_YEAR <= int(raw) <= LATEST_YEAR:
        raise user_error(400, _("年度应为四位数字，例如 2025"))
    return int(raw)


def _chosen(years: list[int]) -> tuple[int | None, PublishedRound | None]:
    """The year asked for (default: the latest published) and its results, if published."""
    asked = _year_arg()
    year = asked if asked is not None else (years[0] if years else None)
    if year is None or year not in years:
        return year, None
    return year, publication.published_round(db(), year)


def _decided_line(published: PublishedRound) -> str:
    timezone = current_tenant().timezone
    if published.decision_meeting_date is not None:
        return _("经 %(day)s 工委会议研究决定，现予公布", day=long_date(published.decision_meeting_date))
    if published.finalised_at is not None:
        return _("%(day)s 定星公布", day=long_date(published.finalised_at, timezone))
    return ""


def _summary(published: PublishedRound) -> str:
    parts = [_("%(label)s %(n)d 个", label=label, n=n) for _level, label, n in published.level_counts()]
    total = _("共 %(n)d 个党支部", n=len(published.branches))
    return total + ("：" + " · ".join(parts) if parts else "")


def _group_name(group: PublishedGroup) -> str:
    return _("%(name)s（直属党支部）", name=group.name) if group.direct else group.name


@stars_bp.get("/", endpoint="public")
def public() -> Any:
    years = publication.published_years(db())
    year, published = _chosen(years)
    # 增星摘星: the current level beside the year's decision, and the adjustments (two statements).
    branch_ids = [b.branch_id for b in published.branches] if published is not None else []
    return render_template(
        "branch/stars/public.html",
        years=years,
        year=year,
        published=published,
        decided_line=_decided_line(published) if published is not None else "",
        summary=_summary(published) if published is not None else "",
        group_name=_group_name,
        current=standing_queries.current_branch_levels(db(), branch_ids),
        adjustments=standing_queries.adjustments(db(), branch_ids=branch_ids),
        adjusted_since=standing_queries.adjusted_since,
        level_name=level_label,
        # other public pages of the district (kernel.events.ask_public_links): the published plans
        links=events.answers_links(events.ask_public_links.send(current_tenant(), session=db())),
    )


@stars_bp.get("/poster.pdf", endpoint="poster")
@limiter.limit(_pdf_limit)
def poster() -> Any:
    """The bulletin-board poster (A3 portrait) of a published year (`?year=`, default the latest)."""
    _year, published = _chosen(publication.published_years(db()))
    if published is None:
        raise user_error(404, _("该年度没有已公布的党支部星级评定结果"))
    tenant = current_tenant()
    groups = tuple(
        branch_stars.PosterGroup(
            name=_group_name(group),
            note=_("%(n)d 个党支部", n=len(group.branches)),
            branches=tuple(
                branch_stars.PosterBranch(
                    name=branch.name,
                    level=branch.level,
                    level_label=branch.level_label,
                    medals=tuple(
                        branch_stars.PosterMedal(m.medal.value, m.label)
                        if m.medal is not None
                        else branch_stars.PosterMedal(None, "—")
                        for m in branch.medals
                    ),
                )
                for branch in group.branches
            ),
        )
        for group in published.groups
    )
    generated = long_date(clock.now(), tenant.timezone)
    document = branch_stars.Poster(
        tenant_name=tenant.name,
        title=_("%(year)d年度党支部星级评定结果", year=published.year),
        subtitle=_decided_line(published),
        summary=_summary(published),
        indicators=tuple(label for _key, label in published.indicators),
        groups=groups,
        footer=_(
            "%(tenant)s · %(year)d年度党支部星级评定 · 规则第 %(version)s 版 · 生成于 %(day)s",
            tenant=tenant.name,
            year=published.year,
            version=published.rules_version or "?",
            day=generated,
        ),
        headings=(_("序号"), _("党支部"), _("星级")),
        continued=_("续"),
    )
    data = branch_stars.render_poster(document)
    return download(data, _("%(year)d年度党支部星级评定结果.pdf", year=published.year), inline=True)


@stars_bp.get("/plaque/<int:rating_id>.pdf", endpoint="plaque")
@limiter.limit(_pdf_limit)
def plaque(rating_id: int) -> Any:
    """A published branch's plaque (A4 landscape). A rating of a round not finalised is a 404, as if
    it did not exist: nothing unpublished is ever confirmed here."""
    facts = publication.plaque_facts(db(), rating_id)
    if facts is None:
        raise user_error(404, _("没有找到已公布的评定结果"))
    # 增星摘星: a level adjusted since the year's decision is what the plaque shows.
    now = standing_queries.current_branch_levels(db(), [facts.branch_id]).get(facts.branch_id)
    if now is not None and now.adjusted and now.level is not None and now.level != facts.level:
        facts = dataclasses.replace(facts, level=now.level, level_label=level_label(now.level))
    if facts.level <= 0:
        raise user_error(409, _("评定为无星的党支部不制作星级牌匾"))
    tenant = current_tenant()
    decided = facts.decision_meeting_date or facts.finalised_at
    document = branch_stars.Plaque(
        tenant_name=tenant.name,
        branch_name=facts.branch_name,
        level=facts.level,
        title=facts.title,
        year_label=_("%(year)d年度", year=facts.year),
        heading=_("党支部星级评定"),
        issuer_line=f"{tenant.name}  {long_date(decided, tenant.timezone)}".strip(),
        provenance=_(
            "评定年度 %(year)d · 规则第 %(version)s 版 · 编号 %(id)d",
            year=facts.year,
            version=facts.rules_version or "?",
            id=facts.rating_id,
        ),
    )
    data = branch_stars.render_plaque(document)
    filename = _("星级牌匾-%(branch)s-%(year)d.pdf", branch=facts.branch_name, year=facts.year)
    return download(data, filename, inline=True)


def notify_after_finalise(session: Session, branch_round: BranchRound) -> publication.NoticeReport:
    """For the finalise view (committee part): queue the result notice to every organisation in the
    finalising transaction, with links to this public page; delivery follows the commit."""
    settings = current_app.config["FIVESTAR_SETTINGS"]
    return publication.notify_results(session, branch_round, settings, result_link_builder())
