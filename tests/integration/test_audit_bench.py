"""The audit benchmark runs end to end (tiny): a measurement, so no assertion on speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_appends_verifies_and_prints_both_ratios_last() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "audit.py"), "--events", "60", "--verify-events", "300",
         "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "database: sqlite, 60 one-event transactions per side, best of 1", lines
    assert re.match(r"append: audit.record \d+ µs/event", lines[1]), lines
    # 300 filled + 60 + 60 concurrently + 50 warming up + the tenant's own: the whole chain verified
    assert re.match(r"concurrent: 4 writers of one tenant, 60 events in", lines[2]), lines
    assert re.match(r"verify: (\d+) events in", lines[3]) and int(lines[3].split()[1]) > 470, lines
    assert re.fullmatch(r"append ratio: \d+\.\d\d", lines[-2]), lines
    assert re.fullmatch(r"verify: \d+ events/s \(\d+\.\d\dx the plain read\)", lines[-1]), lines
