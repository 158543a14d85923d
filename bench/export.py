"""Benchmark: the member round's results workbook through the platform's report path, against plain
XlsxWriter `constant_memory` writing the same rows — time and peak memory, at two sizes.

    python bench/export.py [--rows 10000,100000] [--db sqlite|postgresql] [--repeat 3]

For each size N it builds, in a fresh database (a SQLite file, or a throwaway PostgreSQL database
created through --postgres-url), a tenant of N members in N/100 branches on the notice sample's
rules, opens the 2026Q1 round and fills and scores FINAL scores for every member set-based (untimed;
bench/member_round.py's `fill_final_scores`). Then, each in a **subprocess of its own** so that time
and memory are the process's own:

  (a) platform — a report job asked for through `reports.jobs.services.request_report` and produced by
      `run_job`, exactly as the `fivestar.reports.generate` task does: the claim (a conditional
      UPDATE), the row count, the streaming query with the final scores pivoted per batch, the
      workbook (`member_rounds.workbooks.write_results`, XlsxWriter `constant_memory`), a progress
      write every 2,000 rows, fsync and rename, and the `done` UPDATE;
  (b) plain — XlsxWriter `constant_memory` writing the very same cells with the same formats, column
      widths and about-sheet: the rows are taken from (a)'s workbook beforehand (untimed) into a
      marshal stream, which (b) reads row by row (flat memory). The time of a read-only pass over
      that stream is measured in the same process and taken off (b), so (b) is XlsxWriter's own time.

(a)'s and (b)'s worksheets are compared byte for byte (they must be identical: the same rows). Each
child reports its wall time, its resident set (RSS) when it starts the work and the peak RSS during
the work (Linux: the peak mark is reset at the start, /proc/self/clear_refs, then read as VmHWM); the
growth while writing is the difference. Best time of --repeat (peak memory: the highest seen).

The last lines: the peak memory at each size, whether it stays flat, and `ratio: X.XX` — platform time
over plain time at the largest size (goals, bench/README.md "Goals": ≤ 1.5; memory flat in the row count).
A measurement, not a test: the suite runs it with small sizes only to prove it works.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import marshal
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "tenants" / "notice-illustrative.toml"
# The frozen clock of the untimed build: a working day after 2026Q1 (the round rates 2026Q1).
BUILD_AT = dt.datetime(2026, 4, 7, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FLAT_MIB = 8.0  # growth difference between the sizes still called flat (allocator noise, caches)
MIB = 1024.0  # /proc/self/status counts KiB


def _status_kib(field: str) -> int:
    """A field of /proc/self/status (Linux), in KiB: VmRSS (resident now), VmHWM (its peak)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise SystemExit("this benchmark reads /proc/self/status (Linux)")


def start_measuring_kib() -> int:
    """Reset the process's peak-RSS mark to what it holds now and return that: the peak read at the
    end is then the peak of the work alone. (`ru_maxrss` would not do: it keeps the parent's peak,
    inherited at fork and preserved across exec.)"""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")  # 5: reset the peak resident set size (Linux ≥ 4.0)
    except OSError:
        pass  # then VmHWM is the peak since exec, still this process's own
    return _status_kib("VmRSS")


def peak_kib() -> int:
    return _status_kib("VmHWM")


# --- the untimed build -----------------------------------------------------------------------------------


