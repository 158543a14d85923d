"""Evidence files: the type comes from the content (never the name or the browser), images are
re-encoded, active PDFs are refused, sizes are limited, files live under a random key per tenant
and are served only as sandboxed downloads to people who may see the rating."""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.audit.models import AuditEvent
from fivestar.branch_rounds import evidence
from fivestar.branch_rounds.evidence import Limits, Upload
from fivestar.branch_rounds.models import EvidenceFile, RatingStep
from fivestar.errors import ConflictError
from fivestar.tenancy import tenant_context
from tests.branch.recommend_support import context, full_form, public_district, rules_of, submit, text, url

CRITERION = {"indicator": "leadership", "criterion": "secretary"}


# --- sample files ------------------------------------------------------------------------------------


def pdf(*objects: bytes, extra: bytes = b"") -> bytes:
    """A small PDF with the given objects after a catalog and an empty page tree."""
    body = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>", *objects]
    out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    for number, obj in enumerate(body, start=1):
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    return out + extra + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def real_pdf() -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text="Evidence")
    return bytes(document.output())


def png(comment: str = "") -> bytes:
    image = Image.new("RGB", (40, 30), (200, 16, 46))
    info = PngInfo()
    if comment:
        info.add_text("Comment", comment)
    out = io.BytesIO()
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (40, 30), (20, 120, 40))
    exif = Image.Exif()
    exif[0x010F] = "SecretCameraMaker"  # Make
    exif[0x0112] = 6  # orientation: rotate 90° when shown
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def _check(name: str, data: bytes, limits: Limits | None = None) -> evidence.Checked:
    return evidence.inspect_upload(Upload(name, data), limits or Limits())


# --- recognising content (no database) ---------------------------------------------------------------


def test_a_text_file_named_pdf_is_refused() -> None:
    with pytest.raises(evidence.EvidenceRefusedError, match="不是 PDF 或图片"):
        _check("工作总结.pdf", "这是一份文本文件，不是PDF。".encode())


def test_an_html_file_named_png_is_refused() -> None:
    with pytest.raises(evidence.EvidenceRefusedError, match="文件类型按内容判断"):
        _check("photo.png", b"<html><script>alert(document.cookie)</script></html>")


def test_a_broken_image_is_refused() -> None:
    with pytest.raises(evidence.EvidenceRefusedError, match="不是可以打开的图片"):
        _check("fake.png", b"\x89PNG\r\n\x1a\n" + b"<script>alert(1)</script>" * 20)
    # the name says nothing: a real PNG named .jpg is a PNG, and PNG bytes behind a JPEG header are refused
    assert _check("photo.jpg", png()).content_type == "image/png"
    with pytest.raises(evidence.EvidenceRefusedError, match="不是可以打开的图片"):
        _check("fake.jpg", b"\xff\xd8\xff" + png())


@pytest.mark.parametrize(
    ("objects", "what"),
    [
        ((b"<< /S /JavaScript /JS (app.alert(1)) >>",), "JavaScript"),
        ((b"<< /S /J#61vaScript /J#53 (app.alert(1)) >>",), "JavaScript"),  # names hidden by #-escapes
        ((b"<< /S /Launch /F (cmd.exe) >>",), "Launch"),
        ((b"<< /Names << /EmbeddedFiles << /Names [] >> >> >>",), "EmbeddedFile"),
    ],
)
def test_a_pdf_with_active_content_is_refused(objects: tuple[bytes, ...], what: str) -> None:
    with pytest.raises(evidence.EvidenceRefusedError, match=what) as refused:
        _check("报告.pdf", pdf(*objects))
    assert "不能作为证明材料上传" in refused.value.message


def test_javascript_inside_a_compressed_object_stream_is_found() -> None:
    hidden = zlib.compress(b"3 0 << /S /JavaScript /JS (app.alert(1)) >>")
    stream = b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n" % len(hidden)
    with pytest.raises(evidence.EvidenceRefusedError, match="JavaScript"):
        _check("报告.pdf", pdf(stream + hidden + b"\nendstream"))
    # an object stream in a filter that cannot be undone here cannot be checked
    opaque = b"<< /Type /ObjStm /N 1 /First 4 /Filter /LZWDecode /Length 4 >>\nstream\nabcd\nendstream"
    with pytest.raises(evidence.EvidenceRefusedError, match="无法检查"):
        _check("报告.pdf", pdf(opaque))


def test_a_plain_pdf_passes_even_with_look_alike_bytes_in_a_content_stream() -> None:
    content = b"BT /JS 12 Tf (hello) Tj ET /Launch "  # page content, not a dictionary
    stream = b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"
    checked = _check("扫描件.pdf", pdf(stream))
    assert checked.content_type == "application/pdf"
    assert _check("证明.pdf", real_pdf()).content_type == "application/pdf"


