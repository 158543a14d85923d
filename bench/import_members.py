"""Benchmark: importing members from Excel, against a plain bulk insert of the same rows.

    python bench/import_members.py [--members 10000] [--branches 60] [--db sqlite|postgresql]

Builds a workbook of N members in ~B branches in a temporary folder, creates a fresh database
(SQLite file, or a throwaway PostgreSQL database on --postgres-url), migrates it, then times in
the same run:

  (a) the platform's import end to end: read the .xlsx, validate every row, write organisations and
      members set-based, write the audit events, commit;
  (b) a re-import of the same file (nothing changes: every row is compared and left alone);
  (c) a plain bulk insert of the same, already parsed member rows into a second tenant: one
      `insert(Member)` executemany in a transaction, no reading, validation or audit.

The last line is `ratio: X.XX` = (a) / (c). It is a measurement, not a test: the suite only runs
it small (`--members 300`) to prove it works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import openpyxl  # noqa: F401 - loaded before timing, as it is in a running web process
import xlsxwriter
from _common import POSTGRES_ADMIN_URL, database, timed
from sqlalchemy import insert, select

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tenants" / "notice-illustrative.toml"
PARTY_COMMITTEES = 6


def build_workbook(path: Path, members: int, branches: int) -> list[dict[str, Any]]:
    """Write the workbook; return the member rows as parsed values (for the plain insert)."""
    from fivestar.enums import Gender, MemberStatus, Position, Standing
    from fivestar.imports.columns import MEMBER_COLUMNS, MEMBER_SHEET, ORG_COLUMNS, ORG_SHEET

    book = xlsxwriter.Workbook(str(path))  # shared strings, as Excel itself saves
    date_format = book.add_format({"num_format": "yyyy-mm-dd"})
    orgs = book.add_worksheet(ORG_SHEET)
    orgs.write_row(0, 0, [column.header for column in ORG_COLUMNS])
    row = 1
    for p in range(1, PARTY_COMMITTEES + 1):
        orgs.write_row(row, 0, [f"P{p:02d}", f"第{p}机关党委", "机关党委", "ROOT", p])
        row += 1
    for b in range(1, branches + 1):
        kind = "离退休支部" if b % 10 == 0 else "党支部"
        parent = f"P{(b % PARTY_COMMITTEES) + 1:02d}"
        orgs.write_row(row, 0, [f"B{b:03d}", f"第{b}党支部", kind, parent, b])
        row += 1

    sheet = book.add_worksheet(MEMBER_SHEET)
    sheet.write_row(0, 0, [column.header for column in MEMBER_COLUMNS])
    parsed: list[dict[str, Any]] = []
    for i in range(1, members + 1):
        branch = f"B{(i % branches) + 1:03d}"
        gender, gender_value = ("男", Gender.MALE) if i % 2 else ("女", Gender.FEMALE)
        joined = dt.date(1970 + i % 50, 1 + i % 12, 1 + i % 28)
        standing, standing_value = ("预备", Standing.PROBATIONARY) if i % 17 == 0 else ("正式", Standing.FULL)
        position, position_value = ("书记", Position.SECRETARY) if i <= branches else ("党员", Position.MEMBER)
        phone = f"139{i:08d}"
        sheet.write_string(i, 0, f"M{i:06d}")
        sheet.write_string(i, 1, f"党员{i:06d}")
        sheet.write_string(i, 2, gender)
        sheet.write_string(i, 3, phone)
        sheet.write_datetime(i, 4, dt.datetime(joined.year, joined.month, joined.day), date_format)
        sheet.write_string(i, 5, standing)
        sheet.write_string(i, 6, branch)
        sheet.write_string(i, 7, position)
        sheet.write_string(i, 8, "在册")
        parsed.append(
            {
                "member_no": f"M{i:06d}",
                "name": f"党员{i:06d}",
                "gender": gender_value,
                "phone": phone,
                "joined_on": joined,
                "standing": standing_value,
                "position": position_value,
                "status": MemberStatus.ACTIVE,
                "branch_code": branch,
            }
        )
    book.close()
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--branches", type=int, default=60)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_ADMIN_URL, help="admin URL used to create a throwaway database"
    )
    args = parser.parse_args(argv)

    import fivestar.models  # noqa: F401 - every mapper
    from fivestar import dbcli
    from fivestar.audit.recording import Actor, acting_as
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.imports.services import import_workbook
    from fivestar.orgs.models import Organisation
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.services import create_tenant

    with tempfile.TemporaryDirectory(prefix="fivestar-bench-") as tmp:
        folder = Path(tmp)
        workbook = folder / "members.xlsx"
        parsed = build_workbook(workbook, args.members, args.branches)
        with database(args.db, folder, args.postgres_url) as url:
            dbcli.upgrade(url)
            engine = make_engine(url)
            maker = make_sessionmaker(engine)
            rules = RULES.read_text(encoding="utf-8")
            with maker() as session:
                imported = create_tenant(session, slug="bench-import", name="导入基准", rules_toml=rules)
                plain = create_tenant(session, slug="bench-plain", name="直接插入基准", rules_toml=rules)
                session.commit()

            # The plain tenant gets the same organisations (not timed), so the rows can reference them.
            orgs_only = folder / "orgs.xlsx"
            build_workbook(orgs_only, 0, args.branches)
            with maker() as session, acting_as(Actor("cli", None, "bench")):
                assert import_workbook(session, plain, orgs_only).ok
                session.commit()
                with tenant_context(plain.id):
                    branch_ids = dict(session.execute(select(Organisation.code, Organisation.id)).all())
            rows = [
                {
                    **{k: v for k, v in row.items() if k != "branch_code"},
                    "tenant_id": plain.id,
                    "branch_id": branch_ids[row["branch_code"]],
                }
                for row in parsed
            ]

            def plain_insert() -> None:
                with maker() as session, session.begin():
                    session.execute(insert(Member), rows)

            def platform_import() -> Any:
                with maker() as session, acting_as(Actor("cli", None, "bench")):
                    report = import_workbook(session, imported, workbook)
                    if not report.ok:
                        raise SystemExit(f"import failed: {[issue.as_line() for issue in report.issues[:5]]}")
                    session.commit()
                    return report

            plain_time, _ = timed(plain_insert)
            import_time, first = timed(platform_import)
            reimport_time, second = timed(platform_import)
            engine.dispose()

    assert first.members.created == args.members and second.members.unchanged == args.members
    print(f"members: {args.members}, branches: {args.branches}, database: {args.db}")
    print(
        f"import (read + validate + write + audit, commit): {import_time:.3f} s "
        f"({args.members / import_time:,.0f} members/s)"
    )
    print(f"re-import of the same file (no changes): {reimport_time:.3f} s")
    print(f"plain bulk insert of the same rows: {plain_time:.3f} s")
    print(f"ratio: {import_time / plain_time:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
