"""Posting a message to a group robot: the vendors' markdown formats, DingTalk's signature, and an
HTTP post that follows no redirect and keeps the robot's key and secret out of every error and log line.

Formats (the vendors' documentation):
- WeCom 群机器人配置说明, https://developer.work.weixin.qq.com/document/path/91770 — POST JSON
  `{"msgtype": "markdown", "markdown": {"content": …}}` to
  `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`; markdown content at most 4096 bytes of
  UTF-8; the answer is `{"errcode": 0, "errmsg": "ok"}` on success.
- DingTalk 自定义机器人, https://open.dingtalk.com/document/robots/custom-robot-access and message
  types https://open.dingtalk.com/document/development/robot-message-type — POST JSON
  `{"msgtype": "markdown", "markdown": {"title": …, "text": …}}` to
  `https://oapi.dingtalk.com/robot/send?access_token=…`; the title is what the conversation list
  shows, the text the message. 加签 (https://open.dingtalk.com/document/robots/customize-robot-security-settings):
  `sign = urlEncode(base64(HmacSHA256(key=secret, message=timestamp + "\\n" + secret)))`, the
  timestamp in milliseconds (at most an hour off), both appended as query parameters; the secret
  is the `SEC…` string of the robot's security settings. Success is `errcode` 0 as well.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fivestar.config import Settings
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.notify.encryption import decrypt
from fivestar.notify.errors import WebhookError
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.notify.url_policy import LOOPBACK, MASK, check_url

log = logging.getLogger(__name__)

MAX_CONTENT_BYTES = 4096  # WeCom's documented markdown limit; DingTalk gets the same, conservatively
MAX_ANSWER_BYTES = 64 * 1024


def _secrets_of(url: str, secret: str | None) -> list[str]:
    """The strings no message may contain: the URL, its query values, the secret."""
    found = [url]
    with suppress(ValueError):
        found += [value for _name, value in parse_qsl(urlsplit(url).query) if len(value) >= 4]
    if secret:
        found.append(secret)
    return sorted(found, key=len, reverse=True)


def _scrub(message: str, hidden: list[str]) -> str:
    for value in hidden:
        message = message.replace(value, MASK)
    return message


def _clip(text: str, limit: int = MAX_CONTENT_BYTES) -> str:
    """At most `limit` bytes of UTF-8, cut at a character boundary, with an ellipsis if cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - len("…".encode())].decode("utf-8", errors="ignore") + "…"


def payload(kind: WebhookKind, title: str, text: str) -> dict[str, Any]:
    """The JSON body of a markdown message in the vendor's format (see the module docstring).

    WeCom has no title field: the title is the first line, in bold. DingTalk shows `title` in the
    conversation list and only `text` in the message, so the text starts with the title as a
    heading; it joins lines into paragraphs, because its markdown drops single line breaks.
    """
    title = title.strip()
    text = text.strip()
    if WebhookKind(kind) is WebhookKind.WECOM:
        return {"msgtype": "markdown", "markdown": {"content": _clip(f"**{title}**\n{text}")}}
    body = "\n\n".join(line for line in text.splitlines() if line.strip())
    return {"msgtype": "markdown", "markdown": {"title": title[:100], "text": _clip(f"#### {title}\n\n{body}")}}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签 signature (before URL encoding): base64(HmacSHA256(secret, "ts\\nsecret"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _signed(url: str, secret: str, timestamp_ms: int) -> str:
    query = urlencode({"timestamp": str(timestamp_ms), "sign": dingtalk_sign(secret, timestamp_ms)})
    return f"{url}{'&' if urlsplit(url).query else '?'}{query}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot never redirects; following one would lead the request off the allowed hosts."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _opener(loopback: bool) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if loopback:
        handlers.append(urllib.request.ProxyHandler({}))  # the local test robot, never via a proxy
    return urllib.request.build_opener(*handlers)


def send(settings: Settings, webhook: Webhook, title: str, text: str, *, timeout: float = 10) -> None:
    """Post one markdown message to the robot; return only when the vendor answered HTTP 200 with
    `errcode` 0, else raise `WebhookError` with a short reason free of the key and the secret.

    Uses only the row's columns (the outbox passes a detached row). The address is checked against
    `FIVESTAR_WEBHOOK_HOSTS` again here: the list may have changed since the robot was saved.
    """
    kind = WebhookKind(webhook.kind)
    url = decrypt(settings, webhook.url_encrypted)
    secret = decrypt(settings, webhook.secret_encrypted) if webhook.secret_encrypted else None
    hidden = _secrets_of(url, secret)
    try:
        check_url(settings, url, kind)
    except ServiceError as exc:
        raise WebhookError(_scrub(_("地址不被允许：%(reason)s", reason=exc.message), hidden)) from None
    target = url
    if kind is WebhookKind.DINGTALK and secret:
        target = _signed(url, secret, round(time.time() * 1000))
        hidden = _secrets_of(target, secret)
    body = json.dumps(payload(kind, title, text), ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 - the scheme and host were checked above
        target,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Fivestar"},
    )
    loopback = (urlsplit(url).hostname or "").lower() == LOOPBACK
    try:
        with _failures(hidden, timeout):
            with _opener(loopback).open(request, timeout=timeout) as response:
                status = int(response.status)
                raw = response.read(MAX_ANSWER_BYTES)
            _check_answer(status, raw, hidden)
    except WebhookError as exc:
        log.warning("webhook %s (%s) not delivered: %s", webhook.id, kind.value, exc)
        raise
    log.info("webhook %s (%s) delivered", webhook.id, kind.value)


@contextmanager
def _failures(hidden: list[str], timeout: float) -> Iterator[None]:
    """Turn what urllib raises into a `WebhookError` with a short, scrubbed reason. `from None`: the
    original exceptions carry the full URL (HTTPError.url) and must not travel in a traceback."""
    timed_out = _("连接机器人服务器超时（%(seconds)s 秒）", seconds=format(timeout, "g"))
    try:
        yield
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        raise WebhookError(_("机器人服务器应答 HTTP %(status)s", status=status)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise WebhookError(timed_out) from None
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise WebhookError(_scrub(_("无法连接机器人服务器：%(reason)s", reason=reason), hidden)) from None
    except TimeoutError:
        raise WebhookError(timed_out) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise WebhookError(_scrub(_("与机器人服务器的连接中断：%(reason)s", reason=reason), hidden)) from None


def _check_answer(status: int, raw: bytes, hidden: list[str]) -> None:
    if status != 200:
        raise WebhookError(_("机器人服务器应答 HTTP %(status)s", status=status))
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise WebhookError(_("机器人服务器的应答无法识别（不是 JSON）")) from None
    errcode = answer.get("errcode") if isinstance(answer, dict) else None
    if type(errcode) is int and errcode == 0:
        return
    errmsg = str(answer.get("errmsg", "")) if isinstance(answer, dict) else ""
    raise WebhookError(
        _scrub(
            _("机器人服务器拒绝了消息：errcode %(code)s，%(message)s", code=errcode, message=errmsg[:200] or "-"),
            hidden,
        )
    )
