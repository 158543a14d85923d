"""Every blueprint, in one list. Tenant blueprints nest under `/t/<slug>/` (fivestar.web.tenant).

Nested blueprints are attached once, at import time: Flask refuses to change a blueprint after it
has been registered on an app, and tests create several apps.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from fivestar.accounts.admin_views import accounts_bp
from fivestar.accounts.views import auth_bp
from fivestar.branch_rounds.ballot_views import deliberation_bp, vote_bp
from fivestar.branch_rounds.committee_views import branch_rating_committee_bp, branch_rating_org_review_bp
from fivestar.branch_rounds.publication_views import stars_bp
from fivestar.branch_rounds.quarterly_views import branch_rating_quarterly_bp
from fivestar.branch_rounds.rating_views import branch_rating_branch_bp
from fivestar.demo.views import demo_bp
from fivestar.exports.views import exports_bp
from fivestar.home.views import home_bp
from fivestar.imports.views import imports_bp
from fivestar.improvement.review_views import improvement_public_bp, improvement_review_bp
from fivestar.improvement.views import improvement_bp
from fivestar.inbox.views import inbox_bp
from fivestar.inspection.views import inspection_bp
from fivestar.member_rounds.branch_views import member_round_branch_bp
from fivestar.member_rounds.committee_views import member_round_committee_bp
from fivestar.member_rounds.member_views import desk_card_bp, honour_bp, my_ratings_bp, self_assessment_bp
from fivestar.member_rounds.notice_views import notice_bp
from fivestar.notify.views import webhooks_bp
from fivestar.ops.views import ops_bp
from fivestar.orgs.views import orgs_bp
from fivestar.overview.views import overview_bp
from fivestar.people.views import people_bp
from fivestar.reports.jobs.views import reports_bp
from fivestar.scheduling.views import schedule_bp
from fivestar.standing.views import standing_bp
from fivestar.tenants.views import rules_bp

TENANT_BLUEPRINTS: list[Blueprint] = [
    home_bp,
    auth_bp,
    accounts_bp,
    orgs_bp,
    people_bp,
    imports_bp,
    rules_bp,
    demo_bp,
    member_round_branch_bp,
    self_assessment_bp,
    my_ratings_bp,
    honour_bp,
    desk_card_bp,
    member_round_committee_bp,
    notice_bp,
    branch_rating_branch_bp,
    branch_rating_committee_bp,
    branch_rating_org_review_bp,
    branch_rating_quarterly_bp,
    stars_bp,
    deliberation_bp,
    vote_bp,
    reports_bp,
    webhooks_bp,
    inbox_bp,
    schedule_bp,
    exports_bp,
    inspection_bp,
    standing_bp,
    improvement_bp,
    improvement_review_bp,
    improvement_public_bp,
    overview_bp,
]
PLATFORM_BLUEPRINTS: list[Blueprint] = [ops_bp]

_attached = False


def register_blueprints(app: Flask, tenant_bp: Blueprint) -> None:
    global _attached
    if not _attached:
        for child in TENANT_BLUEPRINTS:
            tenant_bp.register_blueprint(child)
        _attached = True
    app.register_blueprint(tenant_bp)
    for blueprint in PLATFORM_BLUEPRINTS:
        app.register_blueprint(blueprint)
