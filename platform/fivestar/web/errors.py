"""Error pages in the user's language. Bad input is a 4xx with a message, never a 500."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

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

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> object:
        code = error.code or 500
        if code < 400:
            return error
        message = None
        if isinstance(error.description, str) and getattr(error, "fivestar_message", False):
            message = error.description
        return render_error(code, message)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[object, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        return render_error(InternalServerError.code)


def user_error(code: int, message: str) -> HTTPException:
    """An HTTP error whose message is shown to the user as is (already translated)."""
    from werkzeug.exceptions import default_exceptions

    error = default_exceptions[code](description=message)
    error.fivestar_message = True  # type: ignore[attr-defined]
    return error
