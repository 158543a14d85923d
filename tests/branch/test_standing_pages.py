"""Standing's pages: the committee adjusts a branch's level through the confirmation step (with an
evidence file), the history shows it; mid-year events prompt and are dismissed; the public star page
shows the current level beside the year's decision and lists the adjustment; refusals — 403 for a
role without the right, 404 for another branch's secretary and another district."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BranchRating
from fivestar.enums import OrgKind
from fivestar.kernel.rounds import seeding  # noqa: F401 - keeps the workflows declared
from fivestar.standing import services
from fivestar.standing.models import Adjustment, AdjustmentFile, EventState, LevelHistory, SourceKind, StandingEvent
from fivestar.tenancy import tenant_context
from tests.branch.publication_support import Decided, build_round
from tests.support import count_queries

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _history_rows(session: Session, world: dict[str, Any]) -> None:
    """The history of the built 2024 round, as finalising writes it."""
    branch_round = world["published_round"]
    with tenant_context(world["tenant"].id):
        services.record_round_levels(
            session,
            services.RoundLevels(
                SourceKind.BRANCH_ROUND, world["tenant"].id, branch_round.id, "2024", branch_round.finalised_at
            ),
            select(BranchRating.branch_id.label("subject_id"), BranchRating.decided_level.label("level")).where(
                BranchRating.round_id == branch_round.id
            ),
        )
        session.flush()


def _adjust_data(**overrides: str) -> dict[str, str]:
    data = {
        "to_level": "2",
        "cause": "other",
        "veto_key": "",
        "reason": "年中巡察发现党建工作严重滑坡",
        "meeting_name": "工委2026年第3次会议",
        "meeting_date": "2025-03-01",
        "event_id": "",
    }
    data.update(overrides)
    return data


def test_the_committee_adjusts_through_the_confirmation_step(
    client: FlaskClient, session: Session, published: dict[str, Any], login: Any, frozen_now: Any
) -> None:
    _history_rows(session, published)
    tenant, one = published["tenant"], published["one"]
    login(tenant, published["committee"])
    base = f"/t/{tenant.slug}/standing/branches/{one.id}"
    page = client.get(f"{base}/adjust")
    assert page.status_code == 200
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page.get_data(as_text=True))
    assert version is not None
    data = _adjust_data(version=version.group(1))

    missing = client.post(f"{base}/adjust", data={**data, "reason": ""})
    assert missing.status_code == 400 and "请填写调整理由" in missing.get_data(as_text=True)
    same = client.post(f"{base}/adjust", data={**data, "to_level": "4"})
    assert same.status_code == 400 and "相同" in same.get_data(as_text=True)

    confirm = client.post(f"{base}/adjust", data=data)
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "确认记录（不可撤销）" in text and "四星 → 二星" in text
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(Adjustment)) == 0  # nothing yet

    import io

    recorded = client.post(
        f"{base}/adjust/confirm",
        data={**data, "files": (io.BytesIO(PDF), "决定.pdf")},
        content_type="multipart/form-data",
    )
    assert recorded.status_code == 302, recorded.get_data(as_text=True)[:2000]
    again = client.post(f"{base}/adjust/confirm", data=data)  # the same confirmation twice: stale
    assert again.status_code == 409 and "已被他人修改" in again.get_data(as_text=True)
    with tenant_context(tenant.id):
        [adjustment] = session.scalars(select(Adjustment))
        assert (adjustment.from_level, adjustment.to_level) == (4, 2)
        [attached] = session.scalars(select(AdjustmentFile))
        assert attached.adjustment_id == adjustment.id and attached.content_type == "application/pdf"
        assert session.get(BranchRating, published["published_one"].id).decided_level == 4  # type: ignore[union-attr]

    history = client.get(f"{base}/").get_data(as_text=True)
    assert "二星" in history and "摘星" in history and "工委2026年第3次会议" in history and "决定.pdf" in history
    round_page = client.get(f"/t/{tenant.slug}/branch-rating/{published['published_round'].id}")
    assert round_page.status_code == 200 and "现为二星" in round_page.get_data(as_text=True)
    dossier = client.get(f"/t/{tenant.slug}/branch-rating/dossier/{published['published_one'].id}")
    assert "现为二星（已调整）" in dossier.get_data(as_text=True)
    org_page = client.get(f"/t/{tenant.slug}/orgs/{one.id}").get_data(as_text=True)
    assert f"/t/{tenant.slug}/standing/branches/{one.id}/" in org_page  # the branch page links its history
    member = published["members"][0]
    member_page = client.get(f"/t/{tenant.slug}/people/{member.id}").get_data(as_text=True)
    assert f"/t/{tenant.slug}/standing/members/{member.id}/" in member_page
    download = client.get(f"/t/{tenant.slug}/standing/files/{attached.id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert download.headers["Cross-Origin-Resource-Policy"] == "same-origin"

    # the public page: the 2024 decision, the current level marked, the adjustment listed
    client.post(f"/t/{tenant.slug}/logout")
    public = client.get(f"/t/{tenant.slug}/stars/").get_data(as_text=True)
    assert "现为二星" in public and "年中巡察发现党建工作严重滑坡" in public and "工委2026年第3次会议" in public


def test_refusals(
    client: FlaskClient, session: Session, published: dict[str, Any], login: Any, two_tenants: dict[str, Any]
) -> None:
    tenant, one, direct = published["tenant"], published["one"], published["direct"]
    base = f"/t/{tenant.slug}/standing"
    login(tenant, published["secretary"])  # secretary of `one`
    assert client.get(f"{base}/branches/{one.id}/").status_code == 200  # its own branch's history
    assert client.get(f"{base}/branches/{one.id}/adjust").status_code == 403
    assert client.post(f"{base}/branches/{one.id}/adjust", data=_adjust_data()).status_code == 403
    assert client.get(f"{base}/branches/{direct.id}/").status_code == 404  # another branch
    assert client.get(f"{base}/").status_code == 403
    client.post(f"/t/{tenant.slug}/logout")
    login(tenant, published["member"])
    assert client.get(f"{base}/branches/{one.id}/").status_code == 403  # sees the branch, not its history
    client.post(f"/t/{tenant.slug}/logout")
    login(tenant, published["committee"])
    other = two_tenants["b"]["branch"]
    assert client.get(f"{base}/branches/{other.id}/").status_code == 404  # another district
    assert client.post(f"{base}/branches/{other.id}/adjust", data=_adjust_data()).status_code == 404
    assert client.get(f"{base}/branches/999999/").status_code == 404
    assert client.get(f"{base}/branches/{published['party'].id}/").status_code == 404  # a 机关党委 has no level
    assert client.get(f"{base}/people/{one.id}/").status_code == 404
    assert client.get(f"{base}/members/{two_tenants['b']['members'][0].id}/").status_code == 404


def test_a_veto_event_prompts_and_is_dismissed(
    client: FlaskClient, session: Session, published: dict[str, Any], login: Any, frozen_now: Any
) -> None:
    tenant, one = published["tenant"], published["one"]
    login(tenant, published["committee"])
    base = f"/t/{tenant.slug}/standing"
    with tenant_context(tenant.id):
        from fivestar.tenants.services import current_rules, version_rules

        version = current_rules(session, tenant)
        assert version is not None
        key = version_rules(version).branch.vetoes[0].key
    created = client.post(
        f"{base}/branches/{one.id}/events/new",
        data={"kind": "veto", "veto_key": key, "occurred_on": "2025-02-01", "note": "支部书记受到党纪处分"},
    )
    assert created.status_code == 302, created.get_data(as_text=True)[:2000]
    with tenant_context(tenant.id):
        [event] = session.scalars(select(StandingEvent))
        assert session.scalar(select(func.count()).select_from(LevelHistory)) == 0
    listing = client.get(f"{base}/").get_data(as_text=True)
    assert "否决事项：请研究是否摘星" in listing
    page = client.get(f"{base}/prompts/{event.id}").get_data(as_text=True)
    assert "不予调整" in page and f"adjust?event={event.id}" in page
    refused = client.post(f"{base}/prompts/{event.id}/dismiss", data={"reason": "", "version": str(event.version)})
    assert refused.status_code == 400
    stale = client.post(f"{base}/prompts/{event.id}/dismiss", data={"reason": "已整改", "version": "99"})
    assert stale.status_code == 409
    done = client.post(
        f"{base}/prompts/{event.id}/dismiss", data={"reason": "经核实已整改到位", "version": str(event.version)}
    )
    assert done.status_code == 302
    with tenant_context(tenant.id):
        session.refresh(event)
        assert event.state is EventState.DISMISSED
    assert "没有待研究的事项" in client.get(f"{base}/").get_data(as_text=True)


def test_the_public_page_keeps_a_fixed_number_of_statements(
    client: FlaskClient, session: Session, create_tenant: Any, create_org: Any, engine: Engine
) -> None:
    counts = []
    for size in (2, 12):
        tenant = create_tenant(slug=f"standing-public-{size}")
        orgs = [create_org(tenant, OrgKind.BRANCH, name=f"公开{i:02d}党支部") for i in range(size)]
        branch_round, _ratings = build_round(session, tenant, year=2024, decisions=[Decided(o, 3) for o in orgs])
        with tenant_context(tenant.id):
            services.record_round_levels(
                session,
                services.RoundLevels(
                    SourceKind.BRANCH_ROUND, tenant.id, branch_round.id, "2024", branch_round.finalised_at
                ),  # type: ignore[arg-type]
                select(BranchRating.branch_id.label("subject_id"), BranchRating.decided_level.label("level")).where(
                    BranchRating.round_id == branch_round.id
                ),
            )
        session.flush()
        assert client.get(f"/t/{tenant.slug}/stars/").status_code == 200
        with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as statements:
            assert client.get(f"/t/{tenant.slug}/stars/").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def test_the_plaque_shows_the_current_level(
    client: FlaskClient, session: Session, published: dict[str, Any], frozen_now: Any
) -> None:
    tenant, one = published["tenant"], published["one"]
    plaque = f"/t/{tenant.slug}/stars/plaque/{published['published_one'].id}.pdf"
    assert client.get(plaque).status_code == 200
    _history_rows(session, published)
    from fivestar.standing.subjects import Subject

    with tenant_context(tenant.id):
        checked = services.check_adjustment(
            session,
            Subject.branch(one.id),
            None,
            services.AdjustmentInput(
                to_level=0, cause="other", reason="严重违纪", meeting_name="工委会议", meeting_date="2025-03-01"
            ),
            version=services.history_version(session, Subject.branch(one.id)),
            today=frozen_now.at.date(),
        )
        services.record_adjustment(session, checked)
        session.flush()
    refused = client.get(plaque)  # 摘星 to 无星: no plaque any more
    assert refused.status_code == 409 and "无星" in refused.get_data(as_text=True)


def test_the_history_page_keeps_a_fixed_number_of_statements(
    client: FlaskClient, session: Session, published: dict[str, Any], login: Any, engine: Engine, frozen_now: Any
) -> None:
    from fivestar.standing.subjects import Subject

    tenant, one = published["tenant"], published["one"]
    _history_rows(session, published)
    login(tenant, published["committee"])
    page = f"/t/{tenant.slug}/standing/branches/{one.id}/"
    counts = []
    for level in (3, 2, 1, 2, 3):
        with tenant_context(tenant.id):
            subject = Subject.branch(one.id)
            checked = services.check_adjustment(
                session,
                subject,
                None,
                services.AdjustmentInput(
                    to_level=level,
                    cause="other",
                    reason=f"第{level}次调整",
                    meeting_name="工委会议",
                    meeting_date="2025-03-01",
                ),
                version=services.history_version(session, subject),
                today=frozen_now.at.date(),
            )
            services.record_adjustment(session, checked)
            session.flush()
        if level in (3, 1):
            with count_queries(engine, exclude=("SAVEPOINT", "RELEASE", "ROLLBACK")) as statements:
                response = client.get(page)
            assert response.status_code == 200
            counts.append(len(statements))
    text = client.get(page).get_data(as_text=True)
    assert text.count("第3次调整") == 2 and "第1次调整" in text and text.count("工委会议") >= 5
    assert counts[0] == counts[1], counts
