"""The depth-contrast script rebuilds the committed table from the committed reports."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("depth_contrast", ROOT / "analyses" / "depth_contrast.py")
depth_contrast = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(depth_contrast)


def test_the_committed_table_is_what_the_script_writes(tmp_path, capsys):
    assert depth_contrast.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "contrast.md").read_text() == (ROOT / "reports" / "depth-contrast" / "contrast.md").read_text()
    assert (tmp_path / "contrast.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert out.startswith("| o.o.d., k = 8")


def test_a_model_without_its_reports_is_one_line_and_exit_2(tmp_path, capsys):
    assert depth_contrast.main(["--models", "d2,nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reports/nope-seq16/ is missing" in err
