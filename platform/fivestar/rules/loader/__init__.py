"""Loading and validating rule-set documents (TOML text, a file, or an already-parsed mapping).

Every check from ``tenants/README.md`` lives here.  Problems are collected, not raised one at a
time; when anything is wrong a ``RuleSetError`` lists them all, each with its path.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from .._reader import Reader, join_path
from ..errors import RuleError, RuleSetError, bilingual
from ..model import FORMAT_VERSION, ImprovementRules, Meta, RuleSet
from .branch import _branch
from .improvement import _improvement
from .member import _member
from .schedule import _schedule

__all__ = ["load_rules", "load_rules_data", "load_rules_file"]


def load_rules(text: str) -> RuleSet:
    """Parse TOML text into a validated ``RuleSet`` or raise ``RuleSetError`` listing every problem.

    TOML floats are read straight into ``Decimal`` (``parse_float=Decimal``), so ``89.99`` stays
    exactly 89.99.
    """
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise RuleSetError([RuleError("", bilingual(f"不是有效的 TOML：{exc}", f"not valid TOML: {exc}"))]) from None
    return load_rules_data(data)


def load_rules_file(path: str | Path) -> RuleSet:
    """Read a UTF-8 TOML file and load it; unreadable or non-UTF-8 files raise ``RuleSetError`` too."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise RuleSetError(
            [RuleError("", bilingual(f"无法读取文件 {file}：{reason}", f"cannot read {file}: {reason}"))]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleSetError(
            [
                RuleError(
                    "",
                    bilingual(f"文件不是 UTF-8 编码（第 {exc.start} 字节）", f"file is not UTF-8 (byte {exc.start})"),
                )
            ]
        ) from None
    return load_rules(text.removeprefix("\ufeff"))


def load_rules_data(data: Mapping[str, object]) -> RuleSet:
    """Validate an already-parsed document (TOML tables or the JSON from ``RuleSet.to_document()``)."""
    errors: list[RuleError] = []
    root = Reader(data, "", errors)
    meta_r = root.table("meta")
    branch_r = root.table("branch")
    member_r = root.table("member")
    schedule_r = root.table("schedule")
    improvement_r = root.table("improvement", required=False)
    meta = _meta(meta_r) if meta_r else None
    branch = _branch(branch_r) if branch_r else None
    member = _member(member_r) if member_r else None
    schedule = _schedule(schedule_r) if schedule_r else None
    improvement = _improvement(improvement_r) if improvement_r is not None else ImprovementRules()
    root.finish()
    if errors or meta is None or branch is None or member is None or schedule is None or improvement is None:
        raise RuleSetError(errors or [RuleError("", bilingual("无效的规则文件", "invalid rule set"))])
    return RuleSet(meta=meta, branch=branch, member=member, schedule=schedule, improvement=improvement)


def _meta(r: Reader) -> Meta | None:
    version = r.integer("format_version")
    if version is not None and version != FORMAT_VERSION:
        r.error(
            "format_version",
            f"不支持的格式版本 {version}；当前为 {FORMAT_VERSION}",
            f"unsupported format version {version}; this engine reads {FORMAT_VERSION}",
        )
        version = None
    name = r.text("name")
    description = r.text("description", required=False, default="", nonempty=False)
    sources = r.text_list("sources")
    if sources:
        for i, url in enumerate(sources):
            if not url.startswith(("http://", "https://")):
                r.error(join_path("sources", i), f"'{url}' 不是 http(s) 网址", "must be an http(s) URL")
    illustrative = r.boolean("illustrative", default=False)
    notes = r.text("notes", required=False, default="", nonempty=False)
    r.finish()
    if (
        version is None
        or name is None
        or description is None
        or sources is None
        or illustrative is None
        or notes is None
    ):
        return None
    return Meta(
        format_version=version,
        name=name,
        description=description,
        sources=sources,
        illustrative=illustrative,
        notes=notes,
    )
