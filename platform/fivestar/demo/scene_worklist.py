"""Work on every demo login's home page from the first minute (the home is a work list, home/providers.py).

The running member round already gives the member, the secretary and the branch committee member their
self-assessments and the branch's steps, and the demo secretary's branch rating its 荐星. What the other
logins would wait for until a visitor walks the branch up, this scene puts there at once:

* 机关党委 staff (`orgstaff`): one more branch of their 机关党委 has sent its 议星 opinion up and waits
  for them to forward it (instead of being decided already);
* the committee (`committee`, `admin`): one branch elsewhere waits for 定星;
* the administrator (`admin`): an e-mail that could not be delivered, to look at and resend.

The inspector reads, and has no work: their home says so. Demo only; called by `seed` for each new
district, inside its tenant; a district without an open branch rating gets the failed e-mail only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.models import BranchRating, BranchRound, BranchRoundState, RatingStep
from fivestar.kernel.rounds import seeding
from fivestar.orgs.models import Organisation
from fivestar.outbox.models import Channel, DeliveryState, OutboxMessage
from fivestar.tenants.models import Tenant
from fivestar.timekeeping import clock


def seed_worklist(session: Session, tenant: Tenant, own_branch: Organisation, party_committee: Organisation) -> None:
    """See the module's docstring. `own_branch` is the demo secretary's (left alone: the visitor walks
    it), `party_committee` the demo 机关党委 staff's."""
    moved: dict[str, str] = {}
    branch_round = session.scalar(select(BranchRound).where(BranchRound.state == BranchRoundState.OPEN))
    if branch_round is not None:
        rows = session.execute(
            select(BranchRating, Organisation)
            .join(Organisation, BranchRating.branch_id == Organisation.id)
            .where(
                BranchRating.round_id == branch_round.id,
                BranchRating.step == RatingStep.DECIDED,
                BranchRating.branch_id != own_branch.id,
                # the inspectors' example (decided two below its 荐星, with a reason) stays decided
                BranchRating.decision_reason.is_(None),
            )
            .order_by(Organisation.path)
        ).all()
        under_party = [(r, o) for r, o in rows if o.parent_id == party_committee.id]
        elsewhere = [(r, o) for r, o in rows if o.parent_id != party_committee.id]
        for picked, step in ((under_party[:1], RatingStep.ORG_REVIEW), (elsewhere[:1], RatingStep.COMMITTEE)):
            for rating, org in picked:
                _undecide(rating, step)
                moved[org.name] = step.value
    session.add(
        OutboxMessage(
            tenant_id=tenant.id,
            channel=Channel.EMAIL,
            recipient="liu.wei@mail-bounce.example.org",
            subject="【五星争创】账号开通通知（演示数据）",
            body_text="您的账号已开通。（演示数据：这封邮件的地址有误，发送失败，请在“发送记录”中查看并重新发送。）",
            dedupe_key="demo:worklist:failed-mail",
            state=DeliveryState.FAILED,
            attempts=8,
            created_at=clock.now() - dt.timedelta(hours=3),
            last_error="550 5.1.1 收件人邮箱不存在（演示数据）",
        )
    )
    session.flush()
    audit.record(
        session,
        "demo.worklist",
        object_type="tenants",
        object_id=tenant.id,
        after={"ratings_waiting": moved, "failed_mail": 1},
        reason="demo data",
    )


def _undecide(rating: BranchRating, step: RatingStep) -> None:
    """A decided rating as it stood before: waiting for its 机关党委 (ORG_REVIEW) or for 定星 (COMMITTEE)."""
    rating.decided_level = None
    rating.decided_at = None
    rating.decided_by = None
    rating.decision_reason = None
    rating.forwarded_at = rating.forwarded_by = None
    with seeding():  # demo data, not a walk through the steps
        rating.step = step
