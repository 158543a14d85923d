"""Evidence files (证明材料) behind a criterion's score: PDFs and images, checked by their content.

Nothing about an upload is trusted: not its name, not the browser's Content-Type. The type comes
from the first bytes (magic numbers); an image must also open in Pillow and is re-encoded, which
drops metadata (EXIF with GPS positions, comments) and anything smuggled after the picture; a PDF
that carries JavaScript, launch actions, embedded files or rich media is refused (also when the
names hide behind #-escapes or inside compressed object streams), and so is an encrypted one,
whose insides cannot be checked.

The bytes live in the data folder, `evidence/<tenant id>/<random key>` (never the uploaded name on
disk); the row records the sniffed type, size and SHA-256. Files are served only as downloads with
`nosniff` and a sandboxing CSP (rating_views.py), never as active content in the site's origin.

A batch of uploads is checked as a whole before anything is written, so one bad file refuses the
batch. Files are written before the rows are flushed; `discard()` removes them again when the
transaction does not commit (the view calls it).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import secrets
import unicodedata
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar import audit
from fivestar.branch_rounds.models import EvidenceFile
from fivestar.branch_rounds.recommend import RatingContext, guard_editable
from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _
from fivestar.timekeeping import clock

log = logging.getLogger(__name__)

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", WEBP: ".webp", GIF: ".gif"}
KIND_LABELS = {PDF: "PDF", JPEG: "JPEG", PNG: "PNG", WEBP: "WebP", GIF: "GIF"}

MAX_PIXELS = 50_000_000  # a photographed page is ~12 MP; far beyond this is a decompression bomb
MAX_FILES_PER_CRITERION = 20
MAX_NAME = 200
PDF_SCAN_BUDGET = 64 * 1024 * 1024  # bytes of decompressed object streams looked into, at most
DEFAULT_FILE_BYTES = 10 * 1024 * 1024
DEFAULT_RATING_BYTES = 100 * 1024 * 1024

# PDF names that make a document do things: run scripts, start programs, carry other files.
FORBIDDEN_PDF_NAMES = {
    b"JavaScript": "JavaScript",
    b"JS": "JavaScript",
    b"Launch": "Launch",
    b"EmbeddedFile": "EmbeddedFile",
    b"EmbeddedFiles": "EmbeddedFile",
    b"RichMedia": "RichMedia",
}
_PDF_NAME = re.compile(rb"/([^\s/<>\[\]()%{}]+)")
_PDF_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
_PDF_STREAM = re.compile(rb"stream\r?\n")


class EvidenceRefusedError(ServiceError):
    """A file that is not a clean PDF or image; the message says which file and why."""


class EvidenceTooLargeError(ServiceError):
    status = 413


@dataclass(frozen=True)
class Limits:
    file_bytes: int = DEFAULT_FILE_BYTES
    rating_bytes: int = DEFAULT_RATING_BYTES


@dataclass(frozen=True)
class Upload:
    """One uploaded file as the view read it: the name the browser gave and (at most limit + 1) bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Checked:
    name: str
    data: bytes  # as stored: the PDF as uploaded, an image re-encoded
    content_type: str


# --- recognising content -----------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The type of a file from its first bytes, or None for anything but PDF, JPEG, PNG, WebP, GIF."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    return None


def _pdf_names(chunk: bytes) -> set[bytes]:
    """The PDF names (`/Name`) in a chunk, with #xx escapes decoded (`/J#61vaScript` is `/JavaScript`)."""
    return {_PDF_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), m.group(1)) for m in _PDF_NAME.finditer(chunk)}


class _UncheckableError(Exception):
    pass


