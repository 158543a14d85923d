"""An adjustment's evidence files (a committee decision, a notice of sanction or honour): checked and
stored through `fivestar.kernel.uploads`, one `AdjustmentFile` row each. Files arrive with the
confirmation of the adjustment and are never deleted: the adjustment they prove cannot be undone."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import uploads
from fivestar.kernel.uploads import Upload
from fivestar.standing.models import Adjustment, AdjustmentFile
from fivestar.timekeeping import clock

MAX_FILES = 10
FILE_BYTES = uploads.DEFAULT_FILE_BYTES


def check(files: Sequence[Upload], file_bytes: int = FILE_BYTES) -> list[uploads.Checked]:
    """Every upload checked before anything is written (a bad file refuses the whole confirmation)."""
    files = [f for f in files if f.name or f.data]
    if len(files) > MAX_FILES:
        raise ServiceError(_("每次调整最多上传 %(n)d 个证明材料", n=MAX_FILES), field="files")
    return [uploads.inspect_upload(f, file_bytes, fallback_name=_("证明材料")) for f in files]


def store(
    session: Session, adjustment: Adjustment, checked: Sequence[uploads.Checked], *, root: Path
) -> tuple[list[AdjustmentFile], list[Path]]:
    """Write the checked files and their rows; returns the rows and the paths (to `uploads.discard`
    if the transaction does not commit)."""
    who = audit.current_actor().name[:120]
    now = clock.now()
    stored, paths = uploads.write_all(root, adjustment.tenant_id, checked)
    try:
        rows = [
            AdjustmentFile(
                tenant_id=adjustment.tenant_id,
                adjustment_id=adjustment.id,
                uploaded_at=now,
                uploaded_by=who,
                **file.columns(),
            )
            for file in stored
        ]
        session.add_all(rows)
        session.flush()
        for row in rows:
            audit.record(
                session,
                "standing.file",
                row,
                after=audit.snapshot(row, ["adjustment_id", "original_name", "content_type", "size", "sha256"]),
            )
    except BaseException:
        uploads.discard(paths)
        raise
    return rows, paths


def files_of(session: Session, adjustment_ids: Collection[int]) -> dict[int, list[AdjustmentFile]]:
    """The files of these adjustments, oldest first (one query)."""
    found: dict[int, list[AdjustmentFile]] = {}
    if not adjustment_ids:
        return found
    for row in session.scalars(
        select(AdjustmentFile).where(AdjustmentFile.adjustment_id.in_(list(adjustment_ids))).order_by(AdjustmentFile.id)
    ):
        found.setdefault(row.adjustment_id, []).append(row)
    return found


def load(session: Session, file_id: int) -> tuple[AdjustmentFile, Adjustment]:
    row = session.execute(
        select(AdjustmentFile, Adjustment)
        .join(
            Adjustment,
            (Adjustment.id == AdjustmentFile.adjustment_id) & (Adjustment.tenant_id == AdjustmentFile.tenant_id),
        )
        .where(AdjustmentFile.id == file_id)
    ).first()
    if row is None:
        raise NotFoundError(_("文件不存在"))
    return row[0], row[1]


def read(root: Path, row: AdjustmentFile) -> bytes:
    return uploads.read_stored(root, row.tenant_id, row.storage_key)


def download_name(row: AdjustmentFile) -> str:
    return uploads.download_name(row.original_name, row.content_type)


__all__ = ["FILE_BYTES", "MAX_FILES", "check", "download_name", "files_of", "load", "read", "store"]
