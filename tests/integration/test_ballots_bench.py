"""The ballot benchmark runs end to end (small): a measurement, so no assertion on speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_casts_every_ballot_once_and_prints_the_p99_last() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "ballots.py"), "--voters", "5", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("database: sqlite, voters: 5 "), lines
    assert lines[1] == "ballots cast: 5, statuses: [302], ballots stored: 5", lines
    assert "count: 5" in lines
    assert re.fullmatch(r"p99: \d+\.\d ms", lines[-1]), lines
    values = {name: float(v) for name, v in re.findall(r"^(min|p50|p95|max|p99): (\d+\.\d) ms$", result.stdout,
                                                        re.MULTILINE)}
    assert values["min"] <= values["p50"] <= values["p95"] <= values["p99"] == values["max"]
