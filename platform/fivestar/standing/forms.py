"""The committee's forms of standing: an adjustment (增星摘星), a mid-year event, dismissing a prompt."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.i18n import _l


class AdjustForm(FlaskForm):
    to_level = SelectField(_l("调整后的星级"), choices=[], validate_choice=False)
    cause = SelectField(_l("调整原因"), choices=[], validate_choice=False)
    veto_key = SelectField(_l("否决事项（原因为否决事项时）"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("调整理由"), validators=[Length(max=2000, message=_l("理由最长 2000 个字"))])
    meeting_name = StringField(_l("批准调整的会议"), validators=[Length(max=200, message=_l("会议名称最长 200 个字"))])
    meeting_date = StringField(_l("会议日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    event_id = HiddenField()
    version = HiddenField()


class EventForm(FlaskForm):
    kind = SelectField(_l("事项类别"), choices=[], validate_choice=False)
    veto_key = SelectField(_l("否决事项"), choices=[], validate_choice=False)
    occurred_on = StringField(_l("发生日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    note = TextAreaField(_l("事项说明"), validators=[Length(max=2000, message=_l("说明最长 2000 个字"))])


class DismissForm(FlaskForm):
    reason = TextAreaField(_l("不予调整的理由"), validators=[Length(max=2000, message=_l("理由最长 2000 个字"))])
    version = HiddenField()
