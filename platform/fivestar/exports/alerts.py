"""The alert when an export delivery fails for good: every active tenant administrator is told once."""

from __future__ import annotations

import logging

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account, RoleGrant
from fivestar.config import Settings
from fivestar.enums import Role
from fivestar.errors import ServiceError
from fivestar.exports.models import ExportDelivery, ExportTarget
from fivestar.exports.services import METHOD_LABELS, describe_destination, round_label
from fivestar.i18n import _
from fivestar.outbox.models import Channel
from fivestar.outbox.services import Outgoing, normalise_recipient, queue_many
from fivestar.reports.jobs.kinds import kind_label
from fivestar.tenants.models import Tenant

log = logging.getLogger(__name__)


def alert_failed(session: Session, settings: Settings, tenant_id: int, delivery_id: int, error: str) -> int:
    """Tell every active tenant administrator, in the inbox and by e-mail (through the outbox), that
    a delivery failed for good. Runs in the transaction that marked it failed; the dedupe keys name
    the delivery and its resend count, so a repeated transition (which the conditional UPDATE
    already prevents) would still write nothing twice."""
    delivery = session.scalar(select(ExportDelivery).where(ExportDelivery.id == delivery_id))
    tenant = session.get(Tenant, tenant_id)
    if delivery is None or tenant is None:  # pragma: no cover - the caller just updated the row
        return 0
    target = session.scalar(select(ExportTarget).where(ExportTarget.id == delivery.target_id))
    if target is None:  # pragma: no cover - deleted together with its deliveries
        return 0
    admins = session.execute(
        select(Account.id, Account.display_name, Account.email)
        .join(RoleGrant, and_(RoleGrant.tenant_id == Account.tenant_id, RoleGrant.account_id == Account.id))
        .where(RoleGrant.role == Role.TENANT_ADMIN, Account.active.is_(True))
        .distinct()
        .order_by(Account.id)
    ).all()
    what = f"{round_label(delivery.round_type, delivery.round_key)} · {kind_label(target.report_kind)}"
    subject = _("【五星争创】上报失败：%(target)s", target=target.name)
    path = f"/t/{tenant.slug}/exports/"
    detail = _(
        "“%(what)s”未能上报到“%(target)s”（%(method)s：%(where)s），已尝试 %(attempts)d 次。最后一次的错误：%(error)s",
        what=what,
        target=target.name,
        method=str(METHOD_LABELS[target.method]),
        where=describe_destination(target),
        attempts=delivery.attempts,
        error=error,
    )
    advice = _("请到“上报上级”页面检查设置，修正后点“重新发送”。")
    key = f"export-failed:{delivery.id}:{delivery.resends}"
    messages: list[Outgoing] = []
    for admin in admins:
        body = f"{admin.display_name}，您好：\n\n{detail}\n\n{advice}\n\n{tenant.name}"
        messages.append(
            Outgoing(
                Channel.INAPP, admin.display_name, subject, body, f"{key}:a:{admin.id}", account_id=admin.id, link=path
            )
        )
        if admin.email:
            try:
                address = normalise_recipient(admin.email)
            except ServiceError:
                continue
            link = settings.base_url.rstrip("/") + path
            messages.append(Outgoing(Channel.EMAIL, address, subject, f"{body}\n\n{link}\n", f"{key}:e:{admin.id}"))
    if not messages:
        log.warning(
            "export delivery %s of tenant %s failed and the tenant has no active administrator", delivery_id, tenant_id
        )
        return 0
    queue_many(session, tenant_id, messages)
    return len(messages)


__all__ = ["alert_failed"]