def _pdf_dictionaries(data: bytes) -> list[bytes]:
    """The parts of a PDF where dictionaries live: everything outside stream bodies, plus the
    decompressed bodies of object streams (`/Type /ObjStm`), which hold further objects. Other
    stream bodies (page contents, images, fonts) are skipped: their bytes are no dictionaries,
    and random binary could look like a name. An object stream in a filter we cannot undo raises
    `_UncheckableError`; decompression stops at a budget (a compression bomb stays harmless)."""
    parts: list[bytes] = []
    position = 0
    budget = PDF_SCAN_BUDGET
    for match in _PDF_STREAM.finditer(data):
        if match.start() < position:
            continue  # inside the stream just skipped (or the "stream" of its "endstream")
        header = data[position : match.start()]
        parts.append(header)
        start = match.end()
        end = data.find(b"endstream", start)
        if end < 0:
            end = len(data)
        cut = header.rfind(b"obj")
        names = _pdf_names(header[cut:] if cut >= 0 else header[-4096:])
        if b"ObjStm" in names:
            body = data[start:end]
            if b"FlateDecode" in names:
                try:
                    body = zlib.decompressobj().decompress(body, max(budget, 1))
                except zlib.error:
                    raise _UncheckableError from None
            elif b"Filter" in names:
                raise _UncheckableError
            budget -= len(body)
            if budget < 0:
                raise _UncheckableError
            parts.append(body)
        position = end + len(b"endstream")
    parts.append(data[position:])
    return parts


def check_pdf(name: str, data: bytes) -> None:
    """Refuse a PDF with active content (scripts, launch actions, embedded files, rich media) or
    encryption (which would hide them), and one whose structure cannot be checked."""
    if b"%%EOF" not in data[-65536:]:
        raise EvidenceRefusedError(_("“%(name)s”不是完整的 PDF 文件", name=name))
    try:
        parts = _pdf_dictionaries(data)
    except _UncheckableError:
        raise EvidenceRefusedError(
            _("“%(name)s”的内部结构无法检查，请用“打印为 PDF”重新生成后再上传", name=name)
        ) from None
    names: set[bytes] = set()
    for part in parts:
        names |= _pdf_names(part)
    found = sorted({label for raw, label in FORBIDDEN_PDF_NAMES.items() if raw in names})
    if found:
        raise EvidenceRefusedError(
            _(
                "“%(name)s”含有脚本、启动程序或嵌入文件（%(what)s），不能作为证明材料上传。"
                "请打印为普通 PDF 或扫描后再上传。",
                name=name,
                what="、".join(found),
            )
        )
    if b"Encrypt" in names:
        raise EvidenceRefusedError(_("“%(name)s”是加密的 PDF，无法检查其内容，请上传未加密的文件", name=name))


_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", GIF: "GIF"}


