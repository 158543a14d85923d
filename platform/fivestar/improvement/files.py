"""Evidence files of a plan: an item's (证明材料 of the work done) and the acceptance review's.

How a file is checked and stored is `fivestar.kernel.uploads` (content sniffing, PDF and image
checks, random keys under `<root>/<tenant id>/`); this module keeps the rows (`ImprovementFile`) and
the rules of when they change: an item's files while the plan is not reviewed yet (the branch,
PLAN_EDIT); the review's files while the plan is published and not yet reviewed (the committee,
PLAN_REVIEW). A batch is checked as a whole before anything is written; files are written before
the rows are flushed and `uploads.discard()` removes them when the transaction does not commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.errors import ConflictError, NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.improvement.models import ImprovementFile, ImprovementPlan, PlanItem, PlanState
from fivestar.kernel import uploads
from fivestar.kernel.uploads import DEFAULT_FILE_BYTES, Upload
from fivestar.timekeeping import clock

MAX_FILES = 20  # per item, and for the review
PLAN_BYTES = 100 * 1024 * 1024


def _fields(row: ImprovementFile) -> dict[str, object]:
    return audit.snapshot(row, ["plan_id", "item_id", "original_name", "content_type", "size", "sha256"])


def store(
    session: Session,
    plan: ImprovementPlan,
    item: PlanItem | None,
    files: Sequence[Upload],
    *,
    root: Path,
    file_bytes: int = DEFAULT_FILE_BYTES,
) -> tuple[list[ImprovementFile], list[Path]]:
    """Check and store uploads for `item` (or, with None, for the acceptance review); returns the rows
    and the written paths (for `uploads.discard` if the transaction does not commit)."""
    if item is None and plan.state is not PlanState.PUBLISHED:
        raise ConflictError(_("只有已公布、尚未验收的计划可以上传验收材料"))
    if item is not None and plan.state is PlanState.REVIEWED:
        raise ConflictError(_("计划已考核验收，不能再更改"))
    chosen = [f for f in files if f.name or f.data]
    if not chosen:
        raise ServiceError(_("请选择要上传的文件"), field="files")
    where = ImprovementFile.item_id == item.id if item is not None else ImprovementFile.item_id.is_(None)
    count = int(session.scalar(select(func.count()).where(ImprovementFile.plan_id == plan.id, where)) or 0)
    if count + len(chosen) > MAX_FILES:
        raise ServiceError(_("每项最多上传 %(n)d 个文件", n=MAX_FILES), field="files")
    checked = [uploads.inspect_upload(f, file_bytes, fallback_name=_("证明材料")) for f in chosen]
    used = int(
        session.scalar(
            select(func.coalesce(func.sum(ImprovementFile.size), 0)).where(ImprovementFile.plan_id == plan.id)
        )
        or 0
    )
    if used + sum(len(c.data) for c in checked) > PLAN_BYTES:
        raise uploads.UploadTooLargeError(_("每个计划的材料总量不能超过 %(mb)s MB", mb=uploads.megabytes(PLAN_BYTES)))
    who = audit.current_actor().name[:120]
    now = clock.now()
    stored, paths = uploads.write_all(root, plan.tenant_id, checked)
    try:
        rows = [
            ImprovementFile(
                tenant_id=plan.tenant_id,
                plan_id=plan.id,
                item_id=item.id if item is not None else None,
                uploaded_at=now,
                uploaded_by=who,
                **file.columns(),
            )
            for file in stored
        ]
        session.add_all(rows)
        session.flush()
        for row in rows:
            audit.record(session, "improvement_file.upload", row, after=_fields(row))
    except BaseException:
        uploads.discard(paths)
        raise
    return rows, paths


def load(session: Session, file_id: int) -> ImprovementFile:
    found = session.scalar(select(ImprovementFile).where(ImprovementFile.id == file_id))
    if found is None:
        raise NotFoundError(_("文件不存在"))
    return found


def delete(session: Session, plan: ImprovementPlan, row: ImprovementFile, *, root: Path) -> Path:
    """Remove a file's row while the plan is not reviewed; returns the path to remove after commit."""
    if plan.state is PlanState.REVIEWED:
        raise ConflictError(_("计划已考核验收，不能再更改"))
    path = uploads.stored_path(root, row.tenant_id, row.storage_key)
    audit.record(session, "improvement_file.delete", row, before=_fields(row))
    session.delete(row)
    session.flush()
    return path


def read(root: Path, row: ImprovementFile) -> bytes:
    return uploads.read_stored(root, row.tenant_id, row.storage_key)


def download_name(row: ImprovementFile) -> str:
    return uploads.download_name(row.original_name, row.content_type)


def files_of(session: Session, plan_id: int) -> dict[int | None, list[ImprovementFile]]:
    """The plan's files per item id (None: the acceptance review's), oldest first (one query)."""
    result: dict[int | None, list[ImprovementFile]] = {}
    for row in session.scalars(
        select(ImprovementFile).where(ImprovementFile.plan_id == plan_id).order_by(ImprovementFile.id)
    ):
        result.setdefault(row.item_id, []).append(row)
    return result


def paths_of(root: Path, tenant_id: int, keys: Sequence[str]) -> list[Path]:
    return [uploads.stored_path(root, tenant_id, key) for key in keys]


__all__ = ["MAX_FILES", "delete", "download_name", "files_of", "load", "paths_of", "read", "store"]
