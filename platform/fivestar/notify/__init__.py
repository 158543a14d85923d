"""Outbound notification channels besides e-mail and the in-app inbox: group robots (webhooks.py)."""
