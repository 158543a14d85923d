"""``fivestar rules check``: exit 0 with a summary for valid files, exit 1 with paths otherwise."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from fivestar.rules.cli import rules_cli

TENANT_FILES = sorted((Path(__file__).resolve().parents[2] / "tenants").glob("*.toml"))


@pytest.mark.parametrize("file", TENANT_FILES, ids=[f.name for f in TENANT_FILES])
def test_check_accepts_every_tenant_file(file: Path) -> None:
    result = CliRunner().invoke(rules_cli, ["check", str(file)])
    assert result.exit_code == 0, result.output
    assert "五星" in result.output and "sha256" in result.output
    assert "校验通过" in result.output


def test_summary_mentions_the_main_rules(h: SimpleNamespace) -> None:
    output = CliRunner().invoke(rules_cli, ["check", str(h.sample_path("zoucheng-public-weighted"))]).output
    for expected in ("群众满意度: 权重 30%", "最高二星", "最高评为三星", "强制", "每年最多升 1 级",
                     "每半年", "学习提高星", "取消评星", "公示 5 天", "1月15日"):
        assert expected in output, expected


def test_check_reports_paths_of_a_broken_copy(tmp_path: Path, h: SimpleNamespace) -> None:
    text = Path(h.sample_path("notice-illustrative")).read_text(encoding="utf-8")
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace("min = 80                         # illustrative", "min = 95")
                      .replace('effect = "cap"', 'effect = "capp"'), encoding="utf-8")
    result = CliRunner().invoke(rules_cli, ["check", str(broken)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "branch.stars.4.min: 95 高于五星最低分 90 (95 is above the 5-star minimum 90; "\
           "bands must fall strictly with the level)" in lines
    assert any(line.startswith("branch.vetoes[2].effect: ") for line in lines)
    assert any(line.startswith("member.stars.4.min: ") for line in lines)


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing.toml", None, "无法读取"),
    ("gbk.toml", "[meta]\nname = \"五星\"\n".encode("gbk"), "UTF-8"),
    ("bad.toml", b"[meta\nname = 1\n", "TOML"),
])
def test_check_rejects_unreadable_files(tmp_path: Path, name: str, content: bytes | None, expected: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(rules_cli, ["check", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{path}: ")
    assert expected in result.output


def test_group_has_check() -> None:
    assert rules_cli.name == "rules" and "check" in rules_cli.commands
