"""Pure parts of fivestar.exports: the HTTPS signature as a receiver checks it, the names files get,
and the on-date instants in the tenant's time zone (with and without daylight saving)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from pathlib import Path

import asyncssh
import pytest

from fivestar.config import ConfigError, load_settings
from fivestar.errors import ServiceError
from fivestar.exports import services, transports

UTC = dt.UTC


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = "报表内容".encode() * 100
    signature, digest = transports.sign("secret-key-0123456789", "1767225600", [body[:7], body[7:]])
    expected = hmac.new(b"secret-key-0123456789", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}" and digest == hashlib.sha256(body).hexdigest()


def test_verify_signature_refuses_a_changed_body_a_wrong_key_and_an_old_timestamp() -> None:
    body = b"PK\x03\x04 workbook"
    now = 1_767_225_600
    signature, _digest = transports.sign("k" * 20, str(now), [body])
    assert transports.verify_signature("k" * 20, str(now), body, signature, now=now + 10)
    assert not transports.verify_signature("k" * 20, str(now), body + b"!", signature, now=now)
    assert not transports.verify_signature("j" * 20, str(now), body, signature, now=now)
    assert not transports.verify_signature("k" * 20, str(now), body, signature, now=now + 301)
    assert not transports.verify_signature("k" * 20, "yesterday", body, signature, now=now)
    assert not transports.verify_signature("k" * 20, str(now), body, "sha256=ä", now=now)


def test_file_names_on_the_wire(tmp_path: Path) -> None:
    parcel = transports.Parcel(17, 3, "demo-east", "东城", "t", "member_results.xlsx", "member", "2026Q1",
                               tmp_path / "x", "2026年第一季度 结果.xlsx", "application/vnd.ms-excel", "")
    assert transports.remote_name(parcel) == "demo-east-member_results-2026Q1-d17.xlsx"
    disposition = transports.content_disposition(parcel.filename)
    assert disposition.startswith('attachment; filename="2026')
    assert "filename*=UTF-8''2026%E5%B9%B4" in disposition and " " not in disposition.split("filename*=")[1]


def test_on_date_instants_in_shanghai_and_in_zones_with_daylight_saving() -> None:
    after = dt.datetime(2026, 2, 1, tzinfo=UTC)
    assert services.next_on_date(3, 31, "Asia/Shanghai", after) == dt.datetime(2026, 3, 31, 1, 0, tzinfo=UTC)
    # New York: 09:00 is 14:00 UTC in winter (EST) and 13:00 UTC in summer (EDT)
    assert services.next_on_date(3, 2, "America/New_York", after) == dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert services.next_on_date(3, 9, "America/New_York", after) == dt.datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    # Berlin changes on the last Sunday of March and of October
    assert services.next_on_date(3, 29, "Europe/Berlin", after) == dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert services.next_on_date(10, 25, "Europe/Berlin", after) == dt.datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    # past this year's date: next year's
    late = dt.datetime(2026, 4, 1, tzinfo=UTC)
    assert services.next_on_date(3, 31, "Asia/Shanghai", late) == dt.datetime(2027, 3, 31, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "3", "3-", "0-10", "13-1", "2-29", "4-31", "2月30日", "三月一日"])
def test_bad_month_days(text: str) -> None:
    with pytest.raises(ServiceError) as refused:
        services.parse_month_day(text)
    assert refused.value.field == "on_date"


def test_host_keys_as_ssh_keyscan_prints_them() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    line = key.export_public_key().decode().strip()
    bare = " ".join(line.split()[:2])
    assert services.parse_host_key(line) == bare
    assert services.parse_host_key(f"[sftp.example.gov.cn]:2222 {line}") == bare
    assert services.host_key_fingerprint(bare).startswith("SHA256:")
    with pytest.raises(ServiceError):
        services.parse_host_key("ssh-ed25519 not-base64")


def test_sftp_servers_and_urls_against_the_host_list() -> None:
    settings = load_settings(env="test", export_hosts="sftp.example.gov.cn, Report.Example.gov.cn")
    assert services.parse_sftp_server(settings, "SFTP.example.gov.cn") == ("sftp.example.gov.cn", 22)
    assert services.parse_sftp_server(settings, "sftp.example.gov.cn:2222") == ("sftp.example.gov.cn", 2222)
    assert services.check_https_url(settings, " https://report.example.gov.cn:8443/in?x=1 ") == (
        "https://report.example.gov.cn:8443/in?x=1")
    for bad in ("http://report.example.gov.cn/in", "https://report.example.gov.cn/in#x", "https:///in",
                "https://other.example.gov.cn/in", "https://report.example.gov.cn/a b"):
        with pytest.raises(ServiceError):
            services.check_https_url(settings, bad)
    with pytest.raises(ServiceError, match="只允许"):
        services.parse_sftp_server(settings, "sftp.example.gov.cn.evil.com")
    with pytest.raises(ConfigError, match="FIVESTAR_EXPORT_HOSTS"):
        load_settings(env="test", export_hosts="https://report.example.gov.cn")
