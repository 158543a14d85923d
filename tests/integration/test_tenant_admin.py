"""Opening a district: its first administrator, from the command line or the operator's page.

The command-line half commits, so it runs against a database of its own per backend; the page
half uses the ordinary rolled-back test session.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from fivestar.accounts.models import Account
from fivestar.enums import Role
from fivestar.outbox.models import OutboxMessage
from fivestar.tenancy import tenant_context
from fivestar.tenants.models import Tenant

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "tenants" / "notice-illustrative.toml"


def _admin(engine: Engine, slug: str, username: str) -> tuple[Account | None, list[OutboxMessage]]:
    with Session(engine) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        with tenant_context(tenant.id):
            account = session.scalar(select(Account).where(Account.username == username))
            mail = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        return account, mail


def test_cli_adds_an_administrator_with_a_password_to_change(run: Any, cli_engine: Engine, cli_url: str) -> None:
    slug = f"open-{secrets.token_hex(3)}"
    assert run("tenant", "create", slug, "--name", "开通测试工委", "--rules", str(RULES)).exit_code == 0
    result = run(
        "tenant", "add-admin", slug, "chief", "--name", "王主任", "--password-stdin", input="Start-pass-2026\n"
    )
    assert result.exit_code == 0, result.output
    account, mail = _admin(cli_engine, slug, "chief")
    assert account is not None and account.must_change_password
    assert [grant.role for grant in account.grants] == [Role.TENANT_ADMIN]
    assert mail == []

    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    app = create_app(
        load_settings(env="test", database_url=cli_url, secret_key=secrets.token_urlsafe(40)), WTF_CSRF_ENABLED=False
    )
    client = app.test_client()
    response = client.post(f"/t/{slug}/login", data={"username": "chief", "password": "Start-pass-2026"})
    assert response.status_code == 302 and response.location.endswith(f"/t/{slug}/password")
    app.extensions["fivestar.engine"].dispose()


def test_cli_invites_an_administrator_and_the_link_works(run: Any, cli_engine: Engine, cli_url: str) -> None:
    slug = f"invite-{secrets.token_hex(3)}"
    assert run("tenant", "create", slug, "--name", "邀请测试工委", "--rules", str(RULES)).exit_code == 0
    result = run("tenant", "add-admin", slug, "clerk", "--name", "李干事", "--email", "li@example.gov.cn", "--invite")
    assert result.exit_code == 0, result.output
    account, mail = _admin(cli_engine, slug, "clerk")
    assert account is not None and account.password_hash is None
    assert [message.recipient for message in mail] == ["li@example.gov.cn"]
    link = re.search(r"https://fivestar\.example\.gov\.cn(/t/\S+/invite/\S+)", mail[0].body_text)
    assert link is not None, mail[0].body_text

    from fivestar.config import load_settings
    from fivestar.web.app import create_app

    app = create_app(
        load_settings(env="test", database_url=cli_url, secret_key=secrets.token_urlsafe(40)), WTF_CSRF_ENABLED=False
    )
    client = app.test_client()
    assert client.get(link.group(1)).status_code == 200
    response = client.post(link.group(1), data={"new_password": "Chosen-pass-2026", "confirm": "Chosen-pass-2026"})
    assert response.status_code == 302
    assert (
        client.post(f"/t/{slug}/login", data={"username": "clerk", "password": "Chosen-pass-2026"}).status_code == 302
    )
    app.extensions["fivestar.engine"].dispose()


def test_cli_refuses_an_invitation_without_email_and_changes_nothing(run: Any, cli_engine: Engine) -> None:
    slug = f"noemail-{secrets.token_hex(3)}"
    assert run("tenant", "create", slug, "--name", "无邮箱工委", "--rules", str(RULES)).exit_code == 0
    result = run("tenant", "add-admin", slug, "nomail", "--name", "赵", "--invite")
    assert result.exit_code == 1
    assert "电子邮箱" in result.output
    account, _mail = _admin(cli_engine, slug, "nomail")
    assert account is None


def test_operator_page_adds_an_invited_administrator(
    client: Any, session: Session, create_tenant: Any, create_operator: Any, login_operator: Any
) -> None:
    tenant = create_tenant(slug="ops-admin")
    login_operator(create_operator())
    response = client.post(
        "/ops/tenants/ops-admin/admins",
        data={"admin-username": "first", "admin-display_name": "首任管理员", "admin-email": "first@example.gov.cn"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    with tenant_context(tenant.id):
        account = session.scalar(select(Account).where(Account.username == "first"))
        assert account is not None and [grant.role for grant in account.grants] == [Role.TENANT_ADMIN]
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"admin-username": "x", "admin-display_name": "甲", "admin-email": "a@example.gov.cn"}, "用户名须为"),
        ({"admin-username": "okname", "admin-display_name": "甲", "admin-email": "not-an-address"}, "电子邮箱"),
        ({"admin-username": "okname", "admin-display_name": "", "admin-email": "a@example.gov.cn"}, "请填写姓名"),
    ],
)
def test_operator_page_refuses_bad_input_and_stores_nothing(
    client: Any,
    session: Session,
    create_tenant: Any,
    create_operator: Any,
    login_operator: Any,
    form: dict[str, str],
    message: str,
) -> None:
    tenant = create_tenant(slug="ops-bad")
    login_operator(create_operator())
    response = client.post("/ops/tenants/ops-bad/admins", data=form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with tenant_context(tenant.id):
        assert session.scalar(select(func.count()).select_from(Account)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
