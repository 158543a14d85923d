"""What people read for standing's stored values (causes, event kinds, sources, event states)."""

from __future__ import annotations

from fivestar.i18n import _
from fivestar.standing.models import Cause, EventKind, EventState, SourceKind


def cause_label(cause: Cause | str | None) -> str:
    if cause is None:
        return ""
    return {
        Cause.VETO: _("否决事项"),
        Cause.SANCTION: _("受到处分"),
        Cause.HONOUR: _("获得表彰"),
        Cause.OTHER: _("其他"),
    }[Cause(cause)]


def event_kind_label(kind: EventKind | str) -> str:
    return {EventKind.VETO: _("否决事项"), EventKind.SANCTION: _("处分"), EventKind.HONOUR: _("表彰")}[EventKind(kind)]


def event_state_label(state: EventState | str) -> str:
    return {EventState.OPEN: _("待研究"), EventState.ADJUSTED: _("已调整星级"), EventState.DISMISSED: _("不予调整")}[
        EventState(state)
    ]


def source_label(source: SourceKind | str) -> str:
    return {
        SourceKind.BRANCH_ROUND: _("年度定星"),
        SourceKind.MEMBER_ROUND: _("党员评定"),
        SourceKind.ADJUSTMENT: _("增星摘星"),
    }[SourceKind(source)]


def direction_label(from_level: int | None, to_level: int | None) -> str:
    """增星 when the level went up, 摘星 when it went down."""
    if from_level is None or to_level is None:
        return _("调整")
    return _("增星") if to_level > from_level else _("摘星")


__all__ = ["cause_label", "direction_label", "event_kind_label", "event_state_label", "source_label"]
