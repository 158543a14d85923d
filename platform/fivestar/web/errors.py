"""Error pages in the user's language. Bad input is a 4xx with a message, never a 500."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError

from fivestar.errors import AccessDeniedError
from fivestar.i18n import _

log = logging.getLogger(__name__)


def _messages() -> dict[int, str]:
    return {
        400: _("请求有误，请检查后重试。"),
        403: _("您没有权限执行此操作。"),
        404: _("页面不存在，或您无权查看。"),
        405: _("不支持此操作方式。"),
        413: _("上传的文件太大。"),
        429: _("尝试次数过多，请稍后再试。"),
        500: _("服务器出错了，请稍后再试。"),
    }


def _wants_json() -> bool:
    return request.path.startswith("/healthz") or request.accept_mimetypes.best == "application/json"


def render_error(code: int, message: str | None = None) -> tuple[object, int]:
    text = message or _messages().get(code, _messages()[400])
    if _wants_json():
        return jsonify(error=text, status=code), code
    return render_template("errors/error.html", code=code, message=text), code


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> tuple[object, int]:
        return render_error(400, _("表单已过期或来源无效，请刷新页面后重新提交。"))

    @app.errorhandler(AccessDeniedError)
    def _denied(error: AccessDeniedError) -> tuple[object, int]:
        # The policy's refusal (403, or 404 for what the person may not even see): the same page as abort().
        return render_error(error.status)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> object:
        code = error.code or 500
        if code < 400:
            return error
        message = None
        if isinstance(error.description, str) and getattr(error, "fivestar_message", False):
            message = error.description
        return render_error(code, message)

    @app.errorhandler(DBAPIError)
    def _database(error: DBAPIError) -> tuple[object, int]:
        if is_retryable(error):
            # Two transactions wanted the same rows (e.g. a tenant's audit chain head) in opposite
            # orders, or a snapshot could not be kept: nothing was written, the request may simply
            # be sent again.
            log.warning("retryable database conflict on %s %s: %s", request.method, request.path, error.orig)
            return render_error(409, _("操作与他人同时进行发生冲突，没有保存任何内容，请重试。"))
        return _unexpected(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[object, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        return render_error(InternalServerError.code)


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def is_retryable(error: DBAPIError) -> bool:
    """A PostgreSQL deadlock or serialization failure (or SQLite's busy database): try again."""
    state = getattr(error.orig, "sqlstate", None)
    if state in RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(error.orig)


def user_error(code: int, message: str) -> HTTPException:
    """An HTTP error whose message is shown to the user as is (already translated)."""
    from werkzeug.exceptions import default_exceptions

    error = default_exceptions[code](description=message)
    error.fivestar_message = True  # type: ignore[attr-defined]
    return error
