"""Export targets (fivestar.exports): checked before anything is written — every refusal in Chinese
naming its field, plain HTTP only to a listed loopback, month-day spellings and the next on-date
instant, and editing that keeps the stored secret unless the method changes. (What the sweep does
with them: test_export_planning.py, test_export_transports.py, test_export_failures.py.)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncssh
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fivestar.errors import ServiceError
from fivestar.exports import services
from fivestar.exports.models import ExportTarget
from fivestar.notify.encryption import decrypt
from fivestar.tenancy import tenant_context
from fivestar.timekeeping import clock
from tests.export_support import HMAC_KEY, LoopbackReceiver
from tests.integration.export_sweep_support import (
    T0,
    UTC,
    https_target,
    make_target,
    target_input,
)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": " "}, "name", "名称"),
        ({"destination": "not-an-address"}, "destination", "电子邮箱"),
        ({"method": "https", "destination": "ftp://127.0.0.1/x", "secret": HMAC_KEY}, "destination", "https://"),
        (
            {"method": "https", "destination": "https://evil.example.com/in", "secret": HMAC_KEY},
            "destination",
            "只允许",
        ),
        (
            {"method": "https", "destination": "https://user:pw@127.0.0.1/in", "secret": HMAC_KEY},
            "destination",
            "用户名或密码",
        ),
        (
            {"method": "https", "destination": "https://127.0.0.1:99999/in", "secret": HMAC_KEY},
            "destination",
            "格式不正确",
        ),
        ({"method": "https", "destination": "https://127.0.0.1/in", "secret": "short"}, "secret", "签名密钥"),
        ({"method": "https", "destination": "https://127.0.0.1/in"}, "secret", "签名密钥"),
        ({"method": "sftp", "destination": "bad host:22", "username": "u", "secret": "p"}, "destination", "主机名"),
        ({"method": "sftp", "destination": "127.0.0.1:70000", "username": "u", "secret": "p"}, "destination", "端口"),
        (
            {"method": "sftp", "destination": "sftp.evil.example.com", "username": "u", "secret": "p"},
            "destination",
            "只允许",
        ),
        (
            {"method": "sftp", "destination": "127.0.0.1:2222", "username": "u", "secret": "p", "host_key": "nope"},
            "host_key",
            "公钥",
        ),
        ({"method": "sftp", "destination": "127.0.0.1", "username": "", "secret": "p"}, "username", "用户名"),
        (
            {"method": "sftp", "destination": "127.0.0.1", "username": "u", "remote_dir": "in/../../etc"},
            "remote_dir",
            "..",
        ),
        ({"trigger": "on_date", "on_date": "13-01"}, "on_date", "月份"),
        ({"trigger": "on_date", "on_date": "04-31"}, "on_date", "4月没有31日"),
        ({"trigger": "on_date", "on_date": "02-29"}, "on_date", "2月29日"),
        ({"trigger": "on_date", "on_date": "next spring"}, "on_date", "月-日"),
        ({"report_kind": "branch_levels", "report_format": "docx"}, "report_format", "格式"),
        ({"report_kind": "everything"}, "report_kind", "报表"),
        ({"trigger": "weekly"}, "trigger", "什么时候"),
    ],
)
def test_a_bad_target_is_refused_in_chinese_and_nothing_is_written(
    session: Session, xsettings: Any, district: dict[str, Any], fields: dict[str, Any], field: str, words: str
) -> None:
    tenant = district["tenant"]
    if fields.get("method") == "sftp" and "host_key" not in fields:
        fields = {**fields, "host_key": asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()}
    with pytest.raises(ServiceError) as refused:
        make_target(session, xsettings, tenant, **fields)
    assert refused.value.field == field, refused.value.message
    assert words in refused.value.message
    assert refused.value.status == 400
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(ExportTarget)) == 0


def test_plain_http_only_to_a_listed_loopback(
    session: Session, settings: Any, xsettings: Any, district: dict[str, Any]
) -> None:
    tenant = district["tenant"]
    with pytest.raises(ServiceError, match="FIVESTAR_EXPORT_HOSTS"):
        make_target(session, settings, tenant, method="https", destination="https://127.0.0.1:8080/in", secret=HMAC_KEY)
    with pytest.raises(ServiceError, match="https://"):
        make_target(session, settings, tenant, method="https", destination="http://127.0.0.1:8080/in", secret=HMAC_KEY)
    with pytest.raises(ServiceError, match="https://"):
        make_target(
            session,
            xsettings.model_copy(update={"export_hosts": "report.example.gov.cn"}),
            tenant,
            method="https",
            destination="http://report.example.gov.cn/in",
            secret=HMAC_KEY,
        )
    target = make_target(
        session, xsettings, tenant, method="https", destination="http://127.0.0.1:8080/in", secret=HMAC_KEY
    )
    assert target.destination == "http://127.0.0.1:8080/in"
    assert target.secret_encrypted is not None and HMAC_KEY not in target.secret_encrypted
    assert decrypt(xsettings, target.secret_encrypted) == HMAC_KEY


def test_month_day_spellings_and_the_next_instant(session: Session, xsettings: Any, district: dict[str, Any]) -> None:
    assert services.parse_month_day("3月1日") == services.parse_month_day("03-01") == (3, 1)
    assert services.parse_month_day("12/31") == (12, 31)
    target = make_target(session, xsettings, district["tenant"], trigger="on_date", on_date="3-1")
    assert (target.on_month, target.on_day) == (3, 1)
    # 1 March 2027 09:00 in Shanghai (the date of T0's year, 2026, has passed)
    assert target.next_run_at == dt.datetime(2027, 3, 1, 1, 0, tzinfo=UTC)


def test_editing_keeps_the_secret_unless_the_method_changes(
    session: Session, xsettings: Any, district: dict[str, Any], receiver: LoopbackReceiver
) -> None:
    tenant = district["tenant"]
    target = https_target(session, xsettings, tenant, receiver)
    stored = target.secret_encrypted
    with tenant_context(tenant.id), clock.frozen(T0):
        services.update_target(
            session,
            xsettings,
            tenant.timezone,
            target,
            target_input(name="改名", method="https", destination=receiver.url),
            version=target.version,
        )
        session.flush()
        assert target.secret_encrypted == stored and target.name == "改名"
        with pytest.raises(ServiceError) as refused:
            services.update_target(
                session,
                xsettings,
                tenant.timezone,
                target,
                target_input(
                    name="改名",
                    method="sftp",
                    destination="127.0.0.1:2222",
                    username="u",
                    host_key=asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode(),
                ),
                version=target.version,
            )
        assert refused.value.field == "secret"
        with pytest.raises(ServiceError, match="已被他人修改"):
            services.update_target(session, xsettings, tenant.timezone, target, target_input(name="再改"), version=1)
