"""The export benchmark runs end to end (small): a measurement, so no assertion on speed or memory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_writes_identical_workbooks_both_ways_and_prints_memory_and_the_ratio_last() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "export.py"), "--rows", "200,400", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("database: sqlite, sizes: 200, 400 rows, best of 1"), lines
    # The platform's workbook and plain XlsxWriter's hold the same worksheets, byte for byte.
    for size in (200, 400):
        assert any(line.startswith(f"{size} rows (") and "identical worksheets" in line for line in lines), lines
        assert any(re.fullmatch(rf"peak memory at {size} rows: platform \d+\.\d MiB \(\+\d+\.\d MiB while writing\), "
                                rf"plain \d+\.\d MiB \(\+\d+\.\d MiB while writing\)", line) for line in lines), lines
    assert re.match(r"memory: (flat|NOT flat) \(platform growth", lines[-2]), lines
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1]), lines
