"""What happens because the calendar says so (CONTRIBUTING.md "Workers").

The database is the truth: every per-tenant due time is a row in `due_items`, computed in the
tenant's time zone with `zoneinfo` and stored in UTC (`times`, `planner`). Beat only fires a
platform-wide UTC tick; the worker's sweep (`runner`) claims due rows with a conditional UPDATE and
performs their effect, whose uniqueness the database enforces (one round per tenant and period), so
a retry, a redelivered message or a second beat changes nothing.
"""
