"""Reading one's inbox: the newest notices first, unread counts, marking read."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fivestar.inbox.models import Notice
from fivestar.timekeeping import clock

PAGE_SIZE = 50


def unread_count(session: Session, account_id: int) -> int:
    return int(session.scalar(
        select(func.count()).select_from(Notice).where(Notice.account_id == account_id, Notice.read_at.is_(None))
    ) or 0)


def latest(session: Session, account_id: int, *, limit: int = PAGE_SIZE) -> list[Notice]:
    return list(session.scalars(
        select(Notice).where(Notice.account_id == account_id).order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(limit)
    ))


def open_notice(session: Session, account_id: int, notice_id: int) -> Notice | None:
    """The account's own notice, marked read (None for anyone else's: a 404, not a 403)."""
    notice = session.scalar(select(Notice).where(Notice.id == notice_id, Notice.account_id == account_id))
    if notice is not None and notice.read_at is None:
        notice.read_at = clock.now()
        session.flush()
    return notice


def mark_all_read(session: Session, account_id: int) -> int:
    result = session.execute(
        update(Notice)
        .where(Notice.account_id == account_id, Notice.read_at.is_(None))
        .values(read_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
