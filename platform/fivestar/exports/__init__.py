"""Exports to superior committees (上报上级): which reports of a district go where, and when.

A tenant administrator sets up *targets* (`models.ExportTarget`): a report kind and format, a
method — e-mail with the file attached, a signed HTTPS POST, or an SFTP drop — its destination and
secret (stored encrypted), and a trigger: when a round of the matching type is finalised, or on a
month-day each year (then the latest finalised round goes). Each round goes to each target once:
an `ExportDelivery` row per (target, round), unique in the database.

- `models.py`: the two tables.
- `services.py`: validating and saving targets (the administrator's pages call it), "send again".
- `transports.py`: the three ways a file leaves the server, each idempotent at the receiver
  (a delivery id in the HTTPS headers, a stable e-mail Message-ID, an SFTP temporary name renamed).
- `sweep.py`: the worker's sweep from every tick — plans deliveries (`planning.py`), asks the report
  workers for the file, sends it once it is done (`sending.py`, under the one lease of
  fivestar.kernel.lease, described for this table in `queue.py`), retries with backoff and alerts the
  administrators once when a delivery fails for good (`alerts.py`).
- `views.py`: `/t/<slug>/exports/` — the targets and the delivery log.

How a receiver checks an HTTPS delivery is described in `transports.py` and in README.md
("Exports to superior committees").
"""
