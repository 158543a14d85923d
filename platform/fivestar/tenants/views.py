"""The tenant's rules pages (`/t/<slug>/rules/…`): read the rule set, its history, upload a version.

Everything shown comes from the rule engine's validated model (`RuleSet`), rebuilt from the
stored normalised document, so the page shows exactly the numbers the engine will use. Tenant
administrators (`Action.RULES_MANAGE`) may upload a new version; it applies to rounds opened
afterwards and never changes a round already under way.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required

from fivestar.accounts.policy import Action, authorize, require
from fivestar.errors import ServiceError
from fivestar.i18n import _
from fivestar.rules import RuleSet, SchemePart, level_label, level_label_en, medal_label
from fivestar.rules.model import Aspect, MonthDay
from fivestar.tenants import services
from fivestar.tenants.forms import RulesUploadForm
from fivestar.tenants.models import RuleSetVersion, Tenant
from fivestar.web.session import db
from fivestar.web.tenant import current_tenant

rules_bp = Blueprint("rules", __name__, url_prefix="/rules")


class RulesText:
    """Small formatting helpers for the rules template, in the page's language.

    The rule engine gives (Chinese, English) pairs for its rule types; this picks one and formats
    exact decimals without exponent or trailing zeros.
    """

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.english = str(get_locale() or "zh") == "en"

    @staticmethod
    def num(value: Decimal | int) -> str:
        text = format(Decimal(value).normalize(), "f")
        return "0" if text in ("-0", "") else text

    def pct(self, value: Decimal) -> str:
        return self.num(Decimal(value) * 100) + "%"

    def level(self, level: int | None, kind: str = "branch") -> str:
        if self.english:
            return level_label_en(level)
        if kind == "member":
            return level_label(level, "member", self.rules.member.below_label)
        return level_label(level)

    def medal(self, medal: Any) -> str:
        return str(medal.value) if self.english else medal_label(medal)

    def pick(self, pair: tuple[str, str]) -> str:
        return pair[1] if self.english else pair[0]

    def day(self, value: MonthDay | None) -> str:
        if value is None:
            return ""
        if self.english:
            return f"{value.month}/{value.day}" if value.day else f"end of month {value.month}"
        return value.describe()

    def fact(self, key: str) -> str:
        found = self.rules.branch.fact(key)
        return found.label if found is not None else key

    def member_items(self) -> list[tuple[SchemePart, Aspect | None]]:
        """The scheme's input fields with their full definitions (guide, named-star threshold)."""
        scheme = self.rules.member.scheme
        details: dict[str, Aspect] = {
            item.key: item
            for attribute in ("aspects", "additions", "deductions")
            for item in getattr(scheme, attribute, ())
        }
        return [(part, details.get(part.key)) for part in scheme.parts()]

    def lowest_gap(self, kind: str) -> str | None:
        """The name of the level below the lowest band, when a score can fall below it."""
        bands = self.rules.branch.stars if kind == "branch" else self.rules.member.stars
        if bands.bands[-1].min > 0:
            return self.level(0, kind)
        return None


def toml_download(text: str, filename: str) -> Response:
    """A rule-set source as a file download (UTF-8 TOML), never cached."""
    response = Response(text, content_type="application/toml; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(tenant: Tenant, version: RuleSetVersion | None, status: int = 200, **extra: Any) -> Any:
    """Render a version (or the 'no rules yet' page) with the history and, for admins, the form."""
    history = services.rules_history(db(), tenant)
    rules = services.version_rules(version) if version is not None else None
    form = extra.pop("form", None)
    can_manage = authorize(current_user, Action.RULES_MANAGE, tenant)
    if form is None and can_manage:
        form = RulesUploadForm()
    return (
        render_template(
            "tenants/rules.html",
            version=version,
            current_version=history[0].version if history else None,
            rules=rules,
            text=RulesText(rules) if rules is not None else None,
            history=history,
            form=form,
            can_manage=can_manage,
            rule_errors=extra.pop("rule_errors", []),
        ),
        status,
    )


@rules_bp.get("/")
@login_required
def index() -> Any:
    tenant = current_tenant()
    require(current_user, Action.RULES_VIEW, tenant)
    return _page(tenant, services.current_rules(db(), tenant))


@rules_bp.get("/v/<int:number>")
@login_required
def version(number: int) -> Any:
    tenant = current_tenant()
    require(current_user, Action.RULES_VIEW, tenant)
    try:
        found = services.rules_version(db(), tenant, number)
    except ServiceError:
        abort(404)
    return _page(tenant, found)


@rules_bp.get("/v/<int:number>/download")
@login_required
def download(number: int) -> Any:
    tenant = current_tenant()
    require(current_user, Action.RULES_VIEW, tenant)
    try:
        found = services.rules_version(db(), tenant, number)
    except ServiceError:
        abort(404)
    return toml_download(found.source_toml, f"{tenant.slug}-rules-v{found.version}.toml")


@rules_bp.post("/upload")
@login_required
def upload() -> Any:
    tenant = current_tenant()
    require(current_user, Action.RULES_MANAGE, tenant)
    form = RulesUploadForm()
    if not form.validate_on_submit():
        return _page(tenant, services.current_rules(db(), tenant), 400, form=form)
    try:
        text = services.decode_rules_upload(form.rules_file.data.read())
        created = services.add_rules_version(db(), tenant, text, note=form.note.data)
    except ServiceError as exc:
        db().rollback()
        rule_errors = list(getattr(exc, "errors", []))
        form.rules_file.errors = [
            *list(form.rules_file.errors or []),
            _("规则文件有误，共 %(n)d 处，见下方列表", n=len(rule_errors)) if rule_errors else exc.message,
        ]
        return _page(tenant, services.current_rules(db(), tenant), exc.status, form=form, rule_errors=rule_errors)
    db().commit()
    flash(_("已保存第 %(n)d 版规则；已开始的评定仍按原版本进行。", n=created.version), "success")
    return redirect(url_for("tenant.rules.index"))


__all__ = ["rules_bp", "toml_download"]