def test_an_encrypted_or_truncated_pdf_is_refused() -> None:
    with pytest.raises(evidence.EvidenceRefusedError, match="加密"):
        _check("加密.pdf", pdf(extra=b"9 0 obj\n<< /Filter /Standard /V 2 >>\nendobj\n").replace(
            b"<< /Root 1 0 R >>", b"<< /Root 1 0 R /Encrypt 9 0 R >>"))
    with pytest.raises(evidence.EvidenceRefusedError, match="不是完整的 PDF"):
        _check("半截.pdf", real_pdf()[:400])


def test_images_are_re_encoded_without_metadata() -> None:
    polyglot = png("GPS 39.9N 116.4E") + b"<html><script>alert(1)</script></html>"
    checked = _check("合影.png", polyglot)
    assert checked.content_type == "image/png"
    assert b"GPS" not in checked.data and b"<script>" not in checked.data
    assert Image.open(io.BytesIO(checked.data)).size == (40, 30)
    photo = _check("现场.jpg", jpeg_with_exif())
    assert photo.content_type == "image/jpeg" and b"SecretCameraMaker" not in photo.data
    reopened = Image.open(io.BytesIO(photo.data))
    assert reopened.size == (30, 40) and not reopened.getexif()  # the orientation was applied, then dropped
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "GIF")
    assert _check("动图.gif", out.getvalue()).content_type == "image/png"
    out = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(out, "WEBP")
    assert _check("图.webp", out.getvalue()).content_type == "image/webp"


def test_sizes_and_names() -> None:
    with pytest.raises(evidence.EvidenceTooLargeError, match="超过单个文件") as refused:
        _check("大文件.pdf", real_pdf(), Limits(file_bytes=100))
    assert refused.value.status == 413
    with pytest.raises(evidence.EvidenceRefusedError, match="空文件"):
        _check("空.pdf", b"")
    assert evidence.clean_name("C:\\Users\\赵\\..\\证明\x00材料.pdf") == "证明材料.pdf"
    assert evidence.clean_name("../../etc/passwd") == "passwd"
    assert evidence.clean_name("") == "证明材料"


# --- storing (services) --------------------------------------------------------------------------------


def test_files_are_stored_under_a_random_key_per_tenant(
    session: Session, opened: dict[str, Any], tmp_path: Path
) -> None:
    ctx = context(session, opened)
    data = real_pdf()
    with tenant_context(opened["tenant"].id):
        rows, paths = evidence.store(
            session, ctx, "leadership", "secretary",
            [Upload("../述职报告.pdf", data), Upload("合影.png", png("meta"))], root=tmp_path, limits=Limits(),
        )
        session.flush()
    assert [row.original_name for row in rows] == ["述职报告.pdf", "合影.png"]
    assert rows[0].sha256 == hashlib.sha256(data).hexdigest() and rows[0].size == len(data)
    assert rows[1].content_type == "image/png" and rows[1].size == paths[1].stat().st_size
    for row, path in zip(rows, paths, strict=True):
        assert path == tmp_path / str(opened["tenant"].id) / row.storage_key
        assert path.read_bytes() == evidence.read(tmp_path, row)
    assert sorted(p.name for p in (tmp_path / str(opened["tenant"].id)).iterdir()) == sorted(
        row.storage_key for row in rows
    )
    with tenant_context(opened["tenant"].id):
        events = session.scalar(select(func.count()).where(AuditEvent.action == "evidence.upload"))
    assert events == 2


def test_one_bad_file_refuses_the_whole_batch(session: Session, opened: dict[str, Any], tmp_path: Path) -> None:
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id):
        with pytest.raises(evidence.EvidenceRefusedError):
            evidence.store(
                session, ctx, "leadership", "secretary",
                [Upload("a.pdf", real_pdf()), Upload("b.pdf", b"not a pdf")], root=tmp_path, limits=Limits(),
            )
        with pytest.raises(evidence.ServiceError, match="没有这项评分标准"):
            evidence.store(session, ctx, "leadership", "nope", [Upload("a.pdf", real_pdf())],
                           root=tmp_path, limits=Limits())
        small = Limits(file_bytes=10 * 1024 * 1024, rating_bytes=len(real_pdf()) + 10)
        evidence.store(session, ctx, "leadership", "secretary", [Upload("a.pdf", real_pdf())],
                       root=tmp_path, limits=small)
        with pytest.raises(evidence.EvidenceTooLargeError, match="总量不能超过"):
            evidence.store(session, ctx, "results", "innovation", [Upload("b.pdf", real_pdf())],
                           root=tmp_path, limits=small)
        count = session.scalar(select(func.count()).select_from(EvidenceFile))
    assert count == 1
    assert len(list((tmp_path / str(opened["tenant"].id)).iterdir())) == 1  # refused files left nothing