def build(url: str, members: int) -> dict[str, Any]:
    """Tenant, branches, members and the round with every member scored (untimed). Returns ids."""
    from member_round import fill_final_scores, tidy
    from sqlalchemy import String, cast, insert, literal, select, update

    from fivestar import dbcli
    from fivestar.audit.recording import Actor, acting_as
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import Gender, MemberStatus, OrgKind, Position, Standing
    from fivestar.member_rounds.models import MemberRound
    from fivestar.member_rounds.opening import open_round
    from fivestar.member_rounds.scoring import score_round
    from fivestar.orgs.models import Organisation
    from fivestar.people.models import Member
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.models import Tenant
    from fivestar.tenants.services import create_tenant
    from fivestar.timekeeping import clock

    dbcli.upgrade(url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    branches = max(1, members // 100)
    with clock.frozen(BUILD_AT), acting_as(Actor("cli", None, "bench")), maker() as session:
        tenant = create_tenant(session, slug="bench-export", name="导出基准工委", rules_toml=RULES.read_text("utf-8"))
        session.commit()
        tenant_id = tenant.id
        with tenant_context(tenant_id):
            root = session.scalar(select(Organisation).where(Organisation.kind == OrgKind.COMMITTEE))
            assert root is not None
            party = Organisation(tenant_id=tenant_id, parent_id=root.id, kind=OrgKind.PARTY_COMMITTEE,
                                 name="区财政局机关党委", code="P01")
            session.add(party)
            session.flush()
            party.path = f"{root.path}{party.id}/"
            session.execute(insert(Organisation), [
                {"tenant_id": tenant_id, "parent_id": party.id, "name": f"第{b}党支部", "code": f"B{b:05d}",
                 "kind": OrgKind.BRANCH, "path": "", "sort_order": b}
                for b in range(1, branches + 1)
            ])
            session.execute(
                update(Organisation).where(Organisation.parent_id == party.id)
                .values(path=literal(party.path) + cast(Organisation.id, String) + "/")
                .execution_options(synchronize_session=False)
            )
            ids = list(session.scalars(select(Organisation.id).where(Organisation.parent_id == party.id)
                                       .order_by(Organisation.id)))
            people = [
                {"tenant_id": tenant_id, "branch_id": ids[i % branches], "member_no": f"M{i:07d}",
                 "name": f"党员{i:07d}", "gender": Gender.MALE if i % 2 else Gender.FEMALE,
                 "joined_on": dt.date(1970 + i % 50, 1 + i % 12, 1 + i % 28), "standing": Standing.FULL,
                 "position": Position.MEMBER, "status": MemberStatus.ACTIVE}
                for i in range(1, members + 1)
            ]
            for start in range(0, len(people), 20_000):
                session.execute(insert(Member), people[start:start + 20_000])
            tenant = session.get(Tenant, tenant_id)
            assert tenant is not None
            round_id = open_round(session, tenant, period_key="2026Q1").round.id
            session.commit()
        tidy(engine, "members", "organisations", "member_evaluations")
        fill_final_scores(maker, tenant_id, round_id)
        tidy(engine, "evaluation_scores", "member_evaluations")
        with tenant_context(tenant_id):
            member_round = session.get(MemberRound, round_id)
            assert member_round is not None
            score_round(session, member_round)
            session.commit()
    engine.dispose()
    return {"tenant": tenant_id, "round": round_id}


def new_job(url: str, tenant_id: int, round_id: int) -> int:
    """A report job asked for as the web request does (its message goes to an in-process broker and
    is dropped: the child runs the job itself)."""
    from fivestar.accounts.principal import Grant, Principal
    from fivestar.config import load_settings
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.enums import Role
    from fivestar.member_rounds.models import MemberRound
    from fivestar.reports.jobs.services import request_report
    from fivestar.tenancy import tenant_context
    from fivestar.tenants.models import Tenant

    settings = load_settings(env="test", database_url=url, broker_url="memory://")
    asker = Principal(session_token="", display_name="基准", tenant_id=tenant_id, grants=(Grant(Role.TENANT_ADMIN),))
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session, tenant_context(tenant_id):
            tenant = session.get(Tenant, tenant_id)
            member_round = session.get(MemberRound, round_id)
            assert tenant is not None and member_round is not None
            asked = request_report(session, settings, tenant=tenant, principal=asker, kind="member_results",
                                   fmt="xlsx", subject=member_round)
            session.commit()
            assert asked.created
            return asked.job.id
    finally:
        engine.dispose()


# --- the children ------------------------------------------------------------------------------------------


def child_platform(tenant_id: int, job_id: int) -> dict[str, Any]:
    """(a): run the job as the worker's task does; report time and memory."""
    import fivestar.models  # noqa: F401 - every mapper, as in a worker
    from fivestar.config import load_settings
    from fivestar.db import make_engine, make_sessionmaker
    from fivestar.reports.jobs.models import ReportJob
    from fivestar.reports.jobs.services import download_path, run_job
    from fivestar.tenancy import tenant_context

    settings = load_settings()
    engine = make_engine(settings.resolved_database_url)
    maker = make_sessionmaker(engine)
    with engine.connect():  # a pooled connection, as a running worker has
        pass
    start_rss = start_measuring_kib()
    with tenant_context(tenant_id):
        started = time.perf_counter()
        outcome = run_job(maker, settings, job_id)
        seconds = time.perf_counter() - started
        with maker() as session:
            job = session.get(ReportJob, job_id)
            assert job is not None and outcome == "done", (outcome, job and job.failure_reason)
            path = download_path(settings, job)
            rows = job.rows
    engine.dispose()
    return {"seconds": seconds, "start_kib": start_rss, "peak_kib": peak_kib(), "rows": rows, "path": str(path)}


def _rows(path: Path) -> Any:
    with path.open("rb") as stream:
        while True:
            try:
                yield marshal.load(stream)  # noqa: S302 - our own file, written by dump_rows
            except EOFError:
                return


def child_plain(rows_file: str, out: str) -> dict[str, Any]:
    """(b): XlsxWriter constant_memory, the same cells, formats and layout as write_results."""
    import xlsxwriter

    source = Path(rows_file)
    stream = _rows(source)
    about_rows, headings = next(stream), next(stream)
    read_started = time.perf_counter()
    count = sum(1 for _ in _rows(source))
    read_seconds = time.perf_counter() - read_started
    start_rss = start_measuring_kib()
    started = time.perf_counter()
    workbook = xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False, "strings_to_numbers": False})
    title = workbook.add_format({"bold": True, "font_size": 14})
    bold = workbook.add_format({"bold": True})
    head = workbook.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1, "text_wrap": True})
    score = workbook.add_format({"num_format": "0.00"})
    about = workbook.add_worksheet("说明")
    about.set_column(0, 0, 14)
    about.set_column(1, 1, 48)
    about.write_string(0, 0, about_rows[0][0], title)
    for index, (name, value) in enumerate(about_rows[1:], start=2):
        about.write_string(index, 0, name, bold)
        about.write_string(index, 1, value)
    sheet = workbook.add_worksheet("评定结果")
    sheet.set_column(0, 2, 16)
    sheet.set_column(3, len(headings) - 1, 11)
    for col, text in enumerate(headings):
        sheet.write_string(0, col, text, head)
    sheet.freeze_panes(1, 5)
    written = 0
    for row in stream:
        written += 1
        for col, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, str):
                sheet.write_string(written, col, value)
            else:
                sheet.write_number(written, col, value, score)
    workbook.close()
    seconds = time.perf_counter() - started
    assert written == count - 2
    return {"seconds": seconds - read_seconds, "raw_seconds": seconds, "read_seconds": read_seconds,
            "start_kib": start_rss, "peak_kib": peak_kib(), "rows": written}


