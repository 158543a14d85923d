"""The upload form (CSRF comes with FlaskForm)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired

from fivestar.i18n import _l


class UploadForm(FlaskForm):
    file = FileField(_l("Excel 文件（.xlsx）"), validators=[FileRequired(message=_l("请选择要导入的 Excel 文件"))])
