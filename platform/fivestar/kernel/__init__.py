"""The kernel: what every feature stands on and that knows no feature.

* `versioning` — optimistic locking for every edit form of a versioned record.
* `lease` — claim, heartbeat, finish, retry with backoff and reclaim: the one lease of every job queue.
* `task_names` — every Celery task name and queue name, shared by senders and `workers/`.
* `events` — the domain events through which features react to each other (receivers: `fivestar.features`).
* `commandline` — what every `fivestar` command shares (the settings, or exit status 2).

Kernel modules import only the foundation (`fivestar.db`, `fivestar.tenancy`, `fivestar.errors`,
`fivestar.i18n`, `fivestar.timekeeping`, `fivestar.audit`) and never a feature package or Flask; the
import contracts in `pyproject.toml` keep it so.
"""