def clean_image(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """Open the image with Pillow (it must be what its first bytes say) and encode it anew:
    metadata and anything appended are dropped. A GIF becomes a PNG of its first frame."""
    refused = EvidenceRefusedError(_("“%(name)s”不是可以打开的图片", name=name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != _PILLOW_FORMATS[content_type]:
                    raise refused
                width, height = probe.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise EvidenceRefusedError(_("“%(name)s”的图片尺寸过大", name=name))
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return _encode(image, content_type)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EvidenceRefusedError(_("“%(name)s”的图片尺寸过大", name=name)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise refused from None


def _encode(image: Image.Image, content_type: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if content_type == JPEG:
        upright = ImageOps.exif_transpose(image)  # the EXIF orientation is dropped, so apply it first
        if upright.mode not in ("RGB", "L", "CMYK"):
            upright = upright.convert("RGB")
        upright.save(out, "JPEG", quality=90, optimize=True, icc_profile=image.info.get("icc_profile"))
        return out.getvalue(), JPEG
    if content_type == WEBP:
        frame = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        frame.save(out, "WEBP", quality=90)
        return out.getvalue(), WEBP
    # PNG, and a GIF's first frame as PNG (no animation, no comments, no application blocks)
    frame = image
    if image.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
        frame = image.convert("RGBA")
    frame.save(out, "PNG", optimize=False)
    return out.getvalue(), PNG


def clean_name(name: str) -> str:
    """The uploaded name as a plain file name to show and to offer on download (never used on disk)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C").strip()
    base = base.strip(". ") or _("证明材料")
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:MAX_NAME]
    return base


def inspect_upload(upload: Upload, limits: Limits) -> Checked:
    """Check one upload; raise a refusal naming the file, else return what to store."""
    name = clean_name(upload.name)
    if len(upload.data) > limits.file_bytes:
        raise EvidenceTooLargeError(
            _("“%(name)s”超过单个文件 %(mb)s MB 的上限", name=name, mb=_megabytes(limits.file_bytes))
        )
    if not upload.data:
        raise EvidenceRefusedError(_("“%(name)s”是空文件", name=name))
    content_type = sniff(upload.data)
    if content_type is None:
        raise EvidenceRefusedError(
            _("“%(name)s”不是 PDF 或图片（JPEG、PNG、WebP、GIF）。文件类型按内容判断，与文件名无关。", name=name)
        )
    if content_type == PDF:
        check_pdf(name, upload.data)
        return Checked(name, upload.data, PDF)
    data, stored_type = clean_image(name, upload.data, content_type)
    return Checked(name, data, stored_type)


def _megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.0f}" if value >= 1 else f"{value:.2f}"


# --- storage -----------------------------------------------------------------------------------------


def folder(root: Path, tenant_id: int) -> Path:
    return root / str(int(tenant_id))


def path_of(root: Path, evidence: EvidenceFile) -> Path:
    key = evidence.storage_key
    if not re.fullmatch(r"[0-9a-f]{32,120}", key):  # pragma: no cover - keys are made below
        raise NotFoundError(_("文件不存在"))
    return folder(root, evidence.tenant_id) / key


def _write_file(target_dir: Path, data: bytes) -> tuple[str, Path]:
    target_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(24)
    path = target_dir / key
    temporary = target_dir / f".{key}.part"
    with open(temporary, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return key, path


def discard(paths: Iterable[Path]) -> None:
    """Remove files whose rows were not committed (or whose rows were deleted and committed)."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - a leftover file is harmless, a crash is not
            log.warning("could not remove evidence file %s", path.name)


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
        raise ServiceError(
            _("每项评分标准最多上传 %(n)d 个文件", n=MAX_FILES_PER_CRITERION), field="files"
        )
    checked = [inspect_upload(upload, limits) for upload in uploads]
    rating_used = int(
        session.scalar(
            select(func.coalesce(func.sum(EvidenceFile.size), 0)).where(EvidenceFile.rating_id == rating.id)
        )
        or 0
    )
    if rating_used + sum(len(c.data) for c in checked) > limits.rating_bytes:
        raise EvidenceTooLargeError(
            _(
                "本支部证明材料总量不能超过 %(mb)s MB，请删除不需要的文件或压缩后再上传",
                mb=_megabytes(limits.rating_bytes),
            )
        )
    who = audit.current_actor().name
    now = clock.now()
    target_dir = folder(root, rating.tenant_id)
    rows: list[EvidenceFile] = []
    paths: list[Path] = []
    try:
        for item in checked:
            key, path = _write_file(target_dir, item.data)
            paths.append(path)
            rows.append(
                EvidenceFile(
                    tenant_id=rating.tenant_id,
                    rating_id=rating.id,
                    indicator_key=indicator_key,
                    criterion_key=criterion_key,
                    original_name=item.name,
                    content_type=item.content_type,
                    size=len(item.data),
                    sha256=hashlib.sha256(item.data).hexdigest(),
                    storage_key=key,
                    uploaded_at=now,
                    uploaded_by=who[:120],
                )
            )
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
    """The uploaded name, with the extension of what is really stored (a GIF stored as PNG, an
    image named .pdf …)."""
    extension = EXTENSIONS.get(evidence.content_type, "")
    name = evidence.original_name
    stem, dot, current = name.rpartition(".")
    if dot and "." + current.lower() in (extension, ".jpeg" if extension == ".jpg" else extension):
        return name
    return (stem if dot and stem else name) + extension


def files_by_criterion(session: Session, rating_id: int) -> dict[tuple[str, str], list[EvidenceFile]]:
    """The rating's files per (indicator, criterion), oldest first (one query)."""
    result: dict[tuple[str, str], list[EvidenceFile]] = {}
    for row in session.scalars(
        select(EvidenceFile).where(EvidenceFile.rating_id == rating_id).order_by(EvidenceFile.id)
    ):
        result.setdefault((row.indicator_key, row.criterion_key), []).append(row)
    return result


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"


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
