"""Group robots without a database: encryption, the address guard, masking, the vendors' message
formats, and `send` against a real HTTP server on loopback (signature, errors, no secret in any
error or log line)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fivestar.config import ConfigError, Settings, load_settings
from fivestar.errors import ServiceError
from fivestar.notify import sending
from fivestar.notify.encryption import decrypt, encrypt
from fivestar.notify.errors import DecryptionError, WebhookError
from fivestar.notify.models import Webhook, WebhookKind
from fivestar.notify.sending import payload, send
from fivestar.notify.url_policy import check_url, mask_url, masked_url
from tests.robot_support import ACCESS_TOKEN, KEY, SECRET, LoopbackRobot, expected_sign, free_port

WECOM_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
DINGTALK_URL = f"https://oapi.dingtalk.com/robot/send?access_token={ACCESS_TOKEN}"
SECRETS = (KEY, ACCESS_TOKEN, SECRET)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": tmp_path,
        "secret_key": "unit-test-secret-key-0123456789-abcdefghij",
        "webhook_hosts": "qyapi.weixin.qq.com,oapi.dingtalk.com,127.0.0.1",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def robot() -> Iterator[LoopbackRobot]:
    with LoopbackRobot() as running:
        yield running


def robot_row(settings: Settings, kind: WebhookKind, url: str, secret: str | None = None) -> Webhook:
    return Webhook(
        id=7,
        name="测试群",
        kind=kind,
        url_encrypted=encrypt(settings, url),
        secret_encrypted=encrypt(settings, secret) if secret else None,
        active=True,
        created_by="test",
    )


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert secret[-12:] not in text


# --- encryption ----------------------------------------------------------------------------------


def test_encryption_round_trip_hides_the_text(settings: Settings) -> None:
    token = encrypt(settings, WECOM_URL)
    assert KEY not in token and "qyapi" not in token
    assert decrypt(settings, token) == WECOM_URL
    assert encrypt(settings, WECOM_URL) != token  # a fresh IV every time
    assert decrypt(settings, encrypt(settings, "中文也可以")) == "中文也可以"


def test_a_different_secret_key_cannot_decrypt(settings: Settings, tmp_path: Path) -> None:
    token = encrypt(settings, WECOM_URL)
    other = make_settings(tmp_path, secret_key="another-secret-key-0123456789-abcdefghijkl")
    with pytest.raises(DecryptionError) as caught:
        decrypt(other, token)
    assert "FIVESTAR_SECRET_KEY" in str(caught.value) and "无法解密" in str(caught.value)
    assert isinstance(caught.value, WebhookError)  # the outbox treats it like any failed delivery
    with pytest.raises(DecryptionError):
        decrypt(settings, token[:-4] + "AAAA")  # damaged
    with pytest.raises(DecryptionError):
        decrypt(settings, "not a token ☃")


def test_send_with_a_changed_secret_key_fails_readably(settings: Settings, tmp_path: Path) -> None:
    row = robot_row(settings, WebhookKind.WECOM, WECOM_URL)
    other = make_settings(tmp_path, secret_key="another-secret-key-0123456789-abcdefghijkl")
    with pytest.raises(DecryptionError):
        send(other, row, "标题", "正文")
    assert "服务器密钥" in masked_url(other, row)


# --- the address guard ---------------------------------------------------------------------------


def refused(settings: Settings, url: str, kind: WebhookKind = WebhookKind.WECOM) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        check_url(settings, url, kind)
    assert_no_secret(caught.value.message)
    return caught.value


def test_valid_vendor_addresses_pass(settings: Settings) -> None:
    assert check_url(settings, f"  {WECOM_URL} ", WebhookKind.WECOM) == WECOM_URL
    assert check_url(settings, DINGTALK_URL, WebhookKind.DINGTALK) == DINGTALK_URL
    assert check_url(settings, WECOM_URL.replace("qyapi.weixin.qq.com", "qyapi.weixin.qq.com:443"), WebhookKind.WECOM)


def test_plain_http_is_refused(settings: Settings) -> None:
    error = refused(settings, WECOM_URL.replace("https://", "http://"))
    assert error.field == "url" and "https://" in error.message


def test_hosts_outside_the_list_are_refused(settings: Settings) -> None:
    for url in (
        f"https://evil.example.com/cgi-bin/webhook/send?key={KEY}",
        f"https://qyapi.weixin.qq.com.evil.example.com/cgi-bin/webhook/send?key={KEY}",
        f"https://{KEY}@evil.example.com/",
        f"https://qyapi.weixin.qq.com@evil.example.com/cgi-bin/webhook/send?key={KEY}",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/robot/send?access_token=x",
    ):
        error = refused(settings, url)
        assert error.field == "url", url
    error = refused(settings, f"https://evil.example.com/cgi-bin/webhook/send?key={KEY}")
    assert "evil.example.com" in error.message and "qyapi.weixin.qq.com" in error.message


def test_malformed_addresses_are_refused(settings: Settings) -> None:
    for url in (
        "",
        "   ",
        "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x",
        "https://",
        "https://[::1/",
        f"{WECOM_URL}#frag",
        f"{WECOM_URL} extra",
        "https://qyapi.weixin.qq.com:99999/x",
        "ftp://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x",
        "https:\\\\qyapi.weixin.qq.com\\x",
        "https://" + "a" * 3000,
    ):
        error = refused(settings, url)
        assert error.field == "url", url


def test_ports_other_than_443_are_refused_on_vendor_hosts(settings: Settings) -> None:
    error = refused(settings, WECOM_URL.replace("qyapi.weixin.qq.com", "qyapi.weixin.qq.com:8443"))
    assert "端口" in error.message


def test_vendor_host_must_match_the_kind_and_carry_the_credential(settings: Settings) -> None:
    error = refused(settings, DINGTALK_URL, WebhookKind.WECOM)
    assert error.field == "kind" and "钉钉" in error.message
    error = refused(settings, WECOM_URL, WebhookKind.DINGTALK)
    assert error.field == "kind" and "企业微信" in error.message
    error = refused(settings, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send", WebhookKind.WECOM)
    assert "key" in error.message and error.field == "url"
    refused(settings, "https://qyapi.weixin.qq.com/cgi-bin/other?key=abc", WebhookKind.WECOM)
    refused(settings, "https://oapi.dingtalk.com/robot/send?access_token=", WebhookKind.DINGTALK)


def test_loopback_http_only_when_listed(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token=abc"
    listed = make_settings(tmp_path)
    assert check_url(listed, url, WebhookKind.DINGTALK) == url
    default = make_settings(tmp_path, webhook_hosts="qyapi.weixin.qq.com,oapi.dingtalk.com")
    assert refused(default, url, WebhookKind.DINGTALK).field == "url"
    assert refused(listed, url.replace("127.0.0.1", "localhost"), WebhookKind.DINGTALK).field == "url"
    assert refused(listed, url.replace("127.0.0.1", "127.0.0.2"), WebhookKind.DINGTALK).field == "url"


def test_the_default_host_list_and_bad_settings(tmp_path: Path) -> None:
    default = load_settings(env="test", data_dir=tmp_path)
    assert default.webhook_host_set == frozenset({"qyapi.weixin.qq.com", "oapi.dingtalk.com"})
    assert make_settings(tmp_path, webhook_hosts=" QYAPI.weixin.qq.com , ,127.0.0.1").webhook_host_set == frozenset(
        {"qyapi.weixin.qq.com", "127.0.0.1"}
    )
    for bad in ("https://qyapi.weixin.qq.com", "*.qq.com", "qyapi.weixin.qq.com:443", "a/b"):
        with pytest.raises(ConfigError, match="FIVESTAR_WEBHOOK_HOSTS"):
            make_settings(tmp_path, webhook_hosts=bad)


# --- masking -------------------------------------------------------------------------------------


def test_masked_address_shows_host_path_and_four_characters() -> None:
    assert mask_url(WECOM_URL) == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=••••beef"
    assert mask_url(DINGTALK_URL) == f"https://oapi.dingtalk.com/robot/send?access_token=••••{ACCESS_TOKEN[-4:]}"
    assert mask_url("https://qyapi.weixin.qq.com/x?key=short") == "https://qyapi.weixin.qq.com/x?key=••••"
    assert mask_url("http://127.0.0.1:8080/robot/send?access_token=abcdefghijklmnop") == (
        "http://127.0.0.1:8080/robot/send?access_token=••••mnop"
    )
    assert_no_secret(mask_url(WECOM_URL) + mask_url(DINGTALK_URL))


# --- message formats -----------------------------------------------------------------------------


def test_wecom_payload_is_markdown_with_a_bold_title() -> None:
    body = payload(WebhookKind.WECOM, " 自评提醒 ", "第一党支部还有 3 名党员未自评\n截止：4月10日 ")
    assert body == {
        "msgtype": "markdown",
        "markdown": {"content": "**自评提醒**\n第一党支部还有 3 名党员未自评\n截止：4月10日"},
    }


def test_dingtalk_payload_has_title_and_text_with_paragraphs() -> None:
    body = payload(WebhookKind.DINGTALK, "自评提醒", "第一行\n\n第二行\n第三行")
    assert body == {
        "msgtype": "markdown",
        "markdown": {"title": "自评提醒", "text": "#### 自评提醒\n\n第一行\n\n第二行\n\n第三行"},
    }


def test_long_messages_are_cut_to_4096_bytes_at_a_character() -> None:
    for kind in WebhookKind:
        body = payload(kind, "标题", "长" * 5000)
        content = body["markdown"]["content" if kind is WebhookKind.WECOM else "text"]
        assert len(content.encode("utf-8")) <= 4096 and content.endswith("…")
        content.encode("utf-8").decode("utf-8")  # no broken character


# --- sending to a real HTTP server on loopback ---------------------------------------------------


def test_send_to_wecom_posts_the_json(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.WECOM, robot.url(WebhookKind.WECOM))
    send(settings, row, "自评提醒", "还有 3 名党员未自评")
    (received,) = robot.requests
    assert received.path == "/cgi-bin/webhook/send" and received.query == {"key": KEY}
    assert received.headers["content-type"].startswith("application/json")
    assert received.json == payload(WebhookKind.WECOM, "自评提醒", "还有 3 名党员未自评")
    assert "自评提醒".encode() in received.body  # UTF-8, not \\u escapes


def test_send_to_dingtalk_signs_the_request(settings: Settings, robot: LoopbackRobot) -> None:
    import time

    row = robot_row(settings, WebhookKind.DINGTALK, robot.url(WebhookKind.DINGTALK), SECRET)
    before = int(time.time() * 1000)
    send(settings, row, "审核提醒", "请在截止前报送")
    after = int(time.time() * 1000)
    (received,) = robot.requests
    assert received.path == "/robot/send"
    assert received.query["access_token"] == ACCESS_TOKEN
    timestamp = received.query["timestamp"]
    assert timestamp.isdigit() and before <= int(timestamp) <= after  # milliseconds
    assert received.query["sign"] == expected_sign(SECRET, timestamp)  # parse_qs undid the URL encoding
    assert received.json == payload(WebhookKind.DINGTALK, "审核提醒", "请在截止前报送")


def test_dingtalk_sign_is_url_encoded_in_the_request_line(settings: Settings) -> None:
    signed = sending._signed("https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, 1577000000000)
    sign = expected_sign(SECRET, "1577000000000")
    assert signed.endswith(
        "&timestamp=1577000000000&sign=" + sign.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    )


def test_dingtalk_without_secret_is_not_signed(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.DINGTALK, robot.url(WebhookKind.DINGTALK))
    send(settings, row, "提醒", "正文")
    assert set(robot.requests[0].query) == {"access_token"}


def failure(settings: Settings, row: Webhook, **kwargs: Any) -> str:
    with pytest.raises(WebhookError) as caught:
        send(settings, row, "提醒", "正文", **kwargs)
    message = str(caught.value)
    assert_no_secret(message)
    # nothing chained: urllib's exceptions carry the full URL and would travel in a logged traceback
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return message


def test_http_errors_are_reported_by_status(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.DINGTALK, robot.url(WebhookKind.DINGTALK), SECRET)
    robot.status, robot.answer = 500, b"internal error " + ACCESS_TOKEN.encode()
    assert "HTTP 500" in failure(settings, row)
    robot.status, robot.answer = 404, b""
    assert "HTTP 404" in failure(settings, row)


def test_a_redirect_is_not_followed(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.WECOM, robot.url(WebhookKind.WECOM))
    robot.status, robot.location = 302, f"http://127.0.0.1:{robot.port}/elsewhere"
    assert "HTTP 302" in failure(settings, row)
    assert [request.path for request in robot.requests] == ["/cgi-bin/webhook/send"]


def test_vendor_refusals_carry_errcode_and_errmsg(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.WECOM, robot.url(WebhookKind.WECOM))
    robot.answer = {"errcode": 93000, "errmsg": f"invalid webhook url, key={KEY}, hint: [1234]"}
    message = failure(settings, row)
    assert "errcode 93000" in message and "invalid webhook url" in message
    signed = robot_row(settings, WebhookKind.DINGTALK, robot.url(WebhookKind.DINGTALK), SECRET)
    robot.answer = {"errcode": 310000, "errmsg": f"sign not match, secret {SECRET}"}
    assert "errcode 310000" in failure(settings, signed)
    robot.answer = {"errmsg": "ok"}  # no errcode is no success
    assert "errcode None" in failure(settings, row)
    robot.answer = {"errcode": False, "errmsg": "ok"}
    assert "errcode" in failure(settings, row)
    robot.answer = b"<html>not json</html>"
    assert "JSON" in failure(settings, row)


def test_connection_refused(settings: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}/robot/send?access_token={ACCESS_TOKEN}"
    row = robot_row(settings, WebhookKind.DINGTALK, url, SECRET)
    message = failure(settings, row)
    assert "无法连接" in message and "refused" in message.lower()


def test_timeout(settings: Settings, robot: LoopbackRobot) -> None:
    row = robot_row(settings, WebhookKind.WECOM, robot.url(WebhookKind.WECOM))
    robot.delay = 1.5
    assert "超时" in failure(settings, row, timeout=0.3)


def test_an_address_no_longer_allowed_is_not_contacted(
    settings: Settings, robot: LoopbackRobot, tmp_path: Path
) -> None:
    row = robot_row(settings, WebhookKind.WECOM, robot.url(WebhookKind.WECOM))
    narrowed = make_settings(tmp_path, webhook_hosts="qyapi.weixin.qq.com,oapi.dingtalk.com")
    assert "不被允许" in failure(narrowed, row)
    assert robot.requests == []


def test_nothing_logged_carries_the_address_or_secret(
    settings: Settings, robot: LoopbackRobot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    row = robot_row(settings, WebhookKind.DINGTALK, robot.url(WebhookKind.DINGTALK), SECRET)
    send(settings, row, "提醒", "正文")
    robot.answer = {"errcode": 310000, "errmsg": f"sign not match {SECRET} {ACCESS_TOKEN}"}
    with pytest.raises(WebhookError):
        send(settings, row, "提醒", "正文")
    robot.status = 500
    with pytest.raises(WebhookError):
        send(settings, row, "提醒", "正文")
    nobody = f"http://127.0.0.1:{free_port()}/robot/send?access_token={ACCESS_TOKEN}"
    refused_row = robot_row(settings, WebhookKind.DINGTALK, nobody, SECRET)
    with pytest.raises(WebhookError):
        send(settings, refused_row, "提醒", "正文")
    assert "delivered" in caplog.text and "not delivered" in caplog.text
    assert_no_secret(caplog.text)
    assert str(robot.port) not in caplog.text  # not even the address's host and port
    assert repr(row) == "<Webhook 7 dingtalk '测试群'>"
