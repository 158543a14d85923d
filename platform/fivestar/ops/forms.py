"""Forms of the operator's pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from fivestar.i18n import _l
from fivestar.tenants.services import COMMON_TIMEZONES, NAME_MAX, REASON_MAX

UPLOAD = "__upload__"


class CreateTenantForm(FlaskForm):
    """A new tenant. The rules come from a sample file in `tenants/` or from an uploaded file."""

    slug = StringField(
        _l("单位代码"),
        validators=[DataRequired(message=_l("请填写单位代码")), Length(min=3, max=40)],
        description=_l("用于网址 /t/代码/，3–40 个小写字母、数字或连字符，以字母开头"),
    )
    name = StringField(_l("单位名称"), validators=[DataRequired(message=_l("请填写单位名称")), Length(max=NAME_MAX)])
    committee_name = StringField(_l("工委名称"), validators=[Optional(), Length(max=NAME_MAX)])
    timezone = SelectField(
        _l("时区"), choices=[SelectChoice(zone, f"{label} ({zone})") for zone, label in COMMON_TIMEZONES]
    )
    locale = SelectField(
        _l("默认语言"), choices=[SelectChoice("zh", "中文 (zh)"), SelectChoice("en", "English (en)")]
    )
    rules_source = SelectField(_l("评定规则"), choices=[])
    rules_file = FileField(_l("上传规则文件（TOML）"))


class SuspendForm(FlaskForm):
    reason = TextAreaField(
        _l("暂停原因"), validators=[DataRequired(message=_l("暂停须说明原因")), Length(max=REASON_MAX)]
    )


class ResumeForm(FlaskForm):
    reason = StringField(_l("恢复说明"), validators=[Optional(), Length(max=REASON_MAX)])


class AddAdminForm(FlaskForm):
    """The operator opens a district with its first administrator, who is invited by e-mail."""

    username = StringField(_l("用户名"), validators=[DataRequired(message=_l("请输入用户名")), Length(max=60)])
    display_name = StringField(_l("姓名"), validators=[DataRequired(message=_l("请填写姓名")), Length(max=60)])
    email = StringField(
        _l("电子邮箱"), validators=[DataRequired(message=_l("请填写电子邮箱")), Length(max=254)],
        description=_l("邀请邮件发到这里，由本人设置密码；平台运营方不经手单位账号的密码"),
    )
