"""The member-round benchmark runs end to end (small): a measurement, so no assertion on speed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_and_prints_the_larger_ratio_last() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "member_round.py"), "--members", "2000", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"ratio: \d+\.\d\d", lines[-1]), lines
    assert re.fullmatch(r"larger ratio: (opening|closing)", lines[-2]), lines
    ratios = {name: float(value) for name, value in re.findall(r"^(opening|closing) ratio: (\d+\.\d\d)",
                                                                   result.stdout, re.MULTILINE)}
    assert set(ratios) == {"opening", "closing"}
    assert float(lines[-1].split()[-1]) == max(ratios.values())
    assert lines[-2].endswith(max(ratios, key=lambda name: ratios[name]))
    assert lines[0].startswith("members: 2000, rated branches: 20, evaluations: 1950, ")
    # Every band of the notice sample is reached and the disqualified members are not rated.
    assert re.fullmatch(r"levels: 2: \d+, 3: \d+, 4: \d+, 5: \d+, not rated: 20", lines[1]), lines[1]
