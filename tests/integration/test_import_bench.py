"""The import benchmark runs end to end (small): it is a measurement, so no assertion on speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_and_prints_the_ratio_last() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "import_members.py"), "--members", "300", "--branches", "8"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1]), lines
    assert any(line.startswith("re-import of the same file") for line in lines)
    assert any(line.startswith("plain bulk insert") for line in lines)
    assert lines[0] == "members: 300, branches: 8, database: sqlite"