def test_files_are_fixed_once_the_recommendation_is_submitted(
    session: Session, opened: dict[str, Any], tmp_path: Path
) -> None:
    ctx = context(session, opened)
    with tenant_context(opened["tenant"].id):
        [row], _paths = evidence.store(session, ctx, "leadership", "secretary", [Upload("a.pdf", real_pdf())],
                                       root=tmp_path, limits=Limits())
        session.flush()
    submit(session, opened, full_form(rules_of(session, opened)))
    ctx = context(session, opened)
    assert ctx.rating.step is RatingStep.DELIBERATE
    with tenant_context(opened["tenant"].id):
        with pytest.raises(ConflictError, match="荐星已提交"):
            evidence.delete(session, ctx, row, root=tmp_path)
        with pytest.raises(ConflictError, match="荐星已提交"):
            evidence.store(session, ctx, "leadership", "secretary", [Upload("b.pdf", real_pdf())],
                           root=tmp_path, limits=Limits())


# --- the web: upload, download, delete -------------------------------------------------------------------


def _upload(client: FlaskClient, world: dict[str, Any], *files: tuple[bytes, str], **form: str) -> Any:
    data: dict[str, Any] = {**CRITERION, **form, "files": [(io.BytesIO(body), name) for body, name in files]}
    return client.post(url(world, "/evidence"), data=data, content_type="multipart/form-data")


def _files(session: Session, world: dict[str, Any]) -> list[EvidenceFile]:
    with tenant_context(world["tenant"].id):
        return list(
            session.scalars(
                select(EvidenceFile).order_by(EvidenceFile.id).execution_options(populate_existing=True)
            )
        )


def _root(app: Flask, world: dict[str, Any]) -> Path:
    return Path(app.config["EVIDENCE_DIR"]) / str(world["tenant"].id)


@pytest.fixture
def evidence_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of this test's own (the data folder outlives the rolled-back database rows)."""
    monkeypatch.setitem(app.config, "EVIDENCE_DIR", str(tmp_path / "evidence"))
    return tmp_path / "evidence"


def test_a_pdf_and_a_png_are_uploaded_and_downloaded_safely(
    app: Flask, client: FlaskClient, login: Any, evidence_dir: Path, session: Session, opened: dict[str, Any]
) -> None:
    login(opened["tenant"], opened["secretary"])
    document, picture = real_pdf(), png("拍摄地点")
    response = _upload(client, opened, (document, "2025年述职报告.pdf"), (picture, "支部活动 合影.png"))
    assert response.status_code == 302 and response.headers["Location"].endswith("/evidence#c-leadership-secretary")
    stored_pdf, stored_png = _files(session, opened)
    assert (stored_pdf.content_type, stored_pdf.size, stored_pdf.sha256) == (
        "application/pdf", len(document), hashlib.sha256(document).hexdigest())
    assert stored_png.content_type == "image/png" and stored_png.uploaded_by == "赵书记"
    on_disk = _root(app, opened)
    assert {p.name for p in on_disk.iterdir()} >= {stored_pdf.storage_key, stored_png.storage_key}
    assert not any("述职" in p.name or p.suffix for p in on_disk.iterdir())
    page = text(client.get(url(opened, "/evidence")))
    assert "2025年述职报告.pdf" in page and "支部活动 合影.png" in page

    base = f"/t/{opened['tenant'].slug}/branch-rating/ratings/evidence"
    download = client.get(f"{base}/{stored_pdf.id}")
    assert download.status_code == 200 and download.get_data() == document
    assert download.mimetype == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment; ")
    assert "filename*=UTF-8''2025%E5%B9%B4%E8%BF%B0%E8%81%8C%E6%8A%A5%E5%91%8A.pdf" in download.headers[
        "Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    image = client.get(f"{base}/{stored_png.id}")
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.get_data() == (on_disk / stored_png.storage_key).read_bytes() and "拍摄地点".encode() not in (
        image.get_data())
    assert image.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert "filename*=UTF-8''" in image.headers["Content-Disposition"]


@pytest.mark.parametrize(
    ("body", "name"),
    [("这只是文字".encode(), "伪装.pdf"), (b"<!doctype html><script>alert(1)</script>", "伪装.png")],
)
def test_a_disguised_upload_gets_a_clear_400_and_nothing_is_stored(
    app: Flask, client: FlaskClient, login: Any, evidence_dir: Path, session: Session, opened: dict[str, Any],
    body: bytes, name: str,
) -> None:
    login(opened["tenant"], opened["secretary"])
    response = _upload(client, opened, (body, name))
    assert response.status_code == 400
    assert f"“{name}”不是 PDF 或图片" in text(response)
    assert _files(session, opened) == []
    assert not _root(app, opened).exists() or not list(_root(app, opened).iterdir())


def test_an_oversize_file_is_refused(
    app: Flask, client: FlaskClient, login: Any, evidence_dir: Path, session: Session, opened: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login(opened["tenant"], opened["secretary"])
    monkeypatch.setitem(app.config, "EVIDENCE_MAX_FILE_BYTES", 1024)
    response = _upload(client, opened, (real_pdf() + b"%" * 2048, "大.pdf"))
    assert response.status_code == 413 and "“大.pdf”超过单个文件" in text(response)
    # beyond the whole request's limit the server answers 413 before reading the file
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4096)
    response = _upload(client, opened, (b"%PDF-" + b"0" * 8192, "巨大.pdf"))
    assert response.status_code == 413 and "上传的文件太大" in text(response)
    assert _files(session, opened) == []


def test_deleting_a_file_while_recommending(
    app: Flask, client: FlaskClient, login: Any, evidence_dir: Path, session: Session, opened: dict[str, Any]
) -> None:
    login(opened["tenant"], opened["branch_committee"])
    assert _upload(client, opened, (real_pdf(), "a.pdf")).status_code == 302
    [row] = _files(session, opened)
    path = _root(app, opened) / row.storage_key
    assert path.exists()
    base = f"/t/{opened['tenant'].slug}/branch-rating/ratings/evidence"
    response = client.post(f"{base}/{row.id}/delete")
    assert response.status_code == 302 and _files(session, opened) == [] and not path.exists()
    with tenant_context(opened["tenant"].id):
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "evidence.delete"))
    assert event is not None and event.before is not None and event.before["original_name"] == "a.pdf"
    # once submitted, files stay
    assert _upload(client, opened, (real_pdf(), "b.pdf")).status_code == 302
    submit(session, opened, full_form(rules_of(session, opened)))
    [row] = _files(session, opened)
    response = client.post(f"{base}/{row.id}/delete")
    assert response.status_code == 409 and "荐星已提交" in text(response)
    assert _files(session, opened) == [row] and (_root(app, opened) / row.storage_key).exists()
    assert _upload(client, opened, (real_pdf(), "c.pdf")).status_code == 409


