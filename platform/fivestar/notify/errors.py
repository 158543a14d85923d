"""What goes wrong when a message is sent to a group robot, as exceptions safe to show people."""

from __future__ import annotations


class WebhookError(Exception):
    """A message did not reach the group. `str()` is a short reason for people (HTTP status,
    errcode/errmsg or the connection error) that never contains the robot's key or secret."""


class DecryptionError(WebhookError):
    """A stored address or secret cannot be decrypted: the instance's secret key is not the one it
    was stored with (or the stored value is damaged)."""
