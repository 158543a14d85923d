"""Benchmark: opening and scoring a member round for a whole tenant, against plain SQL baselines.

    python bench/member_round.py [--members 100000] [--db sqlite|postgresql] [--repeat 3]

Builds a tenant of N members in about N/100 rated branches (plus a few retirees' branches, which a
round leaves out) on the notice sample's rules (five aspects, 12 criteria) in a fresh database (a
SQLite file, or a throwaway PostgreSQL database created through --postgres-url and dropped
afterwards), then measures in the same run, best of --repeat:

  (a) `opening.open_round` (the round, every rated branch, every active member as INSERT … SELECT,
      the audit event, commit) against a plain `INSERT … SELECT` of the same evaluation rows into the
      same table (the round's evaluations deleted first, untimed), commit;
  (b) after filling FINAL scores for every member set-based (untimed: one row per criterion, some
      bonus rows and disqualifiers), `scoring.score_round` for the whole round from scratch (one
      UPDATE … FROM an aggregate writing every member's result, the audit event, commit; the
      results are reset untimed before each run) against one SQL aggregate over the same score
      rows (`SUM(score) … GROUP BY evaluation_id` inserted into a temporary table), commit.

It prints both timings and ratios; the line before the last names the larger ratio and the last
line is `ratio: X.XX` (that larger one). A measurement, not a test: the suite runs it with
`--members 2000` only to prove it works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import POSTGRES_ADMIN_URL, database, timed
from sqlalchemy import Engine, String, cast, delete, func, insert, literal, select, text, update

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tenants" / "notice-illustrative.toml"
# A working day well after the end of 2026Q1, so the round rates 2026Q1 (the clock is frozen here).
NOW = dt.datetime(2026, 4, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def tidy(engine: Engine, *tables: str) -> None:
    """After deleting many rows, let PostgreSQL reclaim them and refresh its statistics (untimed),
    so every timed run starts from a table in the same state."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f"VACUUM ANALYZE {table}"))


