"""The 议星 ballot box: where a ballot waits, sealed, between its casting and the close of voting.

Why a box at all (README, "The 议星 ballot: what stays secret"): casting uses the code and stores the
ballot in one transaction, so that of any number of simultaneous submissions of a code exactly one
counts. On PostgreSQL every row a transaction writes carries that transaction's id (`xmin`), so the
code row and the ballot row written together can be joined; physical order (heap order, SQLite's
rowid) follows the order of casting as well. Nothing of that may outlive the meeting. So a ballot
is first put in this box, and `open_box` — run inside the transaction that closes the voting —
takes every ballot of the meeting out, in random order, to be written to `ballots` afresh; then
`empty_box` removes them for good: TRUNCATE on PostgreSQL (the table gets a new, empty file; the
few ballots of other meetings still voting are put back, in random order), and on SQLite a DELETE
with `secure_delete` on (the engine zeroes deleted content; see `fivestar.db`).

Sealing: while a ballot waits, its content (group, level or ratings) is encrypted with AES-GCM under
a key derived from the instance's secret key (HKDF, a purpose label of its own), with the tenant and
meeting as associated data so a sealed ballot cannot be moved to another meeting. The plaintext is
padded to a fixed size, so the length of a sealed ballot says nothing about its content either.
Someone who holds only the database while voting is open — a copy, a backup, the WAL archive, a
statement log — can see that a code was used, and when, but not what was voted.

Nothing here imports Flask; the caller passes the secret key.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, text
from sqlalchemy.orm import Session

from fivestar.branch_rounds.models import BallotBoxEntry, VoterGroup
from fivestar.errors import ConflictError
from fivestar.i18n import _

SEALED_V1 = b"\x01"  # version byte: AES-GCM, 12-byte nonce, padded JSON
PLAIN_V0 = b"\x00"  # ballots moved into the box by migration 0003 (cast before the box existed)
NONCE_BYTES = 12
PADDED_BYTES = 512  # every plaintext is padded to this size (the largest ballot is far smaller)
_INFO = b"fivestar ballot box v1"

_BOX = cast(Table, BallotBoxEntry.__table__)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoxedBallot:
    """One ballot taken out of the box: what `ballots` stores, nothing else."""

    group: VoterGroup
    level: int | None
    ratings: dict[str, int] | None


@functools.lru_cache(maxsize=8)
def box_key(secret_key: str) -> bytes:
    """The 256-bit sealing key of this instance (derived, so it is used for nothing else)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode("utf-8"))


@functools.lru_cache(maxsize=8)
def code_key(secret_key: str) -> bytes:
    """The key ballot codes are hashed with (HMAC), derived apart from the sealing key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"fivestar ballot codes v1").derive(
        secret_key.encode("utf-8")
    )


def _associated(tenant_id: int, meeting_id: int) -> bytes:
    return f"fivestar-ballot:{tenant_id}:{meeting_id}".encode("ascii")


def seal(secret_key: str, tenant_id: int, meeting_id: int, ballot: BoxedBallot) -> bytes:
    """The ballot, encrypted and padded: version byte ‖ nonce ‖ ciphertext."""
    body = json.dumps(
        {"g": ballot.group.value, "l": ballot.level, "r": ballot.ratings}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    if len(body) >= PADDED_BYTES:  # pragma: no cover - a ballot holds a level or a few indicator values
        raise ValueError("ballot too large to seal")
    padded = body + b" " * (PADDED_BYTES - len(body))
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(box_key(secret_key)).encrypt(nonce, padded, _associated(tenant_id, meeting_id))
    return SEALED_V1 + nonce + sealed


def unseal(secret_key: str, tenant_id: int, meeting_id: int, sealed: bytes) -> BoxedBallot:
    """The ballot inside `sealed`; a ConflictError if it cannot be opened with this instance's key."""
    version, rest = sealed[:1], sealed[1:]
    if version == PLAIN_V0:
        body = rest
    elif version == SEALED_V1:
        nonce, ciphertext = rest[:NONCE_BYTES], rest[NONCE_BYTES:]
        try:
            body = AESGCM(box_key(secret_key)).decrypt(nonce, ciphertext, _associated(tenant_id, meeting_id))
        except InvalidTag:
            raise ConflictError(
                _("测评票箱无法打开：本实例的密钥（FIVESTAR_SECRET_KEY）在投票期间被更换。请恢复原密钥后再结束投票。")
            ) from None
    else:  # pragma: no cover - only this module writes the box
        raise ConflictError(_("测评票箱中有无法识别的内容"))
    data: dict[str, Any] = json.loads(body.decode("utf-8"))
    ratings = data.get("r")
    return BoxedBallot(
        group=VoterGroup(str(data["g"])),
        level=None if data.get("l") is None else int(data["l"]),
        ratings=None if ratings is None else {str(k): int(v) for k, v in dict(ratings).items()},
    )


