"""Reminders before each deadline, to whoever still owes the step (CONTRIBUTING.md "Workers").

`planning` turns every open round's deadlines and the rules' lead times into `due_items` rows;
`obligations` finds, in one query per step, the people who have not done their part; `sending`
writes one outbox message per recipient and channel (in-app, e-mail, group robots) with a dedupe key
of reminder, lead time and recipient, so a rerun adds nothing.
"""