def build_tenant(maker: Any, members: int) -> tuple[int, int]:
    """The tenant, ~members/100 rated branches and every 10th a retirees' branch, the members (untimed).
    Returns (tenant id, rated branches)."""
    from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
    from fivestar.orgs.models import Organisation
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant

    branches = max(2, members // 100)
    retirees = max(1, branches // 10)
    with maker() as session:
        tenant = create_tenant(session, slug="bench-round", name="评定基准", rules_toml=RULES.read_text("utf-8"))
        session.commit()
        tenant_id = tenant.id
        with tenant_context(tenant_id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            party = Organisation(tenant_id=tenant_id, parent_id=root.id, kind=OrgKind.PARTY_COMMITTEE,
                                 name="机关党委", code="P01")
            session.add(party)
            session.flush()
            party.path = f"{root.path}{party.id}/"
            session.flush()
            rows = [
                {"tenant_id": tenant_id, "parent_id": party.id, "name": f"第{b}党支部", "code": f"B{b:05d}",
                 "kind": OrgKind.RETIREE_BRANCH if b > branches else OrgKind.BRANCH, "path": "", "sort_order": b}
                for b in range(1, branches + retirees + 1)
            ]
            session.execute(insert(Organisation), rows)
            session.execute(
                update(Organisation)
                .where(Organisation.parent_id == party.id)
                .values(path=literal(party.path) + cast(Organisation.id, String) + "/")
                .execution_options(synchronize_session=False)
            )
            ids = list(session.scalars(
                select(Organisation.id).where(Organisation.parent_id == party.id).order_by(Organisation.id)
            ))
            rated, retired = ids[:branches], ids[branches:]
            people = [
                {
                    "tenant_id": tenant_id,
                    # one in 50 in a retirees' branch; one in 200 transferred out (neither is rated)
                    "branch_id": retired[i % len(retired)] if i % 50 == 0 else rated[i % branches],
                    "member_no": f"M{i:07d}",
                    "name": f"党员{i:07d}",
                    "gender": Gender.MALE if i % 2 else Gender.FEMALE,
                    "joined_on": dt.date(1970 + i % 50, 1 + i % 12, 1 + i % 28),
                    "standing": Standing.FULL,
                    "position": Position.MEMBER,
                    "status": MemberStatus.TRANSFERRED_OUT if i % 200 == 7 else MemberStatus.ACTIVE,
                }
                for i in range(1, members + 1)
            ]
            for start in range(0, len(people), 20_000):
                session.execute(insert(Member), people[start : start + 20_000])
        session.commit()
    return tenant_id, branches


def plain_insert_select(engine: Engine, tenant_id: int, round_id: int) -> int:
    """The baseline for (a): the same evaluation rows, one INSERT … SELECT, commit."""
    with engine.begin() as conn:
        result = conn.execute(
            text(
                "INSERT INTO member_evaluations (tenant_id, round_id, round_branch_id, member_id, branch_id,"
                " status, joined_during_round, self_state, version)"
                " SELECT m.tenant_id, :round_id, rb.id, m.id, m.branch_id, 'active', :false, 'pending', 1"
                " FROM members m JOIN round_branches rb ON rb.branch_id = m.branch_id AND rb.round_id = :round_id"
                " WHERE m.tenant_id = :tenant_id AND m.status = 'active'"
            ),
            {"round_id": round_id, "tenant_id": tenant_id, "false": False},
        )
        return int(result.rowcount)


def delete_evaluations(maker: Any, tenant_id: int, round_id: int, *, whole_round: bool) -> None:
    from fivestar.member_rounds.models import Evaluation, EvaluationScore, MemberRound, RoundBranch
    from fivestar.tenancy import tenant_context

    with maker() as session, tenant_context(tenant_id):
        ids = select(Evaluation.id).where(Evaluation.round_id == round_id).scalar_subquery()
        session.execute(delete(EvaluationScore).where(EvaluationScore.evaluation_id.in_(ids)))
        session.execute(delete(Evaluation).where(Evaluation.round_id == round_id))
        if whole_round:
            session.execute(delete(RoundBranch).where(RoundBranch.round_id == round_id))
            session.execute(delete(MemberRound).where(MemberRound.id == round_id))
        session.commit()


def fill_final_scores(maker: Any, tenant_id: int, round_id: int) -> int:
    """One FINAL row per criterion for every member, spread over the bands; a bonus for one in ten;
    one in a hundred 不予评星 (untimed, set-based). Returns the number of score rows."""
    from fivestar.member_rounds import core
    from fivestar.member_rounds.models import Evaluation, EvaluationScore
    from fivestar.tenancy import tenant_context

    e = Evaluation.__table__
    with maker() as session, tenant_context(tenant_id):
        member_round = core.load_round(session, round_id)
        rules = core.round_rules(session, member_round)
        fields = core.score_fields(rules) + core.bonus_fields(rules)[:1]
        for k, field in enumerate(fields):
            top = int(field.max * 100)
            # 55..100 % of the field's maximum: mostly the member's own quality, a little per field,
            # so the totals spread over every band
            value = (top * (55 + (e.c.id * 37 + k) % 46)) / 100
            source = select(
                e.c.tenant_id, e.c.id, literal("final"), literal(field.kind.value), literal(field.part_key),
                literal(field.criterion_key), value,
            ).where(e.c.round_id == round_id, e.c.tenant_id == tenant_id)
            if field.kind.value == "bonus":
                source = source.where(e.c.id % 10 == 3)
            session.execute(insert(EvaluationScore.__table__).from_select(
                ["tenant_id", "evaluation_id", "stage", "kind", "part_key", "criterion_key", "score"], source))
        session.execute(
            update(e).where(e.c.round_id == round_id, e.c.tenant_id == tenant_id, e.c.id % 100 == 11)
            .values(disqualifier=rules.member.disqualifiers[0].key)
        )
        session.commit()
        return int(session.scalar(select(func.count()).select_from(EvaluationScore)) or 0)


def plain_aggregate(engine: Engine, tenant_id: int, round_id: int) -> float:
    """The baseline for (b): SUM … GROUP BY evaluation_id over the same rows into a temp table."""
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE bench_totals (evaluation_id INTEGER, total INTEGER)"))
        conn.commit()

        def run() -> None:
            conn.execute(
                text(
                    "INSERT INTO bench_totals (evaluation_id, total)"
                    " SELECT s.evaluation_id, SUM(s.score) FROM evaluation_scores s"
                    " JOIN member_evaluations e ON e.id = s.evaluation_id"
                    " WHERE e.tenant_id = :tenant_id AND e.round_id = :round_id AND s.stage = 'final'"
                    " GROUP BY s.evaluation_id"
                ),
                {"tenant_id": tenant_id, "round_id": round_id},
            )
            conn.commit()

        elapsed, _ = timed(run)
        conn.execute(text("DROP TABLE bench_totals"))
        conn.commit()
        return elapsed


def check_against_engine(maker: Any, tenant_id: int, round_id: int) -> dict[int | None, int]:
    """The set-based results are the rule engine's (a sample of members); the level distribution."""
    from fivestar.member_rounds import core
    from fivestar.member_rounds.models import Evaluation, MemberRound, ScoreStage
    from fivestar.tenancy import tenant_context

    with maker() as session, tenant_context(tenant_id):
        member_round = session.get(MemberRound, round_id)
        assert member_round is not None
        rules = core.round_rules(session, member_round)
        ids = list(session.scalars(select(Evaluation.id).where(Evaluation.round_id == round_id)))
        sample = random.Random(7).sample(ids, min(50, len(ids)))
        stored = core.read_scores(session, sample, [ScoreStage.FINAL])
        for row in session.scalars(select(Evaluation).where(Evaluation.id.in_(sample))):
            expected = core.evaluate(rules, stored[(row.id, ScoreStage.FINAL)], row.disqualifier)
            assert (row.total, row.level) == (expected.total, expected.level), row.id
        return dict(session.execute(
            select(Evaluation.level, func.count()).where(Evaluation.round_id == round_id).group_by(Evaluation.level)
        ).all())


def measure(url: str, members: int, repeat: int) -> dict[str, Any]:
    """Everything timed in one fresh database; returns the best times and what was built."""
    from fivestar import dbcli
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.member_rounds.models import Evaluation, MemberRound
    from fivestar.member_rounds.opening import open_round
    from fivestar.member_rounds.scoring import score_round
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.models import Tenant

    dbcli.upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    tenant_id, branches = build_tenant(maker, members)
    tidy(engine, "members", "organisations")

    def opening() -> tuple[int, int]:
        with maker() as session, tenant_context(tenant_id):
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            opened = open_round(session, tenant, period_key="2026Q1")
            session.commit()
            return opened.round.id, opened.members

    open_times: list[float] = []
    plain_times: list[float] = []
    round_id = evaluations = 0
    for attempt in range(repeat):
        if attempt:
            delete_evaluations(maker, tenant_id, round_id, whole_round=True)
            tidy(engine, "member_evaluations", "round_branches")
        elapsed, (round_id, evaluations) = timed(opening)
        open_times.append(elapsed)
        delete_evaluations(maker, tenant_id, round_id, whole_round=False)
        tidy(engine, "member_evaluations")
        start = time.perf_counter()
        inserted = plain_insert_select(engine, tenant_id, round_id)
        plain_times.append(time.perf_counter() - start)
        assert inserted == evaluations, (inserted, evaluations)

    score_rows = fill_final_scores(maker, tenant_id, round_id)
    tidy(engine, "evaluation_scores", "member_evaluations")

    def scoring() -> int:
        with maker() as session, tenant_context(tenant_id):
            member_round = session.get(MemberRound, round_id)
            assert member_round is not None
            changed = score_round(session, member_round)
            session.commit()
            return changed

    table = Evaluation.__table__
    score_times: list[float] = []
    aggregate_times: list[float] = []
    for attempt in range(repeat):
        if attempt:  # every timed run scores from scratch (re-scoring writes only what changed)
            with engine.begin() as conn:
                conn.execute(update(table).where(table.c.round_id == round_id)
                             .values(total=None, level=None, rated=None, scored_at=None))
            tidy(engine, "member_evaluations")
        elapsed, changed = timed(scoring)
        score_times.append(elapsed)
        assert changed == evaluations, (changed, evaluations)
        aggregate_times.append(plain_aggregate(engine, tenant_id, round_id))

    levels = check_against_engine(maker, tenant_id, round_id)
    engine.dispose()
    return {"branches": branches, "evaluations": evaluations, "score_rows": score_rows, "levels": levels,
            "open": min(open_times), "plain": min(plain_times), "score": min(score_times),
            "aggregate": min(aggregate_times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each measurement (best is kept)")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_ADMIN_URL, help="admin URL used to create a throwaway database"
    )
    args = parser.parse_args(argv)

    import fivestar.models  # noqa: F401 - every mapper
    from fivestar.audit.recording import Actor, acting_as
    from fivestar.timekeeping import clock

    with tempfile.TemporaryDirectory(prefix="fivestar-bench-") as tmp, clock.frozen(NOW), \
            acting_as(Actor("cli", None, "bench")), database(args.db, Path(tmp), args.postgres_url) as url:
        m = measure(url, args.members, args.repeat)

    opening_ratio = m["open"] / m["plain"]
    closing_ratio = m["score"] / m["aggregate"]
    version = f"SQLite {sqlite3.sqlite_version}" if args.db == "sqlite" else "PostgreSQL"
    print(f"members: {args.members}, rated branches: {m['branches']}, evaluations: {m['evaluations']}, "
          f"score rows: {m['score_rows']}, database: {args.db} ({version}), best of {args.repeat}")
    counts = ", ".join(f"{'not rated' if k is None else k}: {v}" for k, v in sorted(m["levels"].items(), key=str))
    print(f"levels: {counts}")
    print(f"open_round (round + branches + evaluations INSERT … SELECT + audit, commit): {m['open']:.3f} s")
    print(f"plain INSERT … SELECT of the same evaluation rows, commit: {m['plain']:.3f} s")
    print(f"opening ratio: {opening_ratio:.2f} (goal ≤ 12)")
    print(f"score_round (UPDATE … FROM aggregate + audit, commit): {m['score']:.3f} s")
    print(f"plain SUM … GROUP BY evaluation_id into a temp table, commit: {m['aggregate']:.3f} s")
    print(f"closing ratio: {closing_ratio:.2f} (goal ≤ 3)")
    larger = ("opening", opening_ratio) if opening_ratio >= closing_ratio else ("closing", closing_ratio)
    print(f"larger ratio: {larger[0]}")
    print(f"ratio: {larger[1]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
