"""Secrets at rest: a group robot's address and DingTalk 加签 secret, and an export target's credentials.

Why the address is a secret: a robot's URL carries its credential (WeCom's `key`, DingTalk's
`access_token`) — whoever has it can post into the group. So the whole URL, and DingTalk's 加签
secret, are stored encrypted (Fernet, with a key derived from the instance's secret key), never
logged, shown masked in pages, and kept out of every error message and audit event.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fivestar.config import Settings
from fivestar.i18n import _
from fivestar.notify.errors import DecryptionError

# Part of the key derivation: changing it (even to follow a module's new name) makes every stored
# token unreadable.
_HKDF_INFO = b"fivestar.notify.webhooks: group-robot URLs and secrets, v1"


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    """A Fernet key of its own for this purpose, derived from the instance's secret key (HKDF), so
    the session-signing key is never used directly and rotating it is one variable for both."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(settings: Settings, text: str) -> str:
    """Encrypt `text` for storage (a Fernet token: authenticated, with its own random IV)."""
    return _fernet(settings.resolved_secret_key).encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """Decrypt a stored token; a token made under another secret key raises `DecryptionError`."""
    try:
        return _fernet(settings.resolved_secret_key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise DecryptionError(
            _(
                "无法解密已保存的群机器人地址或密钥：服务器密钥（FIVESTAR_SECRET_KEY）与保存时不同，"
                "请重新填写该机器人的地址"
            )
        ) from None
