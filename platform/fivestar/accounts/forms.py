"""Forms of the login pages, password pages and account administration.

Forms check shape (required, length); the services check meaning (password rules, role scope,
uniqueness) so the same rules hold for the CLI and the importer.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from fivestar.i18n import _l


class LoginForm(FlaskForm):
    username = StringField(_l("用户名"), validators=[DataRequired(message=_l("请输入用户名")), Length(max=60)])
    password = PasswordField(_l("密码"), validators=[DataRequired(message=_l("请输入密码")), Length(max=128)])


class SetPasswordForm(FlaskForm):
    """The page behind an invitation or reset link."""

    new_password = PasswordField(
        _l("新密码"), validators=[DataRequired(message=_l("请输入新密码")), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("再次输入新密码"), validators=[DataRequired(message=_l("请再次输入新密码")), Length(max=128)],
        render_kw={"autocomplete": "new-password"},
    )


class ChangePasswordForm(SetPasswordForm):
    current_password = PasswordField(
        _l("当前密码"), validators=[DataRequired(message=_l("请输入当前密码")), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class AccountForm(FlaskForm):
    """Create an account (the username cannot change afterwards)."""

    username = StringField(
        _l("用户名"), validators=[DataRequired(message=_l("请输入用户名")), Length(max=60)],
        render_kw={"autocomplete": "off"},
    )
    display_name = StringField(_l("姓名"), validators=[Optional(), Length(max=60)])
    email = StringField(_l("电子邮箱"), validators=[Optional(), Length(max=254)], render_kw={"type": "email"})
    member_no = StringField(_l("关联党员编号（可选）"), validators=[Optional(), Length(max=40)])
    send_invitation = RadioField(_l("创建后"), choices=[], default="yes")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set after construction: WTForms 3.3 deprecates tuple choices in the declaration.
        self.send_invitation.choices = [("yes", _l("发送邀请邮件")), ("no", _l("暂不发送"))]


class AccountEditForm(FlaskForm):
    display_name = StringField(_l("姓名"), validators=[DataRequired(message=_l("请填写姓名")), Length(max=60)])
    email = StringField(_l("电子邮箱"), validators=[Optional(), Length(max=254)], render_kw={"type": "email"})
    version = HiddenField()  # the version the page was opened on (fivestar.kernel.versioning)


class GrantRoleForm(FlaskForm):
    # Choices are filled per request (labels in the reader's language; organisations of the tenant).
    role = SelectField(_l("角色"), choices=[], validators=[DataRequired(message=_l("请选择角色"))])
    organisation_id = SelectField(_l("所属组织（机关党委/党总支/支部角色必选）"), choices=[], validate_choice=True)


class ResetPasswordForm(FlaskForm):
    method = RadioField(
        _l("重置方式"), choices=[], default="temporary", validators=[DataRequired(message=_l("请选择重置方式"))]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method.choices = [
            ("temporary", _l("生成临时密码（仅显示一次，登录后须修改）")),
            ("link", _l("发送重置链接到电子邮箱")),
        ]
