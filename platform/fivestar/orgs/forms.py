"""Forms of the organisation pages. Values are checked by the services (one source of messages);
the forms only collect them, so a refused value comes back with the service's message on its field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional

from fivestar.i18n import _l


class OrgCreateForm(FlaskForm):
    kind = SelectField(_l("组织类型"), choices=[], validate_choice=False)
    name = StringField(_l("组织名称"), validators=[Length(max=120, message=_l("组织名称最长 120 个字"))])
    code = StringField(
        _l("组织代码"),
        validators=[Length(max=40, message=_l("组织代码最长 40 位"))],
        description=_l("留空则自动生成"),
    )
    sort_order = IntegerField(
        _l("排序"),
        default=0,
        validators=[Optional(), NumberRange(min=0, max=9999, message=_l("排序须为 0–9999 的整数"))],
    )


class OrgEditForm(OrgCreateForm):
    code = StringField(
        _l("组织代码"),
        validators=[Length(max=40, message=_l("组织代码最长 40 位"))],
        description=_l("留空则保持不变"),
    )
    version = HiddenField()  # the version the page was opened on (fivestar.kernel.versioning)


class OrgMoveForm(FlaskForm):
    parent_id = SelectField(_l("新的上级组织"), choices=[], validate_choice=False)
    reason = TextAreaField(_l("调整原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()


class OrgReasonForm(FlaskForm):
    """Deactivating or reactivating: a confirmation with an optional reason."""

    reason = TextAreaField(_l("原因"), validators=[Length(max=500, message=_l("原因最长 500 个字"))])
    version = HiddenField()
