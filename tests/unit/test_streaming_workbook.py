"""The constant-memory workbook of every export: written out when the block ends, and when the block
fails its temporary row files are closed and deleted instead of left behind in the worker."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest

from fivestar.member_rounds.workbooks import streaming_workbook


class _StoppedError(Exception):
    pass


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XlsxWriter's row files go to the temporary folder: here, one of the test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_finished_block_writes_the_workbook_and_leaves_no_row_files(scratch: Path) -> None:
    out = io.BytesIO()
    with streaming_workbook(out) as workbook:
        sheet = workbook.add_worksheet("评定结果")
        for row in range(100):
            sheet.write_string(row, 0, f"党员{row}")
        assert list(scratch.iterdir())  # constant_memory: the rows sit in a file until the end
    with zipfile.ZipFile(out) as archive:
        assert "党员99" in archive.read("xl/worksheets/sheet1.xml").decode()
    assert not list(scratch.iterdir())


def test_a_failed_block_closes_and_deletes_the_row_files_and_writes_nothing(scratch: Path) -> None:
    out = io.BytesIO()
    handles = []
    with pytest.raises(_StoppedError), streaming_workbook(out) as workbook:
        for name in ("说明", "评定结果"):
            sheet = workbook.add_worksheet(name)
            sheet.write_string(0, 0, "行")
            handles.append(sheet.row_data_fh)
        raise _StoppedError
    assert not list(scratch.iterdir())
    assert all(handle.closed for handle in handles)
    assert out.getvalue() == b""
