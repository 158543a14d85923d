"""Forms of the tenant's rules page (also used by the operator's tenant page)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import StringField
from wtforms.validators import Length, Optional

from fivestar.i18n import _l
from fivestar.tenants.services import NOTE_MAX


class RulesUploadForm(FlaskForm):
    """A new rule-set version: the TOML file and a note saying what changed."""

    rules_file = FileField(_l("规则文件（TOML）"), validators=[FileRequired(message=_l("请选择规则文件"))])
    note = StringField(_l("版本说明"), validators=[Optional(), Length(max=NOTE_MAX)])
