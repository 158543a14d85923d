"""The adversary's test: after voting closes, nothing the database keeps links a code to its ballot.

The attacker printed the slips and noted who got which code, knows the order in which people voted,
holds a copy of the database taken after the close — and, to be generous, the instance's secret key.
Forty voters cast distinct answers (the 110-point scheme rates eight indicators 1–4, so every voter's
ballot can be told apart), one after another. While voting is open the attacker links every code to
its answer (that is the point of the box being sealed and emptied, and shows the attacks work);
after the close every method must do no better than chance:

* transaction ids (`xmin`) of the live rows, and of every row version still on the pages, dead
  ones included (PostgreSQL `pageinspect`);
* physical order (PostgreSQL `ctid`, SQLite `rowid`) and key order of the ballots, against the
  order of casting and against the physical order of the used codes;
* the sealed ballots seen while voting was open: not one of their bytes may be left on any page of
  the ballot tables, nor in SQLite's database file or write-ahead log.

Chance: with forty ballots a guess that pairs codes and ballots at random gets one right on average;
eight or more happens less than once in 100,000 runs. Every method is allowed at most that.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from fivestar.branch_rounds import ballot_box, ballot_codes
from fivestar.db import make_engine, make_sessionmaker
from fivestar.tenancy import tenant_context
from tests.branch.ballot_support import (
    BOX_SECRET,
    TENANTS,
    cast_committed,
    close_committed,
    seed_meeting,
    seeded_context,
)

VOTERS = 40
CHANCE_LIMIT = 8  # a random pairing gets ~1 of 40 right; 8 or more: p < 1e-5
RULES = TENANTS / "shizhi-110.toml"
JSON_OBJECT = re.compile(rb"\{[^{}]*\}")

Answer = frozenset[tuple[str, int]]


def _answer(data: dict[str, Any] | str | bytes | None) -> Answer | None:
    if data is None:
        return None
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    return frozenset((str(k), int(v)) for k, v in data.items())


def _answers_in(raw: bytes) -> list[Answer]:
    """Every JSON object of ratings found in a stretch of bytes (a tuple's data, a page)."""
    found = []
    for match in JSON_OBJECT.finditer(raw):
        answer = _answer(match.group(0))
        if answer:
            found.append(answer)
    return found


class Election:
    """One meeting on its own database: forty codes, forty distinct answers, cast in a known order."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        self.engine: Engine = make_engine(url)
        self.maker: sessionmaker[Session] = make_sessionmaker(self.engine)
        self.tenant_id, self.codes = seed_meeting(self.maker, members=VOTERS, slug="secrecy", rules=RULES)
        with self.maker() as session, tenant_context(self.tenant_id):
            ctx = seeded_context(session, self.tenant_id)
            assert ctx.meeting is not None
            self.meeting_id = ctx.meeting.id
            self.items = [item.key for item in ctx.items]
        values = (1, 2, 3, 4)
        self.truth: dict[str, Answer] = {}
        for index, code in enumerate(self.codes):  # voter i's answer: i written in base 4 over the indicators
            digits = [(index // 4**position) % 4 for position in range(len(self.items))]
            self.truth[code] = frozenset((key, values[d]) for key, d in zip(self.items, digits, strict=True))

    def cast_all(self) -> None:
        for code in self.codes:  # in this order: the attacker knows it
            cast_committed(self.maker, self.tenant_id, code, {f"item.{k}": str(v) for k, v in self.truth[code]})

    def close(self) -> None:
        close_committed(self.maker, self.tenant_id)
        ballot_box.checkpoint(self.engine)  # what the close page does after its commit

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(statement), params))

    def table_exists(self, name: str) -> bool:
        from sqlalchemy import inspect

        return name in inspect(self.engine).get_table_names()

    # --- what the attacker reads -------------------------------------------------------------------

    def physical(self, table: str, columns: str) -> list[Any]:
        order = "ctid" if self.backend == "postgresql" else "rowid"
        return self.sql(f"SELECT {columns} FROM {table} ORDER BY {order}")  # noqa: S608 - test's own names

    def box_answers(self) -> list[Answer]:
        """The box in physical order, opened with the instance's key (the attacker has it)."""
        if not self.table_exists("ballot_box"):
            return []
        rows = self.physical("ballot_box", "sealed")
        opened = [ballot_box.unseal(BOX_SECRET, self.tenant_id, self.meeting_id, bytes(row[0])) for row in rows]
        return [_answer(b.ratings) for b in opened if b.ratings is not None]  # type: ignore[misc]

    def sealed_blobs(self) -> list[bytes]:
        if not self.table_exists("ballot_box"):
            return []
        return [bytes(row[0]) for row in self.sql("SELECT sealed FROM ballot_box")]

    def versions(self, relation: str) -> Iterator[tuple[str, bytes]]:
        """PostgreSQL: (xmin, data) of every row version on the relation's pages, dead ones too."""
        yield from (
            (str(xmin), bytes(data or b""))
            for xmin, data in self.sql(
                "SELECT t_xmin::text, t_data FROM generate_series(0, "
                "  (pg_relation_size(CAST(:rel AS regclass)) / current_setting('block_size')::int)::int - 1) AS block, "
                "LATERAL heap_page_items(get_raw_page(CAST(:rel AS text), block::int)) WHERE t_xmin IS NOT NULL",
                rel=relation,
            )
        )

    def pages(self, relation: str) -> bytes:
        """PostgreSQL: the raw bytes of every page of a relation (free space and dead rows included)."""
        rows = self.sql(
            "SELECT get_raw_page(CAST(:rel AS text), block::int) FROM generate_series(0, "
            "  (pg_relation_size(CAST(:rel AS regclass)) / current_setting('block_size')::int)::int - 1) AS block",
            rel=relation,
        )
        return b"".join(bytes(row[0]) for row in rows)

    def ballot_relations(self) -> list[str]:
        """The ballot tables with their indexes and TOAST tables (PostgreSQL)."""
        tables = [t for t in ("ballots", "ballot_codes", "ballot_box") if self.table_exists(t)]
        within = "ANY(SELECT CAST(t AS regclass) FROM unnest(CAST(:tables AS text[])) t)"
        rows = self.sql(
            "SELECT CAST(c.oid AS regclass)::text FROM pg_class c "  # noqa: S608 - `within` is a constant
            f"  WHERE c.oid = {within} "
            "UNION SELECT CAST(x.indexrelid AS regclass)::text FROM pg_index x "
            f"  WHERE x.indrelid = {within} "
            "UNION SELECT CAST(c.reltoastrelid AS regclass)::text FROM pg_class c "
            f"  WHERE c.reltoastrelid <> 0 AND c.oid = {within}",
            tables=tables,
        )
        return [str(row[0]) for row in rows]

    def files(self) -> bytes:
        """SQLite: the database file and its write-ahead log, as a copy of the disk would hold them."""
        path = Path(self.engine.url.database or "")
        data = path.read_bytes()
        wal = Path(f"{path}-wal")
        return data + (wal.read_bytes() if wal.exists() else b"")


# --- the attacks: each returns code → the answer it guesses -----------------------------------------


def _score(election: Election, guesses: dict[str, Answer | None]) -> int:
    return sum(1 for code, guess in guesses.items() if guess is not None and guess == election.truth[code])


def _by_position(codes: list[str], answers: list[Answer | None]) -> dict[str, Answer | None]:
    return {code: answers[i] if i < len(answers) else None for i, code in enumerate(codes)}


def _join(links: dict[str, set[str]], answers_by_xid: dict[str, list[Answer]], seed: int) -> dict[str, Answer | None]:
    """Pair each code with an answer sharing one of its transaction ids (a random one when several do)."""
    rng = random.Random(seed)
    guesses: dict[str, Answer | None] = {}
    for code, xids in links.items():
        candidates = sorted({a for xid in xids for a in answers_by_xid.get(xid, [])}, key=sorted)
        guesses[code] = rng.choice(candidates) if candidates else None
    return guesses


def attacks(election: Election) -> dict[str, dict[str, Answer | None]]:
    hashes = {ballot_codes.code_hash(code, BOX_SECRET): code for code in election.codes}
    found: dict[str, dict[str, Answer | None]] = {}

    counted = [_answer(row[0]) for row in election.physical("ballots", "ratings")]
    found["ballots' physical order = order of casting"] = _by_position(election.codes, counted)
    box = election.box_answers()
    found["the box's physical order = order of casting"] = _by_position(election.codes, list(box))
    keyed = [_answer(row[0]) for row in election.sql("SELECT ratings FROM ballots ORDER BY id")]
    found["ballots' key order = order of casting"] = _by_position(election.codes, keyed)
    used = [str(row[0]) for row in election.physical("ballot_codes", "code_hash")]
    in_code_order = [hashes[h] for h in used if h in hashes]
    found["codes' physical order = ballots' physical order"] = dict(
        zip(in_code_order, counted + [None] * len(in_code_order), strict=False)
    )
    if election.backend == "postgresql":
        links: dict[str, set[str]] = {}
        for xmin, code_hash in election.sql("SELECT xmin::text, code_hash FROM ballot_codes"):
            if code_hash in hashes:
                links.setdefault(hashes[code_hash], set()).add(str(xmin))
        answers_by_xid: dict[str, list[Answer]] = {}
        for xmin, ratings in election.sql("SELECT xmin::text, ratings FROM ballots"):
            answer = _answer(ratings)
            if answer:
                answers_by_xid.setdefault(str(xmin), []).append(answer)
        if election.table_exists("ballot_box"):
            for xmin, sealed in election.sql("SELECT xmin::text, sealed FROM ballot_box"):
                opened = ballot_box.unseal(BOX_SECRET, election.tenant_id, election.meeting_id, bytes(sealed))
                answer = _answer(opened.ratings)
                if answer:
                    answers_by_xid.setdefault(str(xmin), []).append(answer)
        found["xmin of the live rows"] = _join(links, answers_by_xid, seed=1)

        all_links: dict[str, set[str]] = {}
        for xmin, data in election.versions("ballot_codes"):
            for code_hash, code in hashes.items():
                if code_hash.encode() in data:
                    all_links.setdefault(code, set()).add(xmin)
        all_answers: dict[str, list[Answer]] = {}
        for xmin, data in election.versions("ballots"):
            all_answers.setdefault(xmin, []).extend(_answers_in(data))
        if election.table_exists("ballot_box"):
            for xmin, data in election.versions("ballot_box"):
                for blob_start in range(len(data)):
                    if data[blob_start:blob_start + 1] != ballot_box.SEALED_V1:
                        continue
                    blob = data[blob_start:blob_start + 1 + ballot_box.NONCE_BYTES + ballot_box.PADDED_BYTES + 16]
                    try:
                        opened = ballot_box.unseal(BOX_SECRET, election.tenant_id, election.meeting_id, blob)
                    except Exception:  # noqa: BLE001, S112 - not a sealed ballot at this offset
                        continue
                    answer = _answer(opened.ratings)
                    if answer:
                        all_answers.setdefault(xmin, []).append(answer)
        found["xmin of every row version, dead ones included (pageinspect)"] = _join(all_links, all_answers, seed=2)
    return found


@pytest.fixture
def election(backend: str, fresh_database: Callable[[str], str]) -> Iterator[Election]:
    made = Election(backend, fresh_database(backend))
    if backend == "postgresql":
        made.sql("SELECT 1")
        with made.engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
    try:
        yield made
    finally:
        made.engine.dispose()


def test_after_the_close_nothing_links_a_code_to_its_ballot(election: Election) -> None:
    election.cast_all()

    # While voting is open the attacker (with the key) does link them: the attacks are real.
    during = {name: _score(election, guesses) for name, guesses in attacks(election).items()}
    assert max(during.values()) == VOTERS, during
    blobs = election.sealed_blobs()
    assert len(blobs) == VOTERS

    election.close()

    assert sorted(map(sorted, (_answer(r[0]) for r in election.sql("SELECT ratings FROM ballots")))) == sorted(
        map(sorted, election.truth.values())
    ), "every ballot is counted, once"
    after = {name: _score(election, guesses) for name, guesses in attacks(election).items()}
    assert all(score <= CHANCE_LIMIT for score in after.values()), after

    # Not a byte of a sealed ballot stays: on any page of the ballot tables, or in SQLite's files.
    if election.backend == "postgresql":
        leftovers = b"".join(election.pages(relation) for relation in election.ballot_relations())
    else:
        leftovers = election.files()
    assert not [blob for blob in blobs if blob[1:40] in leftovers], "a sealed ballot survived the close"


@pytest.fixture
def committed(backend: str, fresh_database: Callable[[str], str]) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """A fresh database of its own: these tests commit, as requests do."""
    engine = make_engine(fresh_database(backend))
    try:
        yield engine, make_sessionmaker(engine)
    finally:
        engine.dispose()


def test_closing_one_meeting_keeps_the_other_meetings_ballots(committed: tuple[Engine, sessionmaker[Session]]) -> None:
    """The box is shared: emptying it for one meeting puts back the ballots of another one still voting."""
    engine, maker = committed
    first, first_codes = seed_meeting(maker, members=3, slug="box-first")
    second, second_codes = seed_meeting(maker, members=4, slug="box-second")
    for tenant_id, codes in ((first, first_codes), (second, second_codes)):
        for index, code in enumerate(codes):
            cast_committed(maker, tenant_id, code, {"level": str(index + 1)})

    assert close_committed(maker, first) == {"members": 3, "public": 0, "deputies": 0}
    with engine.connect() as connection:
        waiting = connection.execute(text("SELECT tenant_id, count(*) FROM ballot_box GROUP BY tenant_id")).all()
    assert [tuple(row) for row in waiting] == [(second, 4)]
    assert close_committed(maker, second) == {"members": 4, "public": 0, "deputies": 0}
    with engine.connect() as connection:
        levels = connection.execute(text("SELECT tenant_id, level FROM ballots ORDER BY tenant_id, level")).all()
        assert connection.execute(text("SELECT count(*) FROM ballot_box")).scalar_one() == 0
    assert [tuple(row) for row in levels] == [(first, level) for level in (1, 2, 3)] + [
        (second, level) for level in (1, 2, 3, 4)
    ]


def test_a_box_sealed_with_another_key_refuses_to_open_and_keeps_everything(
    committed: tuple[Engine, sessionmaker[Session]],
) -> None:
    """A secret key changed while voting: the close is refused with a clear message; nothing is lost."""
    from fivestar.errors import ConflictError

    engine, maker = committed
    tenant_id, codes = seed_meeting(maker, members=2, slug="box-key")
    cast_committed(maker, tenant_id, codes[0], {"level": "3"})
    with pytest.raises(ConflictError, match="FIVESTAR_SECRET_KEY"):
        close_committed(maker, tenant_id, secret_key="another-secret-" * 3)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM ballot_box")).scalar_one() == 1
        assert connection.execute(text("SELECT state FROM ballot_meetings")).scalar_one() == "voting"


def test_the_upgrade_boxes_open_meetings_and_reshuffles_closed_ones(
    backend: str, fresh_database: Callable[[str], str]
) -> None:
    """Ballots written the old way (straight to `ballots`, in casting order) before revision 0003: a
    meeting still voting gets them back in its box, to be counted at its close; a closed meeting's
    ballots and every code row are written anew, and all of them still count."""
    from fivestar import dbcli

    url = fresh_database(backend)
    engine = make_engine(url)
    try:
        maker = make_sessionmaker(engine)
        voting, voting_codes = seed_meeting(maker, members=3, slug="old-voting")
        closed, _closed_codes = seed_meeting(maker, members=2, slug="old-closed")
        engine.dispose()
        dbcli.downgrade(url, "0002")
        with engine.begin() as connection:  # what the code before 0003 left behind
            for tenant_id, levels in ((voting, (5, 4)), (closed, (3, 2))):
                meeting = connection.execute(
                    text("SELECT id FROM ballot_meetings WHERE tenant_id = :t"), {"t": tenant_id}
                ).scalar_one()
                for index, level in enumerate(levels):
                    connection.execute(
                        text('INSERT INTO ballots (id, tenant_id, meeting_id, "group", level) '
                             "VALUES (:id, :t, :m, 'members', :level)"),
                        {"id": f"{tenant_id:04d}{index:028d}", "t": tenant_id, "m": meeting, "level": level},
                    )
            connection.execute(text("UPDATE ballot_codes SET used = true WHERE tenant_id = :t"), {"t": closed})
            connection.execute(
                text("UPDATE ballot_meetings SET state = 'closed' WHERE tenant_id = :t"), {"t": closed}
            )
            for code in voting_codes[:2]:
                connection.execute(
                    text("UPDATE ballot_codes SET used = true WHERE code_hash = :h"),
                    {"h": ballot_codes.legacy_code_hash(code)},
                )
        dbcli.upgrade(url)
        with engine.connect() as connection:
            boxed = connection.execute(text("SELECT tenant_id, count(*) FROM ballot_box GROUP BY tenant_id")).all()
            counted = connection.execute(
                text("SELECT tenant_id, level FROM ballots ORDER BY tenant_id, level")
            ).all()
            ids = {str(row[0]) for row in connection.execute(text("SELECT id FROM ballots"))}
            codes = connection.execute(text("SELECT count(*) FROM ballot_codes")).scalar_one()
        assert [tuple(row) for row in boxed] == [(voting, 2)]
        assert [tuple(row) for row in counted] == [(closed, 2), (closed, 3)]
        assert not any(key.startswith(f"{closed:04d}") for key in ids), "closed ballots get fresh keys"
        assert codes == 5
        cast_committed(maker, voting, voting_codes[2], {"level": "1"})
        assert close_committed(maker, voting) == {"members": 3, "public": 0, "deputies": 0}
        with engine.connect() as connection:
            levels = connection.execute(
                text("SELECT level FROM ballots WHERE tenant_id = :t ORDER BY level"), {"t": voting}
            ).scalars().all()
        assert levels == [1, 4, 5]
    finally:
        engine.dispose()
