"""The rectification plan's forms (WTForms): the goal, an item, an item's progress."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from fivestar.i18n import _l
from fivestar.improvement.models import ItemStatus

STATUS_LABELS = {
    ItemStatus.NOT_STARTED.value: _l("未开始"),
    ItemStatus.IN_PROGRESS.value: _l("推进中"),
    ItemStatus.DONE.value: _l("已完成"),
}
STATUS_CHOICES = [SelectChoice(value, label) for value, label in STATUS_LABELS.items()]


class GoalForm(FlaskForm):
    goal = TextAreaField(_l("争创目标"), validators=[Optional(), Length(max=2000, message=_l("最长 2000 个字"))])
    version = HiddenField()


class ItemForm(FlaskForm):
    """An item's content (while the plan is a draft) and its progress; the service checks the values."""

    problem = TextAreaField(_l("存在的问题"), validators=[Length(max=2000, message=_l("最长 2000 个字"))])
    measure = TextAreaField(_l("整改措施"), validators=[Length(max=2000, message=_l("最长 2000 个字"))])
    owner = StringField(_l("责任人"), validators=[Length(max=120, message=_l("最长 120 个字"))])
    deadline = StringField(_l("完成时限"), render_kw={"type": "date"})
    status = SelectField(_l("进度"), choices=STATUS_CHOICES, validate_choice=False)
    version = HiddenField()


class StatusForm(FlaskForm):
    """The progress buttons: a status is required (an empty one used to be saved as "no change" with
    an audit event and a success message); the service refuses unknown values."""

    status = SelectField(
        _l("进度"), choices=STATUS_CHOICES, validate_choice=False, validators=[DataRequired(_l("请选择进度"))]
    )
    version = HiddenField()


class ConfirmForm(FlaskForm):
    """A confirmation step (publishing, removing, recording): the version the page was built from."""

    version = HiddenField()


def status_label(value: str) -> str:
    return str(STATUS_LABELS.get(value, value))
