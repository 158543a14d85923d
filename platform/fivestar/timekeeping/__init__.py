"""Time and working days, in one place.

* `clock` — the platform's "now" (frozen in tests, offset by the demo's fast calendar) and the
  working-day calendar (State Council arrangements with 调休).
* `holidays` — working days for a year the holiday library does not know yet.
* `deadlines` — moving a step's deadline later: the rules every round kind follows.
* `local_times` — a tenant-local date and wall-clock time as a UTC instant (gaps and folds).

The rule engine's pure date arithmetic (`fivestar.rules.schedule`) stays with the rules, which depend
on nothing of ours; this package feeds it the calendar.

`DEFAULT_TIMEZONE` is the zone of a tenant, a rule set or a page that names none (and the default of
`FIVESTAR_DEFAULT_TIMEZONE`); it is defined with the rule set's schedule, the lowest layer.
"""

from fivestar.rules.model.schedule import DEFAULT_TIMEZONE

__all__ = ["DEFAULT_TIMEZONE"]