# --- the parent ----------------------------------------------------------------------------------------------


def run_child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        print(result.stdout, result.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"child {args[:2]} failed with {result.returncode}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def dump_rows(workbook_path: Path, rows_file: Path) -> None:
    """(a)'s cells, in order, into a marshal stream: the about-sheet, the headings, then each row."""
    import openpyxl

    with workbook_path.open("rb") as handle:  # stored under a random key, without an extension
        book = openpyxl.load_workbook(handle, read_only=True)
        _dump(book, rows_file)


def _dump(book: Any, rows_file: Path) -> None:
    try:
        about = [tuple(str(v) for v in row if v is not None) for row in book["说明"].iter_rows(values_only=True)]
        about = [row for row in about if row]
        rows = book["评定结果"].iter_rows(values_only=True)
        with rows_file.open("wb") as out:
            marshal.dump(about, out)
            marshal.dump(list(next(rows)), out)
            for row in rows:
                # trailing blank cells are not written, so openpyxl pads the row with None: keep them
                marshal.dump(tuple(row), out)
    finally:
        book.close()


def worksheets(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name.startswith("xl/worksheets/")}


def measure(size: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    from _common import database

    size_dir = folder / f"rows-{size}"
    size_dir.mkdir()
    with database(args.db, size_dir, args.postgres_url) as url:
        built = build(url, size)
        env = {key: value for key, value in os.environ.items() if not key.startswith("FIVESTAR_")}
        env.update(FIVESTAR_ENV="test", FIVESTAR_DATABASE_URL=url, FIVESTAR_DATA_DIR=str(size_dir / "data"),
                   FIVESTAR_BROKER_URL="memory://")
        rows_file = size_dir / "rows.marshal"
        plain_out = size_dir / "plain.xlsx"
        platform: list[dict[str, Any]] = []
        plain: list[dict[str, Any]] = []
        # The two sides take turns, so that a machine busy with other work slows both alike.
        for attempt in range(args.repeat):
            job = new_job(url, built["tenant"], built["round"])
            platform.append(run_child(["--child", "platform", str(built["tenant"]), str(job)], env))
            if attempt == 0:
                made = Path(platform[0]["path"])
                dump_rows(made, rows_file)
            plain.append(run_child(["--child", "plain", str(rows_file), str(plain_out)], env))
    same = worksheets(made) == worksheets(plain_out)
    rows = {run["rows"] for run in platform} | {run["rows"] for run in plain}
    if rows != {size} or not same:
        raise SystemExit(f"the two workbooks differ (rows {sorted(rows)}, identical sheets: {same})")

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        fastest = min(runs, key=lambda run: run["seconds"])
        peak = max(run["peak_kib"] for run in runs)
        growth = max(run["peak_kib"] - run["start_kib"] for run in runs)
        return {"seconds": fastest["seconds"], "peak": peak / MIB, "growth": growth / MIB,
                "read": fastest.get("read_seconds", 0.0)}

    return {"rows": size, "platform": best(platform), "plain": best(plain), "bytes": made.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", default="10000,100000", help="comma-separated row counts (members)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (best is kept)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL used to create a throwaway database")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        result = child_platform(int(rest[0]), int(rest[1])) if kind == "platform" else child_plain(rest[0], rest[1])
        print(json.dumps(result))
        return 0

    sizes = sorted({int(part) for part in args.rows.split(",") if part.strip()})
    results = []
    with tempfile.TemporaryDirectory(prefix="fivestar-bench-export-") as tmp:
        for size in sizes:
            results.append(measure(size, args, Path(tmp)))

    print(f"database: {args.db}, sizes: {', '.join(str(s) for s in sizes)} rows, best of {args.repeat}, "
          "each side in a subprocess of its own")
    for m in results:
        p, q = m["platform"], m["plain"]
        print(f"{m['rows']} rows ({m['bytes'] / 1_048_576:.1f} MB, identical worksheets): "
              f"platform {p['seconds']:.3f} s, plain XlsxWriter {q['seconds']:.3f} s "
              f"(+{q['read']:.3f} s reading the rows, taken off), ratio {p['seconds'] / q['seconds']:.2f}")
    for m in results:
        p, q = m["platform"], m["plain"]
        print(f"peak memory at {m['rows']} rows: platform {p['peak']:.1f} MiB (+{p['growth']:.1f} MiB while "
              f"writing), plain {q['peak']:.1f} MiB (+{q['growth']:.1f} MiB while writing)")
    first, last = results[0], results[-1]
    spread = last["platform"]["growth"] - first["platform"]["growth"]
    flat = abs(spread) <= FLAT_MIB
    print(f"memory: {'flat' if flat else 'NOT flat'} (platform growth {first['platform']['growth']:+.1f} MiB at "
          f"{first['rows']} rows, {last['platform']['growth']:+.1f} MiB at {last['rows']} rows; goal: flat)")
    ratio = last["platform"]["seconds"] / last["plain"]["seconds"]
    print(f"ratio: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
