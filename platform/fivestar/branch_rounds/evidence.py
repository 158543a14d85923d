"""Evidence files (证明材料) behind a criterion's score: PDFs and images, checked by their content.

How a file is checked and stored is `fivestar.kernel.uploads` (content sniffing, PDF and image
checks, random keys under `evidence/<tenant id>/`); this module keeps the rating's rows, its limits
(files per criterion, bytes per rating) and the rule that files change only while the rating is at
荐星. Files are served only as downloads with `nosniff` and a sandboxing CSP (rating_views.py).

A batch of uploads is checked as a whole before anything is written, so one bad file refuses the
batch. Files are written before the rows are flushed; `discard()` removes them again when the
transaction does not commit (the view calls it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.models import EvidenceFile
from fivestar.branch_rounds.recommend import RatingContext, guard_editable
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.kernel import uploads
from fivestar.kernel.uploads import (
    DEFAULT_FILE_BYTES,
    EXTENSIONS,
    Checked,
    Upload,
    check_pdf,
    clean_image,
    discard,
    human_size,
    megabytes,
    sniff,
    write_all,
)
from fivestar.kernel.uploads import UploadRefusedError as EvidenceRefusedError
from fivestar.kernel.uploads import UploadTooLargeError as EvidenceTooLargeError
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

MAX_FILES_PER_CRITERION = 20
DEFAULT_RATING_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    file_bytes: int = DEFAULT_FILE_BYTES
    rating_bytes: int = DEFAULT_RATING_BYTES


# --- storage -----------------------------------------------------------------------------------------


def inspect_upload(upload: Upload, limits: Limits) -> Checked:
    """Check one upload against the file limit; raise a refusal naming the file, else what to store."""
    return uploads.inspect_upload(upload, limits.file_bytes, fallback_name=_("证明材料"))


def clean_name(name: str) -> str:
    """The uploaded name as a plain file name (证明材料 when nothing of it is left)."""
    return uploads.clean_name(name, _("证明材料"))


def path_of(root: Path, evidence: EvidenceFile) -> Path:
    return uploads.stored_path(root, evidence.tenant_id, evidence.storage_key)


def store(
    session: Session,
    ctx: RatingContext,
    indicator_key: str,
    criterion_key: str,
    uploads: Sequence[Upload],
    *,
    root: Path,
    limits: Limits,
) -> tuple[list[EvidenceFile], list[Path]]:
    """Check every upload, then write them and their rows; returns the rows and the written paths
    (for `discard` if the transaction does not commit). Refuses (writing nothing) unless the
    rating is at 荐星, for an unknown criterion, for any bad file and beyond the size limits."""
    guard_editable(ctx)
    indicator = ctx.rules.branch.indicator(indicator_key)
    criterion = indicator.criterion(criterion_key) if indicator is not None else None
    if indicator is None or criterion is None:
        raise ServiceError(_("规则中没有这项评分标准"), field="criterion")
    uploads = [u for u in uploads if u.name or u.data]
    if not uploads:
        raise ServiceError(_("请选择要上传的文件"), field="files")
    rating = ctx.rating
    count = session.scalar(
        select(func.count()).where(
            EvidenceFile.rating_id == rating.id,
            EvidenceFile.indicator_key == indicator_key,
            EvidenceFile.criterion_key == criterion_key,
        )
    )
    if int(count or 0) + len(uploads) > MAX_FILES_PER_CRITERION:
        raise ServiceError(_("每项评分标准最多上传 %(n)d 个文件", n=MAX_FILES_PER_CRITERION), field="files")
    checked = [inspect_upload(upload, limits) for upload in uploads]
    rating_used = int(
        session.scalar(select(func.coalesce(func.sum(EvidenceFile.size), 0)).where(EvidenceFile.rating_id == rating.id))
        or 0
    )
    if rating_used + sum(len(c.data) for c in checked) > limits.rating_bytes:
        raise EvidenceTooLargeError(
            _(
                "本支部证明材料总量不能超过 %(mb)s MB，请删除不需要的文件或压缩后再上传",
                mb=megabytes(limits.rating_bytes),
            )
        )
    who = audit.current_actor().name[:120]
    now = clock.now()
    stored, paths = write_all(root, rating.tenant_id, checked)
    try:
        rows = [
            EvidenceFile(
                tenant_id=rating.tenant_id,
                rating_id=rating.id,
                indicator_key=indicator_key,
                criterion_key=criterion_key,
                uploaded_at=now,
                uploaded_by=who,
                **file.columns(),
            )
            for file in stored
        ]
        session.add_all(rows)
        session.flush()
        for row in rows:
            audit.record(session, "evidence.upload", row, after=_snapshot(row))
    except BaseException:
        discard(paths)
        raise
    return rows, paths


def _snapshot(row: EvidenceFile) -> dict[str, object]:
    return audit.snapshot(
        row, ["rating_id", "indicator_key", "criterion_key", "original_name", "content_type", "size", "sha256"]
    )


def load(session: Session, evidence_id: int) -> EvidenceFile:
    found = session.scalar(select(EvidenceFile).where(EvidenceFile.id == evidence_id))
    if found is None:
        raise NotFoundError(_("文件不存在"))
    return found


def delete(session: Session, ctx: RatingContext, evidence: EvidenceFile, *, root: Path) -> Path:
    """Delete a file's row (only while the rating is at 荐星); returns the path to remove once the
    transaction has committed."""
    guard_editable(ctx)
    if evidence.rating_id != ctx.rating.id:  # pragma: no cover - the view loads the rating from the file
        raise NotFoundError(_("文件不存在"))
    path = path_of(root, evidence)
    before = _snapshot(evidence)
    audit.record(session, "evidence.delete", evidence, before=before)
    session.delete(evidence)
    session.flush()
    return path


def read(root: Path, evidence: EvidenceFile) -> bytes:
    path = path_of(root, evidence)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        log.error("evidence file %s of tenant %s is missing on disk", evidence.id, evidence.tenant_id)
        raise NotFoundError(_("文件已不存在，请联系管理员")) from None


def download_name(evidence: EvidenceFile) -> str:
    """The uploaded name, with the extension of what is really stored."""
    return uploads.download_name(evidence.original_name, evidence.content_type)


def files_by_criterion(session: Session, rating_id: int) -> dict[tuple[str, str], list[EvidenceFile]]:
    """The rating's files per (indicator, criterion), oldest first (one query)."""
    result: dict[tuple[str, str], list[EvidenceFile]] = {}
    for row in session.scalars(
        select(EvidenceFile).where(EvidenceFile.rating_id == rating_id).order_by(EvidenceFile.id)
    ):
        result.setdefault((row.indicator_key, row.criterion_key), []).append(row)
    return result


__all__ = [
    "EXTENSIONS",
    "Checked",
    "EvidenceRefusedError",
    "EvidenceTooLargeError",
    "Limits",
    "Upload",
    "check_pdf",
    "clean_image",
    "clean_name",
    "delete",
    "discard",
    "download_name",
    "files_by_criterion",
    "human_size",
    "inspect_upload",
    "load",
    "path_of",
    "read",
    "sniff",
    "store",
]
