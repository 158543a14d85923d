"""Uploaded files (evidence, attachments): checked by their content, stored under a random key.

Nothing about an upload is trusted: not its name, not the browser's Content-Type. The type comes
from the first bytes (magic numbers); an image must also open in Pillow and is re-encoded, which
drops metadata (EXIF with GPS positions, comments) and anything smuggled after the picture; a PDF
that carries JavaScript, launch actions, embedded files or rich media is refused (also when the
names hide behind #-escapes or inside compressed object streams), and so is an encrypted one,
whose insides cannot be checked.

The bytes live under a data folder, `<root>/<tenant id>/<random key>` (never the uploaded name on
disk). Every feature that keeps files (a rating's evidence, a plan item's or an adjustment's
attachments) keeps its own row with the sniffed type, size and SHA-256 and calls these functions;
files are served only as downloads with `nosniff` and a sandboxing CSP (`fivestar.web.downloads`).
Files are written before the rows are flushed; `discard()` removes them again when the transaction
does not commit.
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
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from fivestar.errors import NotFoundError, ServiceError
from fivestar.i18n import _

log = logging.getLogger(__name__)

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png", WEBP: ".webp", GIF: ".gif"}
KIND_LABELS = {PDF: "PDF", JPEG: "JPEG", PNG: "PNG", WEBP: "WebP", GIF: "GIF"}

MAX_PIXELS = 50_000_000  # a photographed page is ~12 MP; far beyond this is a decompression bomb
MAX_NAME = 200
PDF_SCAN_BUDGET = 64 * 1024 * 1024  # bytes of decompressed object streams looked into, at most
DEFAULT_FILE_BYTES = 10 * 1024 * 1024

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


class UploadRefusedError(ServiceError):
    """A file that is not a clean PDF or image; the message says which file and why."""


class UploadTooLargeError(ServiceError):
    status = 413


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
        raise UploadRefusedError(_("“%(name)s”不是完整的 PDF 文件", name=name))
    try:
        parts = _pdf_dictionaries(data)
    except _UncheckableError:
        raise UploadRefusedError(
            _("“%(name)s”的内部结构无法检查，请用“打印为 PDF”重新生成后再上传", name=name)
        ) from None
    names: set[bytes] = set()
    for part in parts:
        names |= _pdf_names(part)
    found = sorted({label for raw, label in FORBIDDEN_PDF_NAMES.items() if raw in names})
    if found:
        raise UploadRefusedError(
            _(
                "“%(name)s”含有脚本、启动程序或嵌入文件（%(what)s），不能作为证明材料上传。"
                "请打印为普通 PDF 或扫描后再上传。",
                name=name,
                what="、".join(found),
            )
        )
    if b"Encrypt" in names:
        raise UploadRefusedError(_("“%(name)s”是加密的 PDF，无法检查其内容，请上传未加密的文件", name=name))


_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", GIF: "GIF"}


def clean_image(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """Open the image with Pillow (it must be what its first bytes say) and encode it anew:
    metadata and anything appended are dropped. A GIF becomes a PNG of its first frame."""
    refused = UploadRefusedError(_("“%(name)s”不是可以打开的图片", name=name))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != _PILLOW_FORMATS[content_type]:
                    raise refused
                width, height = probe.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise UploadRefusedError(_("“%(name)s”的图片尺寸过大", name=name))
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return _encode(image, content_type)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefusedError(_("“%(name)s”的图片尺寸过大", name=name)) from None
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


def clean_name(name: str, fallback: str | None = None) -> str:
    """The uploaded name as a plain file name to show and to offer on download (never used on disk);
    `fallback` (default 附件) when nothing of the name is left."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C").strip()
    base = base.strip(". ") or fallback or _("附件")
    if len(base) > MAX_NAME:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: MAX_NAME - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:MAX_NAME]
    return base


def inspect_upload(
    upload: Upload, file_bytes: int = DEFAULT_FILE_BYTES, *, fallback_name: str | None = None
) -> Checked:
    """Check one upload; raise a refusal naming the file, else return what to store."""
    name = clean_name(upload.name, fallback_name)
    if len(upload.data) > file_bytes:
        raise UploadTooLargeError(_("“%(name)s”超过单个文件 %(mb)s MB 的上限", name=name, mb=megabytes(file_bytes)))
    if not upload.data:
        raise UploadRefusedError(_("“%(name)s”是空文件", name=name))
    content_type = sniff(upload.data)
    if content_type is None:
        raise UploadRefusedError(
            _("“%(name)s”不是 PDF 或图片（JPEG、PNG、WebP、GIF）。文件类型按内容判断，与文件名无关。", name=name)
        )
    if content_type == PDF:
        check_pdf(name, upload.data)
        return Checked(name, upload.data, PDF)
    data, stored_type = clean_image(name, upload.data, content_type)
    return Checked(name, data, stored_type)


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.0f}" if value >= 1 else f"{value:.2f}"


# --- storage -----------------------------------------------------------------------------------------


def folder(root: Path, tenant_id: int) -> Path:
    return root / str(int(tenant_id))


def stored_path(root: Path, tenant_id: int, storage_key: str) -> Path:
    """Where a stored file lives; refuses a key this module did not make."""
    if not re.fullmatch(r"[0-9a-f]{32,120}", storage_key):  # pragma: no cover - keys are made by write_file
        raise NotFoundError(_("文件不存在"))
    return folder(root, tenant_id) / storage_key


def read_stored(root: Path, tenant_id: int, storage_key: str) -> bytes:
    path = stored_path(root, tenant_id, storage_key)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        log.error("stored file %s of tenant %s is missing on disk", storage_key[:8], tenant_id)
        raise NotFoundError(_("文件已不存在，请联系管理员")) from None


def write_file(target_dir: Path, data: bytes) -> tuple[str, Path]:
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


@dataclass(frozen=True)
class StoredFile:
    """A checked file written to disk: the columns every file row keeps (a feature adds its own)."""

    original_name: str
    content_type: str
    size: int
    sha256: str
    storage_key: str

    def columns(self) -> dict[str, Any]:
        return {
            "original_name": self.original_name,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "storage_key": self.storage_key,
        }


def write_all(root: Path, tenant_id: int, checked: Sequence[Checked]) -> tuple[list[StoredFile], list[Path]]:
    """Write every checked file of a tenant under a fresh random key; returns what to put in each row
    and the written paths (for `discard` if the rows are not committed). A failed write removes the
    files already written before the error goes on, so a refused batch leaves nothing on disk."""
    target = folder(root, tenant_id)
    stored: list[StoredFile] = []
    paths: list[Path] = []
    try:
        for item in checked:
            key, path = write_file(target, item.data)
            paths.append(path)
            digest = hashlib.sha256(item.data).hexdigest()
            stored.append(StoredFile(item.name, item.content_type, len(item.data), digest, key))
    except BaseException:
        discard(paths)
        raise
    return stored, paths


def discard(paths: Iterable[Path]) -> None:
    """Remove files whose rows were not committed (or whose rows were deleted and committed)."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - a leftover file is harmless, a crash is not
            log.warning("could not remove stored file %s", path.name)


def download_name(original_name: str, content_type: str) -> str:
    """The uploaded name, with the extension of what is really stored (a GIF stored as PNG, an
    image named .pdf …)."""
    extension = EXTENSIONS.get(content_type, "")
    name = original_name
    stem, dot, current = name.rpartition(".")
    if dot and "." + current.lower() in (extension, ".jpeg" if extension == ".jpg" else extension):
        return name
    return (stem if dot and stem else name) + extension


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"
