"""Forms of the inspectors' pages: the audit trail's filters (GET) and a spot check (POST).

They only collect text; the views and services parse it and answer bad input with a message on
the field and a 400.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length

from fivestar.i18n import _l


class TrailFilterForm(FlaskForm):
    """Filters of the audit trail (GET, no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    actor = SelectField(_l("操作人"), choices=[], validate_choice=False)
    member = StringField(_l("涉及党员（姓名或党员编号）"), validators=[Length(max=60)], render_kw={"type": "search"})
    org = SelectField(_l("组织（含下级）"), choices=[], validate_choice=False)
    round = SelectField(_l("评定轮次"), choices=[], validate_choice=False)
    family = SelectField(_l("事项类别"), choices=[], validate_choice=False)
    date_from = StringField(_l("起始日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    date_to = StringField(_l("截止日期"), validators=[Length(max=20)], render_kw={"type": "date"})


class SpotCheckForm(FlaskForm):
    round = SelectField(_l("评定轮次"), choices=[], validate_choice=False)
    branches = StringField(
        _l("抽查支部数"), validators=[Length(max=6)], default="3", render_kw={"inputmode": "numeric"}
    )
    members = StringField(
        _l("抽查党员数"), validators=[Length(max=6)], default="5", render_kw={"inputmode": "numeric"}
    )
    seed = StringField(
        _l("随机种子（留空则自动生成；填入已有种子可重复抽查）"),
        validators=[Length(max=64)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
