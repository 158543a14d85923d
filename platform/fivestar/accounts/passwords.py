"""Password hashing with Argon2id (OWASP ASVS 4.0.3 level 2: at least m=19 MiB, t=2, p=1)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fivestar.i18n import _

# Above the ASVS minimum (19 MiB, t=2) while keeping a login well under 100 ms on one core.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

MIN_LENGTH = 10

# A hash of a random password, verified when the account does not exist, so a login for an unknown
# name takes as long as one for a known name.
_DUMMY_HASH = _hasher.hash("fivestar-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        _safe_verify(_DUMMY_HASH, password)
        return False
    return _safe_verify(password_hash, password)


def _safe_verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, *, username: str = "") -> str | None:
    """Why a new password is not acceptable (in the user's language), or None if it is."""
    if len(password) < MIN_LENGTH:
        return _("密码至少 %(n)d 个字符", n=MIN_LENGTH)
    if len(password) > 128:
        return _("密码最多 128 个字符")
    if username and username.lower() in password.lower():
        return _("密码不能包含用户名")
    if len(set(password)) < 4:
        return _("密码过于简单")
    return None