def test_who_may_see_and_change_files(
    client: FlaskClient, login: Any, evidence_dir: Path, session: Session, opened: dict[str, Any]
) -> None:
    login(opened["tenant"], opened["secretary"])
    assert _upload(client, opened, (real_pdf(), "a.pdf")).status_code == 302
    [row] = _files(session, opened)
    file_url = f"/t/{opened['tenant'].slug}/branch-rating/ratings/evidence/{row.id}"
    for who, read, write in (
        ("member", 404, 404),
        ("direct_secretary", 404, 404),  # another branch's secretary
        ("inspector", 200, 403),
        ("org_staff", 200, 403),
        ("committee", 200, 403),
        ("admin", 200, None),
    ):
        client.delete_cookie("fivestar_session")
        login(opened["tenant"], opened[who])
        assert client.get(file_url).status_code == read, who
        assert client.get(url(opened, "/evidence")).status_code == read, who
        if write is not None:
            assert _upload(client, opened, (real_pdf(), "b.pdf")).status_code == write, who
            assert client.post(f"{file_url}/delete").status_code == write, who
    assert len(_files(session, opened)) == 1


def test_a_file_of_another_district_is_not_found(
    client: FlaskClient, login: Any, session: Session, opened: dict[str, Any],
    create_tenant: Any, create_org: Any, create_member: Any, create_account: Any,
) -> None:
    other = public_district(session, create_tenant, create_org, create_member, create_account)
    with tenant_context(other["tenant"].id):
        row = EvidenceFile(
            tenant_id=other["tenant"].id, rating_id=other["rating_one"].id, indicator_key="leadership",
            criterion_key="leadership", original_name="乙区材料.pdf", content_type="application/pdf", size=1,
            sha256="0" * 64, storage_key="ab" * 24, uploaded_by="乙区",
        )
        session.add(row)
        session.flush()
    login(opened["tenant"], opened["admin"])
    base = f"/t/{opened['tenant'].slug}/branch-rating/ratings/evidence/{row.id}"
    assert client.get(base).status_code == 404
    assert client.post(f"{base}/delete").status_code == 404
    assert client.get(url(other, "/evidence").replace(other["tenant"].slug, opened["tenant"].slug)).status_code == 404
    with tenant_context(other["tenant"].id):
        assert session.scalar(select(func.count()).select_from(EvidenceFile)) == 1
