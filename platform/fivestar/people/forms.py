"""Forms of the member pages.

The forms only collect values: the services parse and check them with `fivestar.people.fields`
(the importer's parsers), so the messages are the same everywhere. `version` travels with every
change so that a save based on an old page is refused instead of overwriting someone's change.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Length

from fivestar.enums import Gender, MemberStatus, Position, Standing
from fivestar.i18n import _l
from fivestar.labels import choices


class MemberForm(FlaskForm):
    name = StringField(_l("姓名"), validators=[Length(max=60, message=_l("姓名最长 60 个字"))])
    gender = SelectField(_l("性别"), choices=[], validate_choice=False)
    member_no = StringField(_l("党员编号"), validators=[Length(max=40, message=_l("党员编号最长 40 位"))])
    phone = StringField(
        _l("联系电话"), validators=[Length(max=32, message=_l("电话号码过长"))], render_kw={"type": "tel"}
    )
    joined_on = StringField(
        _l("入党日期"),
        validators=[Length(max=20)],
        render_kw={"type": "date"},
        description=_l("例如 2010-07-01"),
    )
    standing = SelectField(_l("党员类别"), choices=[], validate_choice=False)
    position = SelectField(_l("支部职务"), choices=[], validate_choice=False)
    note = TextAreaField(_l("备注"), validators=[Length(max=2000, message=_l("备注最长 2000 个字"))])
    version = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gender.choices = choices(Gender)
        self.standing.choices = choices(Standing)
        self.position.choices = choices(Position)


class MemberCreateForm(MemberForm):
    branch_id = SelectField(_l("所在支部"), choices=[], validate_choice=False)


class MemberMoveForm(FlaskForm):
    branch_id = SelectField(_l("调入支部"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("调整原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()


class MemberTransferForm(FlaskForm):
    left_on = StringField(_l("转出日期"), validators=[Length(max=20)], render_kw={"type": "date"})
    reason = TextAreaField(_l("转出原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()


class MemberReactivateForm(FlaskForm):
    branch_id = SelectField(_l("恢复到支部"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("恢复原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()


STATUS_ALL = "all"


class MemberSearchForm(FlaskForm):
    """The search bar (GET, no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(_l("姓名、编号或电话"), validators=[Length(max=40)], render_kw={"type": "search"})
    org = SelectField(_l("组织"), choices=[], validate_choice=False)
    standing = SelectField(_l("党员类别"), choices=[], validate_choice=False)
    position = SelectField(_l("职务"), choices=[], validate_choice=False)
    status = SelectField(_l("状态"), choices=[], validate_choice=False, default=MemberStatus.ACTIVE.value)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        anything = ("", str(_l("不限")))
        self.standing.choices = [anything, *choices(Standing)]
        self.position.choices = [anything, *choices(Position)]
        self.status.choices = [*choices(MemberStatus), (STATUS_ALL, str(_l("全部")))]
