"""Sending a finished document to the browser: a download that nothing caches."""

from __future__ import annotations

import io

from flask import Response, send_file

PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def download(data: bytes, filename: str, *, mimetype: str = PDF, inline: bool = False) -> Response:
    """A response carrying `data` as a file named `filename` (Chinese names are fine: Werkzeug adds
    the RFC 6266 ``filename*=UTF-8''…`` form). Reports hold personal data, so nothing caches them."""
    response = send_file(
        io.BytesIO(data), mimetype=mimetype, as_attachment=not inline, download_name=filename, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


#: An uploaded file is never shown in the site's origin: no content may load, and the document is sandboxed
#: even if a browser were to display it.
UPLOAD_CSP = "default-src 'none'; sandbox"


def uploaded_file(data: bytes, filename: str, content_type: str) -> Response:
    """A file someone uploaded (evidence, a plan's or an adjustment's attachment), as a download only:
    the stored (sniffed) type, `nosniff`, a CSP that forbids everything, same-origin only, not cached."""
    response = download(data, filename, mimetype=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = UPLOAD_CSP
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