def put(session: Session, secret_key: str, tenant_id: int, meeting_id: int, ballot: BoxedBallot) -> None:
    """Drop one sealed ballot into the box (a random key, no code, no time)."""
    session.execute(
        insert(_BOX),
        {"id": secrets.token_hex(16), "tenant_id": tenant_id, "meeting_id": meeting_id,
         "sealed": seal(secret_key, tenant_id, meeting_id, ballot)},
    )


def count(session: Session, tenant_id: int, meeting_id: int) -> int:
    """Ballots waiting in the box of one meeting (the count says nothing about their content)."""
    return int(
        session.scalar(
            select(func.count()).select_from(_BOX).where(_BOX.c.tenant_id == tenant_id, _BOX.c.meeting_id == meeting_id)
        )
        or 0
    )


def open_box(session: Session, secret_key: str, tenant_id: int, meeting_id: int) -> list[BoxedBallot]:
    """Every ballot of the meeting, unsealed, in random order (the box's own order is the casting order)."""
    rows: Sequence[Any] = session.execute(
        select(_BOX.c.sealed).where(_BOX.c.tenant_id == tenant_id, _BOX.c.meeting_id == meeting_id)
    ).scalars().all()
    ballots = [unseal(secret_key, tenant_id, meeting_id, bytes(sealed)) for sealed in rows]
    secrets.SystemRandom().shuffle(ballots)
    return ballots


def empty_box(session: Session, tenant_id: int, meeting_id: int) -> None:
    """Remove the meeting's ballots from the box so that nothing of them stays in the database.

    PostgreSQL: a DELETE would leave dead tuples (and, after VACUUM, their bytes in free space) that
    still carry the casting transactions' ids. TRUNCATE gives the table a new, empty file instead;
    the other meetings' ballots (only meetings voting right now) are read first and put back in
    random order. The exclusive lock makes concurrent casts elsewhere wait for this transaction —
    milliseconds: the box only ever holds the ballots of meetings voting at this moment.
    SQLite: a DELETE, with `secure_delete` on for every connection (fivestar.db), zeroes the rows.
    """
    if session.get_bind().dialect.name != "postgresql":
        session.execute(delete(_BOX).where(_BOX.c.tenant_id == tenant_id, _BOX.c.meeting_id == meeting_id))
        return
    session.execute(text("LOCK TABLE ballot_box IN ACCESS EXCLUSIVE MODE"))
    # Raw SQL on purpose: the others belong to other tenants, and nothing of them is read but the
    # sealed bytes, which go straight back.
    others = [
        dict(row._mapping)
        for row in session.execute(
            text("SELECT tenant_id, meeting_id, sealed FROM ballot_box WHERE NOT (tenant_id = :t AND meeting_id = :m)"),
            {"t": tenant_id, "m": meeting_id},
        )
    ]
    session.execute(text("TRUNCATE ballot_box"))
    _put_back(session, others)


def _put_back(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    shuffled = list(rows)
    secrets.SystemRandom().shuffle(shuffled)
    if shuffled:
        session.execute(
            text(
                "INSERT INTO ballot_box (id, tenant_id, meeting_id, sealed) "
                "VALUES (:id, :tenant_id, :meeting_id, :sealed)"
            ),
            [{**row, "id": secrets.token_hex(16)} for row in shuffled],
        )


def checkpoint(bind: Engine | Connection) -> bool:
    """After the closing transaction committed, on SQLite: move the write-ahead log into the database
    and truncate it, so the log's copies of the box's pages (sealed ballots, the code rows as casting
    left them) are gone too. Best effort — a reader holding an old snapshot makes it wait up to two
    seconds and then give up; the next close (or SQLite's own checkpoints, which reuse the log from
    its start) overwrites them. True when the log was truncated. Nothing to do on PostgreSQL, whose
    write-ahead log is the operator's to keep or not (README)."""
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine):
        return False
    raw = bind.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA busy_timeout = 2000")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        busy = cursor.fetchone()
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()
        return busy is not None and int(busy[0]) == 0
    except Exception:  # noqa: BLE001 - best effort, after the commit: never fail the close for it
        log.warning("checkpoint after closing a ballot failed", exc_info=False)
        return False
    finally:
        raw.close()


def plain(ballots: Iterable[BoxedBallot]) -> list[dict[str, Any]]:
    """Rows for `ballots` (the caller adds tenant and meeting), each with a fresh random key."""
    return [
        {"id": secrets.token_hex(16), "group": b.group, "level": b.level, "ratings": b.ratings} for b in ballots
    ]


__all__ = [
    "BoxedBallot", "box_key", "checkpoint", "code_key", "count", "empty_box", "open_box", "plain", "put", "seal",
    "unseal",
]
