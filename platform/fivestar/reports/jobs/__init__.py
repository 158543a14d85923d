"""Reports made by workers (CONTRIBUTING.md "Workers"): a tenant asks for one, a worker on the `reports`
queue writes the file while the page shows its progress, and the file is kept for a while.

- `models.py`: `ReportJob`, one row per requested report, the truth about its state.
- `kinds.py`: what can be asked for (kind × format) and what each needs (a member or branch round).
- `content.py`: what each kind writes — the rows, from set-based streaming queries, into the
  writers of `tables.py` (or the member round's own Excel export, `member_rounds/workbooks.py`).
- `services.py`: asking (`request_report`, enqueued only after commit), producing (`run_job`: claim
  with a conditional UPDATE, write, progress in short transactions, done or failed) and the sweep
  (`sweep`: jobs whose worker died go back to the queue or fail after N attempts; expired files
  are deleted).
- `views.py`: `/t/<slug>/reports/` — the list with live progress, downloads, and the "生成报表"
  actions the round pages post to.

The Celery tasks are thin (`workers/reports.py`): `fivestar.reports.generate` and
`fivestar.reports.sweep`.
"""
